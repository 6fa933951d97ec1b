"""Where the bot cannot read the channel (a user install in a server without the bot, a group DM):
telling such places apart, their conversations' keys, and a sink that answers through the
interaction alone (its followup webhook, good for 15 minutes; each click brings a fresh one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord

from adapters.discord.places import DM_WORKSPACE, PLATFORM
from adapters.discord.sink import NO_MENTIONS, ChannelSink
from adapters.discord.views import ControlKit
from bot.entry.service import ConversationService
from bot.vocabulary import ConversationKey


def reachable(interaction: discord.Interaction) -> bool:
    """Whether the bot itself may read and post where the interaction happened: its own DM, or a
    server channel of a server that installed it, where it may see and post."""
    if interaction.context.private_channel:
        return False  # a group DM, or a DM between people
    if interaction.guild_id is None:
        return True  # a DM with the bot
    if not interaction.is_guild_integration():
        return False  # a person's own install, in a server the bot is not in
    permissions = interaction.app_permissions
    return permissions.view_channel and (permissions.send_messages or permissions.send_messages_in_threads)


def reachless_key(interaction: discord.Interaction, root: int) -> ConversationKey:
    """A conversation started by the interaction ``root`` where the bot cannot read the channel:
    one of its own (several people, or one person twice, may start one in the same channel)."""
    workspace = str(interaction.guild_id) if interaction.guild_id else DM_WORKSPACE
    return ConversationKey(PLATFORM, workspace, str(interaction.channel_id), str(root))


async def key_of_turn(
    service: ConversationService, interaction: discord.Interaction, turn_id: int | None
) -> ConversationKey | None:
    """The conversation of a stored turn a control carries, if it is one of this channel's (a
    custom id from another channel or platform finds nothing)."""
    turn = await service.store.turn(turn_id) if turn_id is not None else None
    if turn is None:
        return None
    key = turn.key
    workspace = str(interaction.guild_id) if interaction.guild_id else DM_WORKSPACE
    here = (PLATFORM, workspace, str(interaction.channel_id))
    return key if (key.platform, key.workspace, key.channel) == here else None


class InteractionSink(ChannelSink):
    """Posts a conversation's replies as followups of an interaction, with Refine on images."""

    refine = True

    def __init__(self, interaction: discord.Interaction, key: ConversationKey, kit: ControlKit) -> None:
        client = interaction.client
        channel = client.get_partial_messageable(interaction.channel_id or 0, guild_id=interaction.guild_id)
        super().__init__(
            channel=channel, key=key, limit=interaction.filesize_limit, private=interaction.followup, kit=kit
        )
        self._webhook = interaction.followup

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        # No typing indicator where the bot cannot post; the deferred response shows it is at work.
        yield

    async def _send_message(
        self,
        *,
        content: str | None,
        files: list[discord.File],
        view: discord.ui.View | None,
        reference: discord.Message | None,
    ) -> discord.Message:
        return await self._webhook.send(
            content=content or discord.utils.MISSING,
            files=files,
            view=view if view is not None else discord.utils.MISSING,
            allowed_mentions=NO_MENTIONS,
            wait=True,
        )

    async def _send_layout(self, files: list[discord.File], layout: discord.ui.LayoutView) -> discord.Message:
        return await self._webhook.send(files=files, view=layout, allowed_mentions=NO_MENTIONS, wait=True)
