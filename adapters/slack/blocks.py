"""Block Kit controls on image replies, and reading the turn id back out of a clicked control."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.slack import words
from bot.ids import parse_id
from bot.text import messages
from bot.vocabulary import Action, ActionKind, SettingName

REGENERATE_ACTION = "nb_regenerate"
ASPECT_ACTION = "nb_aspect"
FORGET_ACTION = "nb_forget"
VARIATIONS_ACTION = "nb_variations"
CONTINUE_ACTION = "nb_continue"
MODEL_ACTION = "nb_model"
# One action id per size: action ids must be unique within a block.
REDO_ACTION_PREFIX = "nb_redo_"
# Zoom out, Pan, Edit region: nb_frame_zoom_1.5, nb_frame_pan_left, nb_frame_edit_.
FRAME_ACTION_PREFIX = "nb_frame_"
_FRAMES = {ActionKind.ZOOM: "zoom", ActionKind.PAN: "pan", ActionKind.EDIT: "edit"}
# A button's text holds at most 75 characters.
_TEXT_MAX = 75
# static_select takes at most 100 options; option values at most 150 characters.
_MAX_OPTIONS = 100

Block = dict[str, Any]


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def controls_block(actions: Sequence[Action]) -> Block | None:
    """One ``actions`` block for the reply's controls; every value carries the stored turn id so
    a click works after a restart (nothing is kept in memory between the post and the click)."""
    elements: list[dict[str, Any]] = []
    for action in actions:
        if action.kind is ActionKind.REGENERATE:
            elements.append(
                {
                    "type": "button",
                    "action_id": REGENERATE_ACTION,
                    "text": _plain("Regenerate"),
                    "value": str(action.turn_id),
                }
            )
        elif action.kind is ActionKind.ASPECT_RATIO and action.choices:
            elements.append(
                {
                    "type": "static_select",
                    "action_id": ASPECT_ACTION,
                    "placeholder": _plain(messages.SETTING_LABELS[SettingName.ASPECT_RATIO]),
                    "options": [
                        {"text": _plain(ratio), "value": f"{action.turn_id}|{ratio}"}
                        for ratio in action.choices[:_MAX_OPTIONS]
                    ],
                }
            )
        elif action.kind is ActionKind.FORGET:
            elements.append(
                {
                    "type": "button",
                    "action_id": FORGET_ACTION,
                    "text": _plain("Forget thread"),
                    "style": "danger",
                    "value": str(action.turn_id),
                    "confirm": {
                        "title": _plain(words.FORGET_CONFIRM_TITLE),
                        "text": _plain(words.FORGET_CONFIRM_TEXT),
                        "confirm": _plain("Forget"),
                        "deny": _plain("Cancel"),
                    },
                }
            )
        else:
            elements += variation_elements(action)
    if not elements:
        return None
    turn_id = actions[0].turn_id
    return {"type": "actions", "block_id": f"nb_controls_{turn_id}", "elements": elements}


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text[:_TEXT_MAX], "emoji": True},
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def variation_elements(action: Action) -> list[dict[str, Any]]:
    """The Block Kit elements for one of these actions (none for an action they do not render)."""
    turn = str(action.turn_id)
    if action.kind is ActionKind.VARIATIONS:
        return [_button(VARIATIONS_ACTION, "Variations", turn)]
    if action.kind is ActionKind.CONTINUE:
        return [_button(CONTINUE_ACTION, "Continue from this one", turn, "primary")]
    if action.kind is ActionKind.REDO_SIZE:
        return [_button(f"{REDO_ACTION_PREFIX}{s}", f"Redo at {s}", f"{turn}|{s}") for s in action.choices]
    if action.kind is ActionKind.MODEL and action.choices:
        return [_button(MODEL_ACTION, action.choices[0], turn)]
    return frame_elements(action)


def frame_elements(action: Action) -> list[dict[str, Any]]:
    """Zoom out 1.5x and 2x, Pan to each side, Edit region (value: ``"turn|argument"``)."""
    op = _FRAMES.get(action.kind)
    if op is None:
        return []
    return [
        _button(f"{FRAME_ACTION_PREFIX}{op}_{arg}", words.FRAME_LABELS[(op, arg)], f"{action.turn_id}|{arg}")
        for arg in (action.choices or ("",))
    ]


def section_block(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def turn_from_value(value: object) -> int | None:
    """The turn id of a Regenerate or Forget button, or None for a value we did not write."""
    return parse_id(value)


def turn_and_ratio_from_value(value: object) -> tuple[int, str] | None:
    """The turn id and ratio of an aspect-ratio option (``"42|16:9"``)."""
    turn, sep, ratio = str(value or "").partition("|")
    turn_id = parse_id(turn)
    if not sep or turn_id is None or not ratio:
        return None
    return turn_id, ratio


def without_controls(blocks: Sequence[Block]) -> list[Block]:
    """A message's blocks with our controls removed (after Forget thread)."""
    return [b for b in blocks if not str(b.get("block_id", "")).startswith("nb_controls_")]
