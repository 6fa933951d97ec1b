"""Discord controls for takes and sizes (Variations, Continue from this one, Redo at 2K/4K) and the
model label, as persistent components whose custom ids carry the stored turn id."""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord import words
from bot.vocabulary import Action, ActionKind

VARIATIONS_TEMPLATE = r"nb:var:(?P<turn_id>[0-9]{1,18})"
CONTINUE_TEMPLATE = r"nb:cont:(?P<turn_id>[0-9]{1,18})"
REDO_TEMPLATE = r"nb:size:(?P<turn_id>[0-9]{1,18}):(?P<size>[0-9A-Z]{1,4})"
# A button label holds at most 80 characters.
_LABEL_MAX = 80


def _button(label: str, custom_id: str, row: int, emoji: str | None = None) -> discord.ui.Button[Any]:
    return discord.ui.Button(
        label=label, emoji=emoji, style=discord.ButtonStyle.secondary, custom_id=custom_id, row=row
    )


class VariationsButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=VARIATIONS_TEMPLATE):
    """Several takes of this turn at once."""

    TEMPLATE = VARIATIONS_TEMPLATE

    def __init__(self, turn_id: int) -> None:
        super().__init__(_button("Variations", f"nb:var:{turn_id}", 0, "🎲"))
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VariationsButton:
        return cls(int(match["turn_id"]))


class ContinueButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CONTINUE_TEMPLATE):
    """Make this take the conversation's head, so the next message refines it."""

    TEMPLATE = CONTINUE_TEMPLATE

    def __init__(self, turn_id: int, number: int | None = None) -> None:
        # In one message of several takes each is named by its number (Continue from 2).
        label = "Continue from this one" if number is None else words.continue_take(number)
        button = _button(label, f"nb:cont:{turn_id}", 0, "➡️")
        button.style = discord.ButtonStyle.primary
        super().__init__(button)
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ContinueButton:
        return cls(int(match["turn_id"]))


class RedoSizeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REDO_TEMPLATE):
    """The model draws this turn again at a larger size (not a pixel upscaler)."""

    TEMPLATE = REDO_TEMPLATE

    def __init__(self, turn_id: int, size: str) -> None:
        super().__init__(_button(f"Redo at {size}", f"nb:size:{turn_id}:{size}", 2))
        self.turn_id = turn_id
        self.size = size

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RedoSizeButton:
        return cls(int(match["turn_id"]), match["size"])


def variation_items(
    action: Action,
    variations: type[VariationsButton] = VariationsButton,
    continue_: type[ContinueButton] = ContinueButton,
    redo: type[RedoSizeButton] = RedoSizeButton,
) -> list[discord.ui.Item[Any]]:
    """The components for one of these actions (none for an action they do not render), drawn
    with the given classes."""
    if action.kind is ActionKind.VARIATIONS:
        return [variations(action.turn_id)]
    if action.kind is ActionKind.CONTINUE:
        return [continue_(action.turn_id)]
    if action.kind is ActionKind.REDO_SIZE:
        return [redo(action.turn_id, size) for size in action.choices]
    if action.kind is ActionKind.MODEL and action.choices:
        return [_model_label(action)]
    return []


def _model_label(action: Action) -> discord.ui.Button[Any]:
    """A disabled button naming the model that drew the reply, beside the size controls."""
    return discord.ui.Button(
        label=action.choices[0][:_LABEL_MAX],
        style=discord.ButtonStyle.secondary,
        custom_id=f"nb:model:{action.turn_id}",
        disabled=True,
        row=2,
    )
