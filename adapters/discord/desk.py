"""Every submitted form (modal), answered from its custom id alone (``adapters.discord.forms``):
no form is kept in memory, so one opened before a restart, or by another process of the
deployment, works the same. Edit with Nano Banana and Pin as reference find their message again
(``adapters.discord.doors``); Refine its stored turn (``adapters.discord.controls``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import discord

from adapters.discord import words
from adapters.discord.controls import Controls
from adapters.discord.doors import EditDoor, PinDoor
from adapters.discord.forms import EDIT, REFINE, submitted_text, target_of
from adapters.discord.interactions import answer_privately, interaction_guard
from adapters.discord.surface import Surface

log = logging.getLogger(__name__)


class FormDesk:
    """Routes a form's submission to the feature that opened it."""

    def __init__(self, surface: Surface, edit: EditDoor, pin: PinDoor, controls: Controls) -> None:
        self.in_flight = surface.in_flight
        self._edit = edit
        self._pin = pin
        self._controls = controls

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Every interaction passes here (discord.py's on_interaction); forms are answered."""
        if interaction.type is discord.InteractionType.modal_submit:
            await self.submitted(interaction)

    @interaction_guard
    async def submitted(self, interaction: discord.Interaction) -> None:
        data: Mapping[str, Any] = interaction.data or {}
        custom_id = data.get("custom_id")
        target = target_of(custom_id) if isinstance(custom_id, str) else None
        text = submitted_text(data)
        on_message = target is not None and target.kind != REFINE
        if target is None or (on_message and target.channel_id != interaction.channel_id):
            # Not a form we wrote, or one naming another channel's message (a modified client).
            log.warning("a form we cannot read", extra={"interaction_id": interaction.id})
            await answer_privately(interaction, words.FORM_UNREADABLE)
            return
        if target.kind == REFINE:
            await self._controls.refined(interaction, text, target.turn_id)
        else:
            door = self._edit if target.kind == EDIT else self._pin
            await door.submitted(interaction, text, target)
