"""Where a Discord message or interaction happened (DM, thread, channel) and its conversation key."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import discord
from cachetools import LRUCache

from bot.vocabulary import PRIVATE_WORKSPACE, ConversationKey

log = logging.getLogger(__name__)

PLATFORM = "discord"
DM_WORKSPACE = PRIVATE_WORKSPACE
# Discord caps thread names at 100 characters.
THREAD_NAME_LIMIT = 100
_CACHE_SIZE = 1024
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved Discord location.

    ``channel_id`` is where messages are posted (the thread itself for a thread);
    ``parent_id`` is a thread's text channel and None for anything else.
    """

    guild_id: int | None
    channel_id: int
    parent_id: int | None = None
    # A thread this bot created: every message in it is a turn (with the message-content intent).
    bot_owned: bool = False
    # A guild text or news channel, where a mention opens a thread on the message.
    threadable: bool = False

    @property
    def is_dm(self) -> bool:
        return self.guild_id is None

    @property
    def is_thread(self) -> bool:
        return self.parent_id is not None

    @property
    def key(self) -> ConversationKey:
        """The conversation held right here: a DM, a thread, or (no threads) the channel itself."""
        if self.guild_id is None:
            return ConversationKey(PLATFORM, DM_WORKSPACE, str(self.channel_id), str(self.channel_id))
        parent = self.parent_id if self.parent_id is not None else self.channel_id
        return ConversationKey(PLATFORM, str(self.guild_id), str(parent), str(self.channel_id))

    def thread_key(self, message_id: int) -> ConversationKey:
        """The key of the thread started on ``message_id`` in this channel: a thread started on a
        message has that message's id, so the key is known before the thread exists."""
        return ConversationKey(PLATFORM, str(self.guild_id), str(self.channel_id), str(message_id))


def _place_of(channel: object, guild_id: int | None, me: int | None) -> Place | None:
    if guild_id is None or isinstance(channel, discord.DMChannel):
        channel_id = getattr(channel, "id", None)
        return Place(None, channel_id) if isinstance(channel_id, int) else None
    if isinstance(channel, discord.Thread):
        return Place(guild_id, channel.id, channel.parent_id, bot_owned=channel.owner_id == me)
    if isinstance(channel, discord.TextChannel):  # news channels are TextChannels too
        return Place(guild_id, channel.id, threadable=True)
    if isinstance(channel, discord.abc.GuildChannel):  # voice/stage text chats: answer in place
        return Place(guild_id, channel.id)
    return None


class PlaceResolver:
    """Turns the channel discord.py hands over into a Place.

    An uncached thread (after a restart, or one the gateway never announced) arrives as a
    ``PartialMessageable`` that knows neither its type nor its parent, so it is looked up once
    with ``GET /channels/{id}``; what a channel is never changes, so answers are cached (no
    expiry), the least recently used forgotten first.
    """

    def __init__(self, client: discord.Client, capacity: int = _CACHE_SIZE) -> None:
        self._client = client
        self._cache: LRUCache[int, Place] = LRUCache(capacity)

    def _me(self) -> int | None:
        return self._client.user.id if self._client.user else None

    async def resolve(self, channel: object, channel_id: int, guild_id: int | None) -> Place | None:
        place = _place_of(channel, guild_id, self._me())
        if place is not None:
            return place
        cached = self._cache.get(channel_id)
        if cached is not None:
            return cached
        try:
            fetched = await self._client.fetch_channel(channel_id)
        except (discord.HTTPException, discord.InvalidData) as exc:
            log.warning(
                "discord channel lookup failed",
                extra={"channel_id": channel_id, "status": getattr(exc, "status", None)},
            )
            return None
        place = _place_of(fetched, guild_id, self._me())
        if place is not None:
            self._cache[channel_id] = place
        return place

    async def of_message(self, message: discord.Message) -> Place | None:
        channel = message.channel
        guild_id = message.guild.id if message.guild else getattr(channel, "guild_id", None)
        return await self.resolve(channel, channel.id, guild_id)

    async def of_interaction(self, interaction: discord.Interaction) -> Place | None:
        if interaction.channel_id is None:
            return None
        return await self.resolve(interaction.channel, interaction.channel_id, interaction.guild_id)


def mention_pattern(bot_id: int, role_id: int | None) -> re.Pattern[str]:
    """``<@id>``, ``<@!id>`` (the legacy nickname form) and the bot's own managed role, which the
    client's autocomplete sometimes inserts instead of the user."""
    role = f"|<@&{role_id}>" if role_id is not None else ""
    return re.compile(rf"<@!?{bot_id}>{role}")


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    """Whether the message addresses the bot itself (``@everyone`` does not count)."""
    if any(user.id == bot_id for user in message.mentions):
        return True
    role = message.guild.self_role if message.guild else None
    return role is not None and role.id in message.raw_role_mentions


def strip_mentions(text: str, pattern: re.Pattern[str]) -> str:
    """The prompt without the bot's mention tokens, whitespace tidied, line breaks kept."""
    stripped = pattern.sub(" ", text)
    lines = (_SPACES.sub(" ", line).strip() for line in stripped.splitlines())
    return "\n".join(line for line in lines if line).strip()


def thread_name(prompt: str) -> str:
    """A thread title from a prompt: one line, at most 100 characters, cut at a word."""
    flat = _SPACES.sub(" ", prompt).strip()
    if not flat:
        return "Image"
    if len(flat) <= THREAD_NAME_LIMIT:
        return flat
    cut = flat[: THREAD_NAME_LIMIT - 1]
    if " " in cut[THREAD_NAME_LIMIT // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"
