"""The reference board on Discord (/pin, /pins, /unpin): each mapped onto the core's dialogue. A pin
is the server's. Every answer is private: the interaction is deferred privately at once (pinning an
attachment downloads it, which may take longer than Discord's 3 s), and the first follow-up of a
deferred interaction replaces its private "thinking" message. /pins shows a preview of each of
the first ten pins."""

from __future__ import annotations

import io
from typing import Any

import discord
from discord import app_commands

from adapters.discord import words
from adapters.discord.commands import optional_attachment, text_option
from adapters.discord.interactions import answer_privately, author_of, interaction_guard
from adapters.discord.sink import MAX_CONTENT, NO_MENTIONS
from adapters.discord.surface import Surface
from bot.entry.commands import Command, CommandName, CommandReply

# Discord shows at most 10 embeds (and 10 files) in one message.
MAX_PREVIEWS = 10


class PinCommands:
    """/pin name [image], /pins and /unpin name."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface
        self.in_flight = surface.in_flight

    async def _run(
        self,
        interaction: discord.Interaction,
        name: CommandName,
        argument: str,
        image: discord.Attachment | None,
    ) -> CommandReply | None:
        place = await self._s.places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, words.UNKNOWN_PLACE)
            return None
        perms = interaction.permissions
        command = Command(
            name,
            place.key,
            author_of(interaction.user),
            argument,
            # The server's admins may unpin anybody's pin.
            moderator=perms.manage_guild or perms.administrator,
            images=(self._s.files.ref(image),) if image is not None else (),
        )
        return await self._s.service.dialogue.run(command)

    @interaction_guard
    async def pin(
        self, interaction: discord.Interaction, name: str, image: discord.Attachment | None
    ) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        reply = await self._run(interaction, CommandName.PIN, name, image)
        if reply is not None:
            await answer_privately(interaction, reply.text)

    @interaction_guard
    async def unpin(self, interaction: discord.Interaction, name: str) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        reply = await self._run(interaction, CommandName.UNPIN, name, None)
        if reply is not None:
            await answer_privately(interaction, reply.text)

    @interaction_guard
    async def pins(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        reply = await self._run(interaction, CommandName.PINS, "", None)
        if reply is None:
            return
        shown = [p for p in reply.pins if p.thumbnail][:MAX_PREVIEWS]
        files = [discord.File(io.BytesIO(p.thumbnail), filename=f"pin-{i}.jpg") for i, p in enumerate(shown)]
        embeds = [
            discord.Embed(title=p.name).set_thumbnail(url=f"attachment://pin-{i}.jpg")
            for i, p in enumerate(shown)
        ]
        await interaction.followup.send(
            reply.text[:MAX_CONTENT], embeds=embeds, files=files, ephemeral=True, allowed_mentions=NO_MENTIONS
        )


def pin_commands(handler: PinCommands) -> list[app_commands.Command[Any, ..., Any]]:
    """The board's three slash commands, built at start-up."""

    @app_commands.command(name="pin", description="Pin the latest image (or an attached one) for this server")
    @app_commands.describe(
        name="A short name (letters, digits, - and _); use it with --ref name",
        image="An image to pin instead",
    )
    async def pin(
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, 64],
        image: discord.Attachment | None = None,
    ) -> None:
        await handler.pin(interaction, text_option(name), optional_attachment(image))

    @app_commands.command(name="pins", description="The images pinned for this server, by name")
    async def pins(interaction: discord.Interaction) -> None:
        await handler.pins(interaction)

    @app_commands.command(name="unpin", description="Remove a pin (yours, or any if you manage the server)")
    @app_commands.describe(name="The pin's name")
    async def unpin(interaction: discord.Interaction, name: app_commands.Range[str, 1, 64]) -> None:
        await handler.unpin(interaction, text_option(name))

    return [pin, pins, unpin]
