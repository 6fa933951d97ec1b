"""Reply controls (Regenerate, aspect-ratio select) as persistent components that survive restarts."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from adapters.discord.variations import VARIATION_ITEMS, variation_items
from bot.ids import parse_id
from bot.vocabulary import ActionKind, Reply

# Custom ids carry the stored turn id, so a click is resolved from the database, not from any
# in-memory view: buttons keep working after a restart (discord.py DynamicItem). The templates
# take any id so that a custom id we did not write (a modified client) still reaches a callback
# and gets an answer instead of "This interaction failed"; parse_id decides what is valid.
REGENERATE_TEMPLATE = r"nb:regen:(?P<turn_id>.*)"
ASPECT_TEMPLATE = r"nb:ar:(?P<turn_id>.*)"
# A select menu holds at most 25 options.
MAX_OPTIONS = 25


class ControlHandler(Protocol):
    """What a click on a reply control runs."""

    async def regenerate(
        self, interaction: discord.Interaction, turn_id: int | None, aspect_ratio: str | None
    ) -> None: ...


class ControlsClient(discord.Client):
    """A discord.py client that knows who handles clicks on the bot's reply controls."""

    controls: ControlHandler | None = None


async def _dispatch(interaction: discord.Interaction, turn_id: int | None, aspect_ratio: str | None) -> None:
    client = interaction.client
    if isinstance(client, ControlsClient) and client.controls is not None:
        await client.controls.regenerate(interaction, turn_id, aspect_ratio)


class RegenerateButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REGENERATE_TEMPLATE):
    """Same prompt, new image."""

    def __init__(self, turn_id: int | str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Regenerate",
                emoji="🔁",
                style=discord.ButtonStyle.secondary,
                custom_id=f"nb:regen:{turn_id}",
                row=0,
            )
        )
        self.turn_id = turn_id if isinstance(turn_id, int) else parse_id(turn_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RegenerateButton:
        return cls(match["turn_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await _dispatch(interaction, self.turn_id, None)


class AspectRatioSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=ASPECT_TEMPLATE):
    """Regenerate at the chosen aspect ratio (which becomes the conversation's ratio)."""

    def __init__(self, turn_id: int | str, ratios: tuple[str, ...]) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"nb:ar:{turn_id}",
                placeholder="Regenerate at another aspect ratio…",
                options=[discord.SelectOption(label=r, value=r) for r in ratios[:MAX_OPTIONS]],
                min_values=1,
                max_values=1,
                row=1,
            )
        )
        self.turn_id = turn_id if isinstance(turn_id, int) else parse_id(turn_id)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AspectRatioSelect:
        # Only the callback runs on this copy, so the options shown on the message are enough.
        ratios = tuple(o.value for o in item.options) if isinstance(item, discord.ui.Select) else ()
        return cls(match["turn_id"], ratios)

    async def callback(self, interaction: discord.Interaction) -> None:
        values = self.item.values
        await _dispatch(interaction, self.turn_id, values[0] if values else None)


DYNAMIC_ITEMS = (RegenerateButton, AspectRatioSelect, *VARIATION_ITEMS)


def controls_for(reply: Reply) -> discord.ui.View | None:
    """The components for a reply's actions, or None when it has none worth showing.

    Forget is left to ``/forget``: a one-click button that deletes a shared thread's history
    is too easy to hit by accident.
    """
    items: list[discord.ui.Item[Any]] = []
    for action in reply.actions:
        if action.kind is ActionKind.REGENERATE:
            items.append(RegenerateButton(action.turn_id))
        elif action.kind is ActionKind.ASPECT_RATIO and action.choices:
            items.append(AspectRatioSelect(action.turn_id, action.choices))
        else:
            items += variation_items(action)
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
