"""The conversation commands on Discord (/aspect, /size, /model, /think, /forget, /usage, /help):
each mapped onto the core's dialogue, its reply rendered as an interaction response."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from adapters.discord import words
from adapters.discord.commands import MalformedOptions
from adapters.discord.interactions import answer_privately, author_of, interaction_guard
from adapters.discord.places import PLATFORM, Place
from adapters.discord.sink import MAX_CONTENT, NO_MENTIONS
from adapters.discord.surface import Surface
from bot.entry.commands import Command, CommandName, CommandReply, HelpEntry
from bot.entry.service import FAILED_MESSAGE
from bot.text import messages
from bot.vocabulary import ConversationKey, ScopeLevel

log = logging.getLogger(__name__)
# The commands this adapter registers, in the order /help lists them.
OFFERED = (
    CommandName.ASPECT,
    CommandName.SIZE,
    CommandName.MODEL,
    CommandName.THINK,
    CommandName.FORGET,
    CommandName.USAGE,
    CommandName.PIN,
    CommandName.PINS,
    CommandName.UNPIN,
    CommandName.HELP,
)
# /help is the same wherever it is asked.
_NOWHERE = ConversationKey(PLATFORM, "", "", "")


class SettingsCommands:
    """Slash commands that change or show settings, forget a thread, report usage and help."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface
        self.in_flight = surface.in_flight

    def _command(
        self, interaction: discord.Interaction, place: Place, name: CommandName, argument: str
    ) -> Command:
        # In a thread or DM a setting is the conversation's; elsewhere the channel's default.
        in_conversation = place.is_thread or place.is_dm
        return Command(
            name,
            place.key,
            author_of(interaction.user),
            argument,
            level=ScopeLevel.THREAD if in_conversation else ScopeLevel.CHANNEL,
        )

    @interaction_guard
    async def setting(self, interaction: discord.Interaction, name: CommandName, value: str | None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        place = await self._s.places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, words.UNKNOWN_PLACE)
            return
        reply = await self._s.service.dialogue.run(self._command(interaction, place, name, value or ""))
        await interaction.followup.send(reply.text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @interaction_guard
    async def forget(self, interaction: discord.Interaction) -> None:
        place = await self._s.places.of_interaction(interaction)
        if place is None or place.threadable:
            await answer_privately(interaction, words.UNKNOWN_PLACE if place is None else words.FORGET_WHERE)
            return
        channel = interaction.channel
        # Members who may manage threads here are the server's moderators; a person who made a
        # thread themselves (not one the bot opened) opened it.
        opener = str(channel.owner_id) if isinstance(channel, discord.Thread) and channel.owner_id else None
        command = Command(
            CommandName.FORGET,
            place.key,
            author_of(interaction.user),
            moderator=interaction.permissions.manage_threads,
            opener=opener,
            next_message_is_turn=place.is_dm or (place.bot_owned and self._s.config.discord.message_content),
        )

        async def defer() -> None:
            # Forgetting waits for a turn in flight; the interaction must be answered within 3 s.
            await interaction.response.defer(thinking=True)

        reply = await self._s.service.dialogue.run(command, defer)
        if reply.refused:
            await answer_privately(interaction, reply.text)
            return
        await interaction.followup.send(reply.text, allowed_mentions=NO_MENTIONS)

    @interaction_guard
    async def usage(self, interaction: discord.Interaction) -> None:
        place = await self._s.places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, words.UNKNOWN_PLACE)
            return
        reply = await self._s.service.dialogue.run(self._command(interaction, place, CommandName.USAGE, ""))
        await answer_privately(interaction, reply.text)

    @interaction_guard
    async def help(self, interaction: discord.Interaction) -> None:
        service = self._s.service
        me = self._s.client.user
        command = Command(CommandName.HELP, _NOWHERE, author_of(interaction.user), offered=OFFERED)
        reply: CommandReply = await service.dialogue.run(command)
        caps = service.capabilities
        name = me.display_name if me else "bot"
        refine = (
            words.REFINE_BY_TALKING
            if self._s.config.discord.message_content
            else words.refine_by_mention(name)
        )
        text = words.HELP.format(
            name=name,
            refine=refine,
            max_images=caps.max_input_images,
            size_flag=" or `--size 2K`" if caps.supports_sizes() else "",
            size_command=" and `/size`" if caps.supports_sizes() else "",
            ratios=", ".join(caps.aspect_ratios),
            commands=_listed(reply.help),
        )
        await interaction.response.send_message(text[:MAX_CONTENT], ephemeral=True)

    async def command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Answer what discord.py could not run instead of leaving "The application did not
        respond". Clients cache the command list, so a command this bot no longer registers (/size
        after a switch to a model without sizes) can still arrive."""
        if isinstance(error, app_commands.CommandNotFound):
            caps = self._s.service.capabilities
            if error.name == "size" and not caps.supports_sizes():
                text = messages.single_size(caps.model)
            else:
                text = words.command_gone(error.name)
            log.info("discord command not registered", extra={"command": error.name})
        elif isinstance(
            error, (MalformedOptions, app_commands.CommandSignatureMismatch, app_commands.TransformerError)
        ):
            # Options missing or of the wrong type: a forged or out-of-date client, not a bug here.
            log.warning(
                "discord command with malformed options",
                extra={"interaction_id": interaction.id, "error": type(error).__name__},
            )
            text = words.MALFORMED_COMMAND
        else:
            log.error("discord command failed", extra={"interaction_id": interaction.id}, exc_info=error)
            text = FAILED_MESSAGE
        await answer_privately(interaction, text)


def _listed(entries: tuple[HelpEntry, ...]) -> str:
    return "\n".join(f"`{e.usage}` {e.meaning}" for e in entries)
