"""Clicks on the controls under an image (Regenerate, another ratio, Variations, Continue, Redo at a
size): each a turn of the core, posted in the conversation's thread."""

from __future__ import annotations

import logging
from typing import Any

import discord

from adapters.discord import words
from adapters.discord.forms import InstructionForm, refine_form_id
from adapters.discord.framing import FrameButton
from adapters.discord.interactions import answer_privately, author_of, echo, interaction_guard
from adapters.discord.reach import InteractionSink, key_of_turn, reachable
from adapters.discord.sink import NO_MENTIONS, ChannelSink, upload_limit
from adapters.discord.surface import Surface
from adapters.discord.variations import ContinueButton, RedoSizeButton, VariationsButton
from adapters.discord.views import AspectRatioSelect, ControlKit, RefineButton, RegenerateButton
from bot.entry.commands import Command, CommandName
from bot.entry.service import UNKNOWN_TURN_MESSAGE
from bot.turns.request import TurnRequest
from bot.vocabulary import ConversationKey, Position, Trigger, Turn

log = logging.getLogger(__name__)
# Zoom out and Pan run a turn in the thread; Edit region answers the clicker alone with a link.
_FRAME_COMMANDS = {"zoom": CommandName.ZOOM, "pan": CommandName.PAN, "edit": CommandName.EDIT}


class Controls:
    """What a click on a reply control runs."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface
        self.in_flight = surface.in_flight
        self.kit = self._bound_kit()

    @interaction_guard
    async def regenerate(
        self, interaction: discord.Interaction, turn_id: int | None, aspect_ratio: str | None
    ) -> None:
        if turn_id is None:  # a custom id we did not write (a modified client)
            log.warning("a control without a valid turn id", extra={"interaction_id": interaction.id})
            await answer_privately(interaction, UNKNOWN_TURN_MESSAGE)
            return
        # Acknowledge the click at once (no visible change); the new image is posted in the thread.
        await interaction.response.defer()
        where = await self._where(interaction, turn_id)
        if where is None:
            return
        key, sink = where
        request = TurnRequest.regenerate(
            key,
            turn_id,
            author_of(interaction.user),
            request_id=str(interaction.id),
            position=Position.from_snowflake(interaction.id),
            aspect_ratio=aspect_ratio,
        )
        await self._s.service.run(request, sink)

    @interaction_guard
    async def on_turn(
        self, interaction: discord.Interaction, name: CommandName, turn_id: int, image_size: str | None
    ) -> None:
        """Variations, Continue from this one, Redo at a size, Zoom out, Pan, Edit region: the
        core's command on that image (``image_size``: the command's argument)."""
        await interaction.response.defer()
        where = await self._where(interaction, turn_id)
        if where is None:
            return
        key, sink = where
        command = Command(
            name,
            key,
            author_of(interaction.user),
            image_size or "",
            turn_id=turn_id,
            request_id=str(interaction.id),
            position=Position.from_snowflake(interaction.id),
        )
        reply = await self._s.service.dialogue.run(command)
        if reply.turn is None:
            await answer_privately(interaction, reply.text)
            return
        await self._s.service.run(reply.turn, sink)

    @interaction_guard
    async def refine(self, interaction: discord.Interaction, turn_id: int | None) -> None:
        """Refine: the next instruction in a form, then (``refined``) a turn continuing from this
        image."""
        if turn_id is None:  # a custom id we did not write (a modified client)
            await answer_privately(interaction, UNKNOWN_TURN_MESSAGE)
            return
        form = InstructionForm(
            custom_id=refine_form_id(turn_id),
            title=words.REFINE_TITLE,
            label=words.REFINE_LABEL,
            placeholder=words.REFINE_PLACEHOLDER,
        )
        await interaction.response.send_modal(form)

    async def refined(self, interaction: discord.Interaction, text: str, turn_id: int) -> None:
        """A submitted Refine form (from the desk, guarded there), for a turn of this channel's
        (``_where`` checks that where the bot cannot read the channel)."""
        if reachable(interaction) and await key_of_turn(self._s.service, interaction, turn_id) is None:
            await answer_privately(interaction, UNKNOWN_TURN_MESSAGE)
            return
        await interaction.response.defer()
        where = await self._where(interaction, turn_id)
        if where is None:
            return
        key, sink = where
        await interaction.followup.send(echo(interaction.user, text, None, 0), allowed_mentions=NO_MENTIONS)
        turn = Turn(
            key=key,
            message_id=str(interaction.id),
            author=author_of(interaction.user),
            text=text,
            continue_from=turn_id,
            trigger=Trigger.COMMAND,
            position=Position.from_snowflake(interaction.id),
        )
        await self._s.service.handle_turn(turn, sink)

    async def _where(
        self, interaction: discord.Interaction, turn_id: int | None
    ) -> tuple[ConversationKey, ChannelSink] | None:
        """The clicked control's conversation and where its reply goes: the channel or thread, or
        (where the bot cannot read the channel) the interaction, for the turn's own conversation."""
        if reachable(interaction):
            place = await self._s.places.of_interaction(interaction)
            if place is None:
                await answer_privately(interaction, words.UNKNOWN_PLACE)
                return None
            return place.key, self._sink(interaction, place)
        key = await key_of_turn(self._s.service, interaction, turn_id)
        if key is None:
            await answer_privately(interaction, UNKNOWN_TURN_MESSAGE)
            return None
        return key, InteractionSink(interaction, key, self.kit)

    def _sink(self, interaction: discord.Interaction, place: Any) -> ChannelSink:
        channel = self._s.channel(interaction, place)
        return ChannelSink(
            channel=channel,
            key=place.key,
            limit=upload_limit(channel),
            private=interaction.followup,
            kit=self.kit,
        )

    def items(self) -> tuple[type[discord.ui.DynamicItem[Any]], ...]:
        """The persistent components to register at start-up."""
        return tuple(self.kit)

    def _bound_kit(self) -> ControlKit:
        """The components bound to these controls (discord.py builds one per click from its
        custom id, so a click reaches this object without going through the client)."""
        controls = self

        class Regenerate(RegenerateButton, template=RegenerateButton.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                await controls.regenerate(interaction, self.turn_id, None)

        class AspectRatio(AspectRatioSelect, template=AspectRatioSelect.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                values = self.item.values
                await controls.regenerate(interaction, self.turn_id, values[0] if values else None)

        class Variations(VariationsButton, template=VariationsButton.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                await controls.on_turn(interaction, CommandName.VARIATIONS, self.turn_id, None)

        class Continue(ContinueButton, template=ContinueButton.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                await controls.on_turn(interaction, CommandName.CONTINUE, self.turn_id, None)

        class RedoSize(RedoSizeButton, template=RedoSizeButton.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                await controls.on_turn(interaction, CommandName.REDO, self.turn_id, self.size)

        class Frame(FrameButton, template=FrameButton.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                await controls.on_turn(interaction, _FRAME_COMMANDS[self.op], self.turn_id, self.arg)

        class Refine(RefineButton, template=RefineButton.TEMPLATE):
            async def callback(self, interaction: discord.Interaction) -> None:
                await controls.refine(interaction, self.turn_id)

        return ControlKit(Regenerate, AspectRatio, Variations, Continue, RedoSize, Frame, Refine)
