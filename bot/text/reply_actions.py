"""The controls under an image reply, as data the adapters render."""

from __future__ import annotations

from bot.gemini.capabilities import ModelCapabilities
from bot.vocabulary import Action, ActionKind

# Sizes in increasing order; "Redo larger" offers the ones above the size a turn was drawn at.
SIZE_ORDER: tuple[str, ...] = ("512", "1K", "2K", "4K")
LARGER_SIZES: tuple[str, ...] = ("2K", "4K")
ZOOM_CHOICES: tuple[str, ...] = ("1.5", "2")
PAN_CHOICES: tuple[str, ...] = ("left", "right", "up", "down")


def larger_sizes(caps: ModelCapabilities, drawn_at: str | None) -> tuple[str, ...]:
    """2K and/or 4K when the model offers them and the turn was drawn smaller (unset = 1K)."""
    if not caps.supports_sizes():
        return ()
    current = SIZE_ORDER.index(drawn_at) if drawn_at in SIZE_ORDER else SIZE_ORDER.index("1K")
    return tuple(s for s in LARGER_SIZES if s in caps.image_sizes and SIZE_ORDER.index(s) > current)


def image_actions(
    turn_id: int,
    caps: ModelCapabilities,
    drawn_at: str | None,
    *,
    take: bool = False,
    editable: bool = False,
) -> tuple[Action, ...]:
    """Every image gets Regenerate, Variations, another ratio, a larger size where there is one,
    the name of the model that drew it, Zoom out, Pan, Edit region (``editable``: the editor is
    served) and Forget; a take of a variations turn also gets Continue from this one."""
    actions = [Action(ActionKind.CONTINUE, turn_id)] if take else []
    actions += [
        Action(ActionKind.REGENERATE, turn_id),
        Action(ActionKind.VARIATIONS, turn_id),
        Action(ActionKind.ASPECT_RATIO, turn_id, caps.aspect_ratios),
    ]
    sizes = larger_sizes(caps, drawn_at)
    if sizes:
        actions.append(Action(ActionKind.REDO_SIZE, turn_id, sizes))
    actions.append(Action(ActionKind.MODEL, turn_id, (caps.model,)))
    actions.append(Action(ActionKind.ZOOM, turn_id, ZOOM_CHOICES))
    actions.append(Action(ActionKind.PAN, turn_id, PAN_CHOICES))
    if editable:
        actions.append(Action(ActionKind.EDIT, turn_id))
    actions.append(Action(ActionKind.FORGET, turn_id))
    return tuple(actions)
