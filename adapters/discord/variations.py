"""Discord controls for takes and sizes (Variations, Continue from this one, Redo at 2K/4K) and the
model label, as persistent components whose custom ids carry the stored turn id."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bot.text.settings import EffectiveSettings
from bot.turns.request import VARIATIONS_TAKES, TurnKind, TurnRequest
from bot.vocabulary import Action, ActionKind, Author, ConversationKey, Position

VARIATIONS_TEMPLATE = r"nb:var:(?P<turn_id>[0-9]{1,18})"
CONTINUE_TEMPLATE = r"nb:cont:(?P<turn_id>[0-9]{1,18})"
REDO_TEMPLATE = r"nb:size:(?P<turn_id>[0-9]{1,18}):(?P<size>[0-9A-Z]{1,4})"
# A button label holds at most 80 characters.
_LABEL_MAX = 80


class TurnControlHandler(Protocol):
    """What a click on one of these controls runs (``DiscordHandlers.turn_control``)."""

    async def turn_control(
        self, interaction: discord.Interaction, kind: TurnKind, turn_id: int, image_size: str | None
    ) -> None: ...


async def _dispatch(
    interaction: discord.Interaction, kind: TurnKind, turn_id: int, image_size: str | None = None
) -> None:
    handler = getattr(interaction.client, "controls", None)
    run = getattr(handler, "turn_control", None)
    if run is not None:
        await run(interaction, kind, turn_id, image_size)


def _button(label: str, custom_id: str, row: int, emoji: str | None = None) -> discord.ui.Button[Any]:
    return discord.ui.Button(
        label=label, emoji=emoji, style=discord.ButtonStyle.secondary, custom_id=custom_id, row=row
    )


class VariationsButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=VARIATIONS_TEMPLATE):
    """Several takes of this turn at once."""

    def __init__(self, turn_id: int) -> None:
        super().__init__(_button("Variations", f"nb:var:{turn_id}", 0, "🎲"))
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> VariationsButton:
        return cls(int(match["turn_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, TurnKind.VARIATIONS, self.turn_id)


class ContinueButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CONTINUE_TEMPLATE):
    """Make this take the conversation's head, so the next message refines it."""

    def __init__(self, turn_id: int) -> None:
        button = _button("Continue from this one", f"nb:cont:{turn_id}", 0, "➡️")
        button.style = discord.ButtonStyle.primary
        super().__init__(button)
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ContinueButton:
        return cls(int(match["turn_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, TurnKind.CONTINUE, self.turn_id)


class RedoSizeButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REDO_TEMPLATE):
    """The model draws this turn again at a larger size (not a pixel upscaler)."""

    def __init__(self, turn_id: int, size: str) -> None:
        super().__init__(_button(f"Redo at {size}", f"nb:size:{turn_id}:{size}", 2))
        self.turn_id = turn_id
        self.size = size

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RedoSizeButton:
        return cls(int(match["turn_id"]), match["size"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, TurnKind.REDO_SIZE, self.turn_id, self.size)


VARIATION_ITEMS = (VariationsButton, ContinueButton, RedoSizeButton)


def variation_items(action: Action) -> list[discord.ui.Item[Any]]:
    """The components for one of these actions (none for an action they do not render)."""
    if action.kind is ActionKind.VARIATIONS:
        return [VariationsButton(action.turn_id)]
    if action.kind is ActionKind.CONTINUE:
        return [ContinueButton(action.turn_id)]
    if action.kind is ActionKind.REDO_SIZE:
        return [RedoSizeButton(action.turn_id, size) for size in action.choices]
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


def control_request(
    kind: TurnKind,
    key: ConversationKey,
    turn_id: int,
    author: Author,
    interaction_id: int,
    image_size: str | None,
) -> TurnRequest:
    """The turn a click runs: claimed once by the interaction's id, placed by its snowflake."""
    return TurnRequest.on_turn(
        kind,
        key,
        turn_id,
        author,
        str(interaction_id),
        takes=VARIATIONS_TAKES if kind is TurnKind.VARIATIONS else 1,
        image_size=image_size,
        position=Position.from_snowflake(interaction_id),
    )


def describe_model(settings: EffectiveSettings, allowed: tuple[str, ...], where: str) -> str:
    """What ``/model`` with no value says."""
    return f"Model for {where}: {settings.model}. Change it with /model (choices: {', '.join(allowed)})."
