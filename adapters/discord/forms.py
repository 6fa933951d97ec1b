"""The one-question forms (modals): what should change in an image, and what next."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord.commands import PROMPT_MAX

log = logging.getLogger(__name__)
# A form left open longer than this is forgotten (Discord lets a person keep it open for long).
FORM_TIMEOUT_S = 30 * 60.0

Submitted = Callable[[discord.Interaction, str], Awaitable[None]]


class InstructionForm(discord.ui.Modal):
    """One paragraph of instruction; ``submitted`` runs with it (guarded by its owner)."""

    def __init__(self, *, title: str, label: str, placeholder: str, submitted: Submitted) -> None:
        super().__init__(title=title, timeout=FORM_TIMEOUT_S)
        self.instruction: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=label,
            placeholder=placeholder,
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=PROMPT_MAX,
        )
        self.add_item(self.instruction)
        self._submitted = submitted

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        await self._submitted(interaction, self.instruction.value.strip())
