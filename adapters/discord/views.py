"""Reply controls (Regenerate, aspect-ratio select) as persistent components that survive restarts."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import discord

from adapters.discord.framing import FrameButton, frame_items
from adapters.discord.variations import ContinueButton, RedoSizeButton, VariationsButton, variation_items
from adapters.discord.words import ASPECT_PLACEHOLDER, REFINE_BUTTON
from bot.ids import parse_id
from bot.vocabulary import ActionKind, Reply

# Custom ids carry the stored turn id, so a click is resolved from the database, not from any
# in-memory view: buttons keep working after a restart (discord.py DynamicItem). The templates
# take any id so that a custom id we did not write (a modified client) still reaches a callback
# and gets an answer instead of "This interaction failed"; parse_id decides what is valid.
REGENERATE_TEMPLATE = r"nb:regen:(?P<turn_id>.*)"
ASPECT_TEMPLATE = r"nb:ar:(?P<turn_id>.*)"
REFINE_TEMPLATE = r"nb:refine:(?P<turn_id>.*)"
# A select menu holds at most 25 options.
MAX_OPTIONS = 25


def _stored_turn(turn_id: int | str) -> int | None:
    """The stored turn a component names: ours are built with an int, a click's custom id is text."""
    return turn_id if isinstance(turn_id, int) else parse_id(turn_id)


def _first_row(label: str, emoji: str, style: discord.ButtonStyle, custom_id: str) -> discord.ui.Button[Any]:
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id, row=0)


class RegenerateButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REGENERATE_TEMPLATE):
    """Same prompt, new image (``adapters.discord.controls`` binds what a click runs)."""

    TEMPLATE = REGENERATE_TEMPLATE

    def __init__(self, turn_id: int | str) -> None:
        super().__init__(_first_row("Regenerate", "🔁", discord.ButtonStyle.secondary, f"nb:regen:{turn_id}"))
        self.turn_id = _stored_turn(turn_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RegenerateButton:
        return cls(match["turn_id"])


class AspectRatioSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=ASPECT_TEMPLATE):
    """Regenerate at the chosen aspect ratio (which becomes the conversation's ratio)."""

    TEMPLATE = ASPECT_TEMPLATE

    def __init__(self, turn_id: int | str, ratios: tuple[str, ...]) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"nb:ar:{turn_id}",
                placeholder=ASPECT_PLACEHOLDER,
                options=[discord.SelectOption(label=r, value=r) for r in ratios[:MAX_OPTIONS]],
                min_values=1,
                max_values=1,
                row=1,
            )
        )
        self.turn_id = _stored_turn(turn_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AspectRatioSelect:
        # Only the callback runs on this copy, so the options shown on the message are enough.
        ratios = tuple(o.value for o in item.options) if isinstance(item, discord.ui.Select) else ()
        return cls(match["turn_id"], ratios)


class RefineButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REFINE_TEMPLATE):
    """The next instruction, asked in a form: how a conversation goes on where the bot cannot read
    the channel (a user install in a server without the bot, a group DM)."""

    TEMPLATE = REFINE_TEMPLATE

    def __init__(self, turn_id: int | str) -> None:
        super().__init__(_first_row(REFINE_BUTTON, "✏️", discord.ButtonStyle.primary, f"nb:refine:{turn_id}"))
        self.turn_id = _stored_turn(turn_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RefineButton:
        return cls(match["turn_id"])


class ControlKit(NamedTuple):
    """The component classes a reply is drawn with: discord.py registers the class of each
    component it sends as the one that answers its clicks, so replies are drawn with the classes
    bound to the adapter's controls (``adapters.discord.controls``)."""

    regenerate: type[RegenerateButton] = RegenerateButton
    aspect: type[AspectRatioSelect] = AspectRatioSelect
    variations: type[VariationsButton] = VariationsButton
    continue_: type[ContinueButton] = ContinueButton
    redo: type[RedoSizeButton] = RedoSizeButton
    frame: type[FrameButton] = FrameButton
    refine: type[RefineButton] = RefineButton


# Unbound: draws the components, answers no clicks.
DRAWING_ONLY = ControlKit()


def controls_for(
    reply: Reply, kit: ControlKit = DRAWING_ONLY, *, refine: bool = False
) -> discord.ui.View | None:
    """The components for a reply's actions, or None when it has none worth showing; ``refine``
    adds Refine to an image (where the conversation goes on through its controls alone).

    Forget is left to ``/forget``: a one-click button that deletes a shared thread's history
    is too easy to hit by accident.
    """
    items: list[discord.ui.Item[Any]] = []
    for action in reply.actions:
        if action.kind is ActionKind.REGENERATE:
            items.append(kit.regenerate(action.turn_id))
        elif action.kind is ActionKind.ASPECT_RATIO and action.choices:
            items.append(kit.aspect(action.turn_id, action.choices))
        else:
            items += variation_items(action, kit.variations, kit.continue_, kit.redo)
            items += frame_items(action, kit.frame)
    if refine and reply.turn_id is not None and reply.images:
        items.insert(0, kit.refine(reply.turn_id))
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
