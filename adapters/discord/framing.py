"""Discord controls for zoom out, pan and the region editor under an image, as persistent
components whose custom ids carry the stored turn id."""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord import words
from bot.vocabulary import Action, ActionKind

FRAME_TEMPLATE = r"nb:frame:(?P<op>zoom|pan|edit):(?P<arg>[a-z0-9.]{0,5}):(?P<turn_id>[0-9]{1,18})"
# Zoom and Edit region share a row; the four pans have their own.
_ROWS = {"zoom": 3, "edit": 3, "pan": 4}
_KINDS = {ActionKind.ZOOM: "zoom", ActionKind.PAN: "pan", ActionKind.EDIT: "edit"}


class FrameButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=FRAME_TEMPLATE):
    """Zoom out by a factor, pan to a side, or (Edit region) a private link to the editor."""

    TEMPLATE = FRAME_TEMPLATE

    def __init__(self, op: str, arg: str, turn_id: int) -> None:
        label, emoji = words.FRAME_LABELS[(op, arg)]
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=label,
            emoji=emoji,
            style=discord.ButtonStyle.secondary,
            custom_id=f"nb:frame:{op}:{arg}:{turn_id}",
            row=_ROWS[op],
        )
        super().__init__(button)
        self.op, self.arg, self.turn_id = op, arg, turn_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FrameButton:
        op, arg = match["op"], match["arg"]
        if (op, arg) not in words.FRAME_LABELS:  # a custom id we did not write
            op, arg = "edit", ""
        return cls(op, arg, int(match["turn_id"]))


def frame_items(action: Action, button: type[FrameButton] = FrameButton) -> list[discord.ui.Item[Any]]:
    """The buttons for a Zoom out, Pan or Edit region action (none for other actions)."""
    op = _KINDS.get(action.kind)
    if op is None:
        return []
    return [button(op, arg, action.turn_id) for arg in (action.choices or ("",))]
