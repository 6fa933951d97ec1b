"""A fake Discord on 127.0.0.1 for the real discord.py client: REST API, CDN and gateway websocket.

Point the bot at it with ``DISCORD_API_URL=fake.api_url``; ``GET /gateway/bot`` names the fake's
own websocket. The fake keeps a small world (one guild with a text channel and a voice channel,
more guilds from ``add_guild``, threads, DMs, users) and behaves like Discord where the bot can
tell the difference:

* gateway: HELLO, heartbeat ACK, IDENTIFY -> READY + GUILD_CREATE, dispatches (MESSAGE_CREATE,
  THREAD_CREATE, INTERACTION_CREATE) routed by shard as Discord does (IDENTIFY ``shard: [id, count]``
  gets the guilds with ``(guild_id >> 22) % count == id``, DMs go to shard 0; 4010 for an invalid
  shard, 4011 for too few when sharding is required; ``GET /gateway/bot`` says how many to run),
  ``compress=zlib-stream`` honoured (plain text frames when absent), close 4004 for a bad token
  and 4014 for a refused message-content intent; without that intent guild messages arrive
  without content unless they mention the bot;
* REST: bot login (401 for a bad token), application info, command registration, messages with
  multipart files (2000 characters, 10 files, the upload limit and empty messages enforced),
  threads from messages (one per message, 403 where denied), typing, channel lookup, interaction
  callbacks (answer once, within 3 s), the original response and followups, and a CDN for
  attachments.

Tests drive it as users would: ``await fake.post(...)`` a message, ``await fake.command(...)`` a
slash command, ``await fake.click(...)`` a button or select, then ``await fake.wait_until(...)``
for what the bot posted (``fake.messages_in(channel_id)``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from tests.auxil.local_server import LocalServer

DISCORD_EPOCH_MS = 1420070400000
DEFAULT_TOKEN = "fake-discord-bot-token"
UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's default per-message upload limit (10 MiB)
MESSAGE_CONTENT = 1 << 15  # the privileged intent bit
EPHEMERAL = 1 << 6
LOADING = 1 << 7
IS_COMPONENTS_V2 = 1 << 15
# What a person's own install may do in a server the bot is not in (Discord gives such an app
# only these: attach files, embed links, mention everyone, use external emojis), never read it.
USER_INSTALL_PERMISSIONS = (1 << 15) | (1 << 14) | (1 << 17) | (1 << 18)
# Component types a Components V2 message may hold at its top level.
V2_TOP_LEVEL = {1, 9, 10, 12, 13, 14, 17}
INTERACTION_DEADLINE_S = 3.0
# Channel types.
GUILD_TEXT, DM, GUILD_VOICE, GROUP_DM, PUBLIC_THREAD = 0, 1, 2, 3, 11
# Interaction callback types.
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
MODAL = 9
# Interaction types: a command (slash or context menu), a component, a modal submitted.
APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT = 2, 3, 5
# Application command types: a slash command, a message context-menu command.
CHAT_INPUT, MESSAGE_COMMAND = 1, 3
_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
T = TypeVar("T")


def _json(payload: Any, status: int = 200) -> web.Response:
    # Exactly "application/json", as Discord sends it: discord.py compares the header verbatim
    # and treats anything else (aiohttp adds "; charset=utf-8") as plain text.
    return web.Response(
        body=json.dumps(payload).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def _iso(ms: float | None = None) -> str:
    moment = datetime.fromtimestamp((ms if ms is not None else time.time() * 1000) / 1000, UTC)
    return moment.isoformat()


class DiscordHTTPError(Exception):
    """An API error the fake answers with, in Discord's JSON shape."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return _json(body, self.status)


def form_error(path: Sequence[str], code: str, message: str) -> DiscordHTTPError:
    """Discord's 400 "Invalid Form Body" naming the field at ``path`` and what is wrong with it."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {key: errors}
    return DiscordHTTPError(400, 50035, "Invalid Form Body", errors)


@dataclass
class RateLimit:
    """Answer the next ``times`` requests matching ``method`` and ``path`` (a regular expression
    over the path after /api/v10) with Discord's 429."""

    method: str
    path: str
    retry_after: float
    times: int = 1
    is_global: bool = False

    def response(self) -> web.Response:
        # What Discord sends: the wait in the body (seconds, float) and in headers, and a Via
        # header; discord.py takes a 429 without Via for a Cloudflare ban and gives up.
        body = {"message": "You are being rate limited.", "retry_after": self.retry_after}
        body["global"] = self.is_global
        response = _json(body, status=429)
        response.headers.update(
            {
                "Via": "1.1 google",
                "Retry-After": str(max(1, math.ceil(self.retry_after))),
                "X-RateLimit-Scope": "global" if self.is_global else "user",
            }
        )
        if self.is_global:
            response.headers["X-RateLimit-Global"] = "true"
        else:
            response.headers.update(
                {
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                    "X-RateLimit-Bucket": "fake-" + re.sub(r"\W", "", self.path)[:24],
                }
            )
        return response


@dataclass
class RawAnswer:
    """Answer the next ``times`` requests matching ``method`` and ``path`` with a raw status and
    body: what a proxy in front of Discord says when it is down (a text/plain 503, an HTML 502)."""

    method: str
    path: str
    status: int
    body: bytes
    content_type: str = "text/plain"
    times: int = 1


@dataclass(frozen=True, slots=True)
class FakeFile:
    """An uploaded or attached file."""

    filename: str
    data: bytes
    content_type: str | None = None
    # False: the CDN answers 404 (an expired or deleted attachment).
    available: bool = True
    # The attachment's "size" when it lies about it (None: the real length).
    declared_size: int | None = None
    # The CDN streams this many bytes instead of ``data`` (a file far larger than it claims).
    stream_bytes: int | None = None
    # The attachment points here instead of at the fake's CDN (a file on a foreign host).
    url: str | None = None
    # The CDN answers with a redirect to this URL instead of the file.
    redirect_to: str | None = None
    # Alt text (the attachment's description).
    description: str | None = None


def pings_nobody(allowed_mentions: Mapping[str, Any] | None) -> bool:
    """Whether a message's ``allowed_mentions`` lets Discord notify no one at all."""
    return (
        allowed_mentions is not None
        and allowed_mentions.get("parse") == []
        and not allowed_mentions.get("users")
        and not allowed_mentions.get("roles")
        and not allowed_mentions.get("replied_user")
    )


@dataclass
class FakeMessage:
    """A message as Discord stores it, plus what only the fake sees (file bytes, mentions policy)."""

    payload: dict[str, Any]
    files: list[FakeFile] = field(default_factory=list)
    allowed_mentions: dict[str, Any] | None = None
    ephemeral: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        return int(self.payload["channel_id"])

    @property
    def content(self) -> str:
        return str(self.payload.get("content") or "")

    @property
    def author_id(self) -> int:
        return int(self.payload["author"]["id"])

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.payload.get("embeds") or ())

    @property
    def loading(self) -> bool:
        return bool(int(self.payload.get("flags") or 0) & LOADING)

    @property
    def reference_id(self) -> int | None:
        ref = self.payload.get("message_reference")
        return int(ref["message_id"]) if ref else None

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.payload.get("components") or [])

    @property
    def flags(self) -> int:
        return int(self.payload.get("flags") or 0)

    def gallery(self) -> list[dict[str, Any]]:
        """The items of every media gallery on the message (Components V2), in order."""
        found: list[dict[str, Any]] = []

        def walk(items: Iterable[dict[str, Any]]) -> None:
            for item in items:
                if item.get("type") == 12:
                    found.extend(item.get("items") or ())
                walk(item.get("components") or ())

        walk(self.components)
        return found

    def texts(self) -> list[str]:
        """The text displays of a Components V2 message, in order."""
        found: list[str] = []

        def walk(items: Iterable[dict[str, Any]]) -> None:
            for item in items:
                if item.get("type") == 10:
                    found.append(str(item.get("content") or ""))
                walk(item.get("components") or ())

        walk(self.components)
        return found

    def custom_ids(self) -> list[str]:
        """Custom ids of every button and select on the message, in order."""
        found: list[str] = []

        def walk(items: Iterable[dict[str, Any]]) -> None:
            for item in items:
                if "custom_id" in item:
                    found.append(item["custom_id"])
                walk(item.get("components") or ())

        walk(self.components)
        return found

    def component(self, custom_id: str) -> dict[str, Any] | None:
        def walk(items: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
            for item in items:
                if item.get("custom_id") == custom_id:
                    return item
                inner = walk(item.get("components") or ())
                if inner is not None:
                    return inner
            return None

        return walk(self.components)


@dataclass
class FakeInteraction:
    """An interaction the fake sent to the bot, and how the bot answered it."""

    id: int
    token: str
    channel_id: int
    payload: dict[str, Any]
    created: float
    callbacks: list[int] = field(default_factory=list)  # callback types, in order
    late_callbacks: int = 0
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    # The form the bot answered with (callback type 9): its custom id, title and components.
    modal: dict[str, Any] | None = None


class _Session:
    """One gateway connection: compression state, sequence, intents."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self.seq = 0
        self.intents = 0
        self.shard: tuple[int, int] | None = None  # [id, count] from IDENTIFY; None = every guild
        self.identified = False
        self.session_id = secrets.token_hex(16)
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        # Compression and sending must stay in one order: every frame continues one zlib stream.
        async with self._lock:
            if self.ws.closed:
                return
            if self.zlib is not None:
                data = self.zlib.compress(text.encode()) + self.zlib.flush(zlib.Z_SYNC_FLUSH)
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_str(text)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.seq += 1
        await self.send({"op": 0, "t": event, "s": self.seq, "d": data})

    def receives(self, guild_id: int | None) -> bool:
        """Whether this connection gets a guild's events (``None``: a DM, for shard 0 only)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return shard_id == (0 if guild_id is None else shard_of(guild_id, count))


def shard_of(guild_id: int, count: int) -> int:
    """The shard that receives a guild's events, by Discord's formula."""
    return (guild_id >> 22) % count


@dataclass(frozen=True)
class FakeGuild:
    """A server the bot is in: its id, its bot role and its #general."""

    id: int
    name: str
    role_id: int
    general_id: int


class FakeDiscord(LocalServer):
    """The fake server and its world. ``async with FakeDiscord() as fake`` or start()/close()."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        allow_message_content: bool = True,
        announce_threads: bool = True,
        upload_limit: int = UPLOAD_LIMIT,
        heartbeat_interval_ms: int = 41250,
        shards: int = 1,
        max_concurrency: int = 1,
        sharding_required: bool = False,
    ) -> None:
        self.token = token
        self.allow_message_content = allow_message_content
        # False: GUILD_CREATE leaves active threads out, so they reach the bot uncached.
        self.announce_threads = announce_threads
        self.upload_limit = upload_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # What GET /gateway/bot recommends: the shard count and IDENTIFYs allowed per 5 s.
        self.shards = shards
        self.max_concurrency = max_concurrency
        # True: like a bot in too many servers, fewer than ``shards`` shards are refused (4011).
        self.sharding_required = sharding_required
        self.host = "127.0.0.1"
        self.port = 0
        self._counter = itertools.count()
        self._last_id = 0
        self._sessions: list[_Session] = []
        self._changed = asyncio.Event()

        self.bot = self._user("Nano Banana", bot=True)
        self.application_id = int(self.bot["id"])  # bot user id == application id on Discord
        self.alice = self._user("alice")
        self.bob = self._user("bob")
        self.other_bot = self._user("Other Bot", bot=True)
        self.guild_id = self.new_id()
        self.bot_role_id = self.new_id()
        self.channels: dict[int, dict[str, Any]] = {}
        self.general_id = self._add_channel(GUILD_TEXT, "general")
        self.voice_id = self._add_channel(GUILD_VOICE, "Lounge")
        home = FakeGuild(self.guild_id, "Test Server", self.bot_role_id, self.general_id)
        self.guilds = {self.guild_id: home}
        # Which connection (its shard, None if unsharded) got which event of which guild.
        self.dispatched: list[tuple[tuple[int, int] | None, str, int | None]] = []
        self.forbidden_threads: set[int] = set()  # channels where the bot lacks thread permissions
        # Servers the bot is not in, where people use a person's own install: never announced on
        # the gateway, and REST on their channels is refused (403 Missing Access).
        self.foreign_guilds: set[int] = set()
        # Channels that refuse Components V2 messages (400 Invalid Form Body on their components),
        # or (classic_only) every channel.
        self.refuse_v2: set[int] = set()
        self.classic_only = False

        self.messages: dict[int, FakeMessage] = {}
        self.files: dict[str, FakeFile] = {}  # CDN path -> file
        self.cdn_sent: dict[str, int] = {}  # CDN path -> body bytes written to the bot
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.identifies: list[dict[str, Any]] = []
        self.events: list[tuple[Any, ...]] = []  # ("typing", channel) / ("message", channel, id) / ...
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.gateway_queries: list[dict[str, str]] = []
        # REST requests with their arrival time (time.monotonic()); scripted 429s and when sent.
        self.timed_requests: list[tuple[str, str, float]] = []
        self.rate_limits: list[RateLimit] = []
        self.rate_limited: list[tuple[str, str, float]] = []
        self.raw_answers: list[RawAnswer] = []
        # A member's permissions in every channel, by user id (default: all of them).
        self.member_permissions: dict[str, int] = {}
        self.raw_answered: list[tuple[str, str]] = []

    # -- ids and world --------------------------------------------------------------------------

    def new_id(self) -> int:
        """A snowflake: milliseconds since Discord's epoch, then an increment; always increasing."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22 | (next(self._counter) & 0xFFF)
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id

    def _user(self, name: str, bot: bool = False) -> dict[str, Any]:
        user = {
            "id": str(self.new_id()),
            "username": name.lower().replace(" ", ""),
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "flags": 0,
            "public_flags": 0,
        }
        if bot:
            user.update({"verified": True, "mfa_enabled": False})
        return user

    def add_guild(self, name: str, *, shard: int = 0, count: int = 1) -> FakeGuild:
        """Another server with a #general, its id picked so that it lands on ``shard`` of
        ``count`` (ids are snowflakes: the shard comes from their millisecond part)."""
        millis = max(int(time.time() * 1000) - DISCORD_EPOCH_MS, (self._last_id >> 22) + 1)
        millis += (shard - millis) % count
        self._last_id = guild_id = millis << 22
        role_id = self.new_id()
        general_id = self._add_channel(GUILD_TEXT, "general", guild_id)
        self.guilds[guild_id] = FakeGuild(guild_id, name, role_id, general_id)
        return self.guilds[guild_id]

    def add_foreign_guild(self) -> int:
        """A server the bot is not in, with a #general; returns that channel's id."""
        guild_id = self.new_id()
        self.foreign_guilds.add(guild_id)
        return self._add_channel(GUILD_TEXT, "general", guild_id)

    def _add_channel(self, kind: int, name: str, guild_id: int | None = None) -> int:
        channel_id = self.new_id()
        channel: dict[str, Any] = {
            "id": str(channel_id),
            "type": kind,
            "guild_id": str(guild_id or self.guild_id),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        if kind == GUILD_TEXT:
            channel["topic"] = None
        if kind == GUILD_VOICE:
            channel.update({"bitrate": 64000, "user_limit": 0, "rtc_region": None})
        self.channels[channel_id] = channel
        return channel_id

    def _thread_payload(self, thread_id: int, parent_id: int, name: str, owner_id: int) -> dict[str, Any]:
        return {
            "id": str(thread_id),
            "type": PUBLIC_THREAD,
            "guild_id": self.channels[parent_id]["guild_id"],
            "parent_id": str(parent_id),
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _iso(),
                "locked": False,
            },
        }

    async def user_thread(
        self, name: str, owner: dict[str, Any] | None = None, parent: int | None = None
    ) -> int:
        """A thread a person started (not on any message); announced with THREAD_CREATE."""
        thread_id = self.new_id()
        payload = self._thread_payload(
            thread_id, parent or self.general_id, name, int((owner or self.alice)["id"])
        )
        self.channels[thread_id] = payload
        await self._dispatch("THREAD_CREATE", {**payload, "newly_created": True})
        return thread_id

    def dm_channel(self, user: dict[str, Any] | None = None) -> int:
        """The DM channel between ``user`` and the bot."""
        user = user or self.alice
        for channel_id, channel in self.channels.items():
            if channel["type"] == DM and channel["recipients"][0]["id"] == user["id"]:
                return channel_id
        channel_id = self.new_id()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": DM,
            "last_message_id": None,
            "recipients": [user],
            "flags": 0,
        }
        return channel_id

    def group_dm(self, *users: dict[str, Any]) -> int:
        """A group DM of people (not the bot): reachable only through a person's own install."""
        channel_id = self.new_id()
        self.channels[channel_id] = {
            "id": str(channel_id),
            "type": GROUP_DM,
            "name": None,
            "icon": None,
            "owner_id": (users or (self.alice,))[0]["id"],
            "last_message_id": None,
            "recipients": list(users or (self.alice, self.bob)),
            "flags": 0,
        }
        return channel_id

    def threads(self) -> list[dict[str, Any]]:
        return [c for c in self.channels.values() if c["type"] == PUBLIC_THREAD]

    def _guild_payload(self, guild: FakeGuild) -> dict[str, Any]:
        roles = [
            {
                "id": str(guild.id),
                "name": "@everyone",
                "color": 0,
                "hoist": False,
                "position": 0,
                "permissions": str((1 << 41) - 1),
                "managed": False,
                "mentionable": False,
                "flags": 0,
            },
            {
                "id": str(guild.role_id),
                "name": self.bot["global_name"],
                "color": 0,
                "hoist": False,
                "position": 1,
                "permissions": "311385196544",
                "managed": True,
                "mentionable": False,
                "flags": 0,
                "tags": {"bot_id": self.bot["id"]},
            },
        ]
        mine = [c for c in self.channels.values() if c.get("guild_id") == str(guild.id)]
        guild_channels = [c for c in mine if c["type"] in (GUILD_TEXT, GUILD_VOICE)]
        threads = [c for c in mine if c["type"] == PUBLIC_THREAD] if self.announce_threads else []
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "owner_id": self.alice["id"],
            "roles": roles,
            "emojis": [],
            "stickers": [],
            "features": [],
            "member_count": 4,
            "large": False,
            "unavailable": False,
            "joined_at": _iso(),
            "channels": guild_channels,
            "threads": threads,
            "members": [self._member(self.bot, [str(guild.role_id)])],
            "voice_states": [],
            "presences": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _member(self, user: dict[str, Any], roles: Sequence[str] = ()) -> dict[str, Any]:
        return {
            "user": user,
            "roles": list(roles),
            "joined_at": _iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{path:.+}", self._cdn)
        app.router.add_route("*", "/api/v10/{path:.*}", self._api)
        return app

    async def before_close(self) -> None:
        for session in list(self._sessions):
            await session.ws.close()

    # -- waiting ----------------------------------------------------------------------------------

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], T], limit_s: float = 15.0) -> T:
        """The first truthy value of ``predicate``, re-checked whenever the fake's state changes."""
        async with asyncio.timeout(limit_s):
            while True:
                changed = self._changed
                value = predicate()
                if value:
                    return value
                await changed.wait()

    async def wait_ready(self, sessions: int = 1) -> None:
        """Until ``sessions`` gateway connections (in total) have been sent READY and GUILD_CREATE."""
        await self.wait_until(lambda: len(self.identifies) >= sessions)

    # -- what the bot did -------------------------------------------------------------------------

    def messages_in(self, channel_id: int, *, by_bot: bool | None = None) -> list[FakeMessage]:
        found = [m for m in self.messages.values() if m.channel_id == channel_id]
        if by_bot is not None:
            found = [m for m in found if (m.author_id == int(self.bot["id"])) is by_bot]
        return sorted(found, key=lambda m: m.id)

    def bot_messages(self, channel_id: int) -> list[FakeMessage]:
        """What everyone sees the bot post in a channel (ephemeral answers left out)."""
        return [m for m in self.messages_in(channel_id, by_bot=True) if not m.ephemeral]

    def thread_on(self, message_id: int) -> dict[str, Any] | None:
        channel = self.channels.get(message_id)
        return channel if channel is not None and channel["type"] == PUBLIC_THREAD else None

    def position(self, event: tuple[Any, ...]) -> int:
        return self.events.index(event)

    def rate_limit(
        self, method: str, path: str, retry_after: float, *, times: int = 1, is_global: bool = False
    ) -> None:
        """Answer the next ``times`` ``method`` requests whose path (after /api/v10) matches the
        regular expression ``path`` with a 429 asking to retry after ``retry_after`` seconds."""
        self.rate_limits.append(RateLimit(method, path, retry_after, times, is_global))

    def permissions_of(self, user: dict[str, Any]) -> int:
        return self.member_permissions.get(str(user["id"]), (1 << 41) - 1)

    def answer_raw(
        self,
        method: str,
        path: str,
        status: int,
        body: bytes,
        content_type: str = "text/plain",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` ``method`` requests whose path matches ``path`` with ``status``
        and this body instead of Discord's JSON; the request has no effect."""
        self.raw_answers.append(RawAnswer(method, path, status, body, content_type, times))

    # -- what users do ----------------------------------------------------------------------------

    def _attachment(self, channel_id: int, file: FakeFile) -> dict[str, Any]:
        attachment_id = self.new_id()
        path = f"{channel_id}/{attachment_id}/{file.filename}"
        self.files[path] = file
        url = file.url or f"{self.base_url}/attachments/{path}"
        payload: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": file.filename,
            "size": len(file.data) if file.declared_size is None else file.declared_size,
            "url": url,
            "proxy_url": url,
        }
        if file.content_type:
            payload["content_type"] = file.content_type
        if file.description is not None:
            payload["description"] = file.description
        return payload

    def _message_payload(
        self,
        channel_id: int,
        author: dict[str, Any],
        content: str,
        attachments: Sequence[dict[str, Any]] = (),
        *,
        reference: int | None = None,
        components: Sequence[dict[str, Any]] = (),
        kind: int = 0,
        flags: int = 0,
        webhook_id: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        channel = self.channels[channel_id]
        mentioned = []
        for user_id in dict.fromkeys(_MENTION.findall(content)):
            user = next((u for u in self._users() if u["id"] == user_id), None)
            if user is not None:
                mentioned.append(user)
        payload: dict[str, Any] = {
            "id": str(message_id or self.new_id()),
            "channel_id": str(channel_id),
            "author": author,
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentioned,
            "mention_roles": list(dict.fromkeys(_ROLE_MENTION.findall(content))),
            "attachments": list(attachments),
            "embeds": [],
            "pinned": False,
            "type": kind if reference is None or kind else 19,
            "flags": flags,
            "components": list(components),
        }
        if "guild_id" in channel:
            payload["guild_id"] = channel["guild_id"]
            if not author.get("bot"):
                payload["member"] = {k: v for k, v in self._member(author).items() if k != "user"}
        if webhook_id is not None:
            payload["webhook_id"] = str(webhook_id)
            payload["application_id"] = str(self.application_id)
        if reference is not None:
            referenced = self.messages.get(reference)
            if referenced is not None:
                payload["message_reference"] = {
                    "type": 0,
                    "message_id": str(reference),
                    "channel_id": str(referenced.channel_id),
                    **({"guild_id": channel["guild_id"]} if "guild_id" in channel else {}),
                }
                payload["referenced_message"] = referenced.payload
        return payload

    def _users(self) -> list[dict[str, Any]]:
        return [self.bot, self.alice, self.bob, self.other_bot]

    def mention(self) -> str:
        return f"<@{self.bot['id']}>"

    async def post(
        self,
        channel_id: int,
        content: str,
        *,
        author: dict[str, Any] | None = None,
        files: Sequence[FakeFile] = (),
        reply_to: int | None = None,
        webhook: bool = False,
    ) -> FakeMessage:
        """A person (or ``author``) posts a message; the gateway delivers MESSAGE_CREATE."""
        message = self.compose(
            channel_id, content, author=author, files=files, reply_to=reply_to, webhook=webhook
        )
        await self._store_and_dispatch(message)
        return message

    def compose(
        self,
        channel_id: int,
        content: str,
        *,
        author: dict[str, Any] | None = None,
        files: Sequence[FakeFile] = (),
        reply_to: int | None = None,
        webhook: bool = False,
    ) -> FakeMessage:
        """A message as a person posts it (its id stamped now) but not yet delivered: ``deliver``
        sends it through the gateway, so tests choose the order deliveries arrive in."""
        attachments = [self._attachment(channel_id, f) for f in files]
        payload = self._message_payload(
            channel_id,
            author or self.alice,
            content,
            attachments,
            reference=reply_to,
            webhook_id=self.new_id() if webhook else None,
        )
        return FakeMessage(payload, list(files))

    async def deliver(self, message: FakeMessage) -> None:
        await self._store_and_dispatch(message)

    async def _store_and_dispatch(self, message: FakeMessage) -> None:
        self.messages[message.id] = message
        channel = self.channels[message.channel_id]
        channel["last_message_id"] = str(message.id)
        self.events.append(("message", message.channel_id, message.id))
        self._touch()
        if not message.ephemeral:
            await self._dispatch("MESSAGE_CREATE", message.payload)

    def _registered(self, name: str) -> tuple[dict[str, Any], int | None]:
        for scope in (*self.guilds, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command, scope
        raise AssertionError(f"/{name} is not registered with the fake Discord")

    def _envelope(
        self, kind: int, channel_id: int, user: dict[str, Any], data: dict[str, Any]
    ) -> FakeInteraction:
        channel = self.channels[channel_id]
        interaction_id = self.new_id()
        token = "itoken-" + secrets.token_urlsafe(24)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": channel,
            "locale": "en-US",
            "entitlements": [],
            "app_permissions": str((1 << 41) - 1),
            "attachment_size_limit": self.upload_limit,
            "data": data,
        }
        if "guild_id" in channel:
            foreign = int(channel["guild_id"]) in self.foreign_guilds
            payload.update(
                {
                    "guild_id": channel["guild_id"],
                    "guild_locale": "en-US",
                    "member": {**self._member(user), "permissions": str(self.permissions_of(user))},
                    # A server that installed the app, or (foreign) the person's own install.
                    "authorizing_integration_owners": {"1": user["id"]}
                    if foreign
                    else {"0": channel["guild_id"]},
                    "context": 0,
                }
            )
            if foreign:
                payload["app_permissions"] = str(USER_INSTALL_PERMISSIONS)
        elif channel["type"] == GROUP_DM:  # a private channel: only the person's own install
            owners = {"1": user["id"]}
            payload.update({"user": user, "authorizing_integration_owners": owners, "context": 2})
            payload["app_permissions"] = str(USER_INSTALL_PERMISSIONS)
        else:
            payload.update({"user": user, "authorizing_integration_owners": {"1": user["id"]}, "context": 1})
        record = FakeInteraction(interaction_id, token, channel_id, payload, time.monotonic())
        self.interactions[token] = record
        return record

    async def command(
        self,
        name: str,
        channel_id: int | None = None,
        /,
        *,
        user: dict[str, Any] | None = None,
        unchecked: bool = False,
        raw_options: list[dict[str, Any]] | None = None,
        **options: str | FakeFile,
    ) -> FakeInteraction:
        """A person runs a registered slash command (string and attachment options).

        ``unchecked``: what a modified or out-of-date client can send: string values that are not
        among the option's choices, and a command the bot no longer registers (a cached one).
        ``raw_options``: the options exactly as given (an integer where a string is declared, a
        required option left out), as a forged interaction can carry them.
        """
        channel_id = channel_id or self.general_id
        try:
            command, scope = self._registered(name)
        except AssertionError:
            if not unchecked:
                raise
            command, scope = {"id": str(self.new_id()), "name": name, "options": []}, None
        declared = {o["name"]: o for o in command.get("options", [])}
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": []}
        if scope is not None:
            data["guild_id"] = str(scope)
        resolved: dict[str, dict[str, Any]] = {}
        for option_name, value in options.items():
            if option_name not in declared and not unchecked:
                raise AssertionError(f"/{name} has no option {option_name!r}")
            if isinstance(value, FakeFile):
                attachment = self._attachment(channel_id, value)
                resolved[attachment["id"]] = attachment
                data["options"].append({"name": option_name, "type": 11, "value": attachment["id"]})
            else:
                choices = [c["value"] for c in (declared.get(option_name) or {}).get("choices") or []]
                if choices and value not in choices and not unchecked:
                    raise AssertionError(f"{value!r} is not a choice of /{name} {option_name}")
                data["options"].append({"name": option_name, "type": 3, "value": value})
        if resolved:
            data["resolved"] = {"attachments": resolved}
        if raw_options is not None:
            data["options"] = raw_options
        record = self._envelope(2, channel_id, user or self.alice, data)
        await self._dispatch("INTERACTION_CREATE", record.payload)
        return record

    async def click(
        self,
        message: FakeMessage,
        custom_id: str,
        *,
        values: Sequence[str] = (),
        user: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        """A person clicks a button (or picks ``values`` in a select) on one of the bot's messages."""
        component = message.component(custom_id)
        if component is None:
            raise AssertionError(f"message {message.id} has no component {custom_id!r}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] == 3:
            allowed = {o["value"] for o in component.get("options") or []}
            if not set(values) <= allowed:
                raise AssertionError(f"{values!r} are not options of {custom_id!r}")
            data["values"] = list(values)
        record = self._envelope(3, message.channel_id, user or self.alice, data)
        record.payload["message"] = message.payload
        await self._dispatch("INTERACTION_CREATE", record.payload)
        return record

    async def message_command(
        self, name: str, message: FakeMessage, *, user: dict[str, Any] | None = None
    ) -> FakeInteraction:
        """A person right-clicks ``message`` and picks the message command ``name`` (Apps menu)."""
        command, scope = self._registered(name)
        if command.get("type") != MESSAGE_COMMAND:
            raise AssertionError(f"{name!r} is not a message command")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): message.payload}},
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        record = self._envelope(APPLICATION_COMMAND, message.channel_id, user or self.alice, data)
        await self._dispatch("INTERACTION_CREATE", record.payload)
        return record

    async def submit(
        self, opened: FakeInteraction, *values: str, user: dict[str, Any] | None = None
    ) -> FakeInteraction:
        """A person fills in the form the bot answered ``opened`` with (its text inputs, in order)
        and submits it."""
        modal = opened.modal
        if modal is None:
            raise AssertionError("the bot answered that interaction without a form")
        given = iter(values)
        rows = []
        for row in modal["components"]:
            inputs = [
                {"type": c["type"], "custom_id": c["custom_id"], "value": next(given, "")}
                for c in row.get("components") or ()
                if c.get("type") == 4
            ]
            rows.append({"type": row["type"], "components": inputs})
        data = {"custom_id": modal["custom_id"], "components": rows}
        record = self._envelope(MODAL_SUBMIT, opened.channel_id, user or self.alice, data)
        if "message" in opened.payload:  # a form opened from a button on a message
            record.payload["message"] = opened.payload["message"]
        await self._dispatch("INTERACTION_CREATE", record.payload)
        return record

    async def redeliver(self, message: FakeMessage) -> None:
        """Deliver MESSAGE_CREATE for a message again, as a gateway replay after a resume can."""
        await self._dispatch("MESSAGE_CREATE", message.payload)

    # -- gateway ----------------------------------------------------------------------------------

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        if guild_id in self.foreign_guilds and event != "INTERACTION_CREATE":
            return  # the bot is not in that server: only interactions with its commands reach it
        for session in list(self._sessions):
            if not session.identified or not session.receives(guild_id):
                continue
            self.dispatched.append((session.shard, event, guild_id))
            await session.dispatch(event, self._as_seen_by(session, event, data))

    def _as_seen_by(self, session: _Session, event: str, data: dict[str, Any]) -> dict[str, Any]:
        # Without the message-content intent, Discord blanks guild messages that neither mention
        # the bot nor come from it.
        if event != "MESSAGE_CREATE" or session.intents & MESSAGE_CONTENT or "guild_id" not in data:
            return data
        if data["author"]["id"] == self.bot["id"] or any(u["id"] == self.bot["id"] for u in data["mentions"]):
            return data
        return {**data, "content": "", "attachments": [], "embeds": [], "components": []}

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        self.gateway_queries.append(dict(request.query))
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = _Session(ws, request.query.get("compress"))
        self._sessions.append(session)
        try:
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Error while decoding payload.")
                return ws
            await session.send(
                {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None}
            )
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                op = payload.get("op")
                if op == 1:
                    await session.send({"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    await self._identify(session, payload["d"])
                elif op == 6:  # no session survives a connection here: ask for a fresh IDENTIFY
                    await session.send({"op": 9, "d": False, "s": None, "t": None})
        finally:
            self._sessions.remove(session)
            self.events.append(("disconnect", session.session_id))
            self._touch()
        return ws

    async def _identify(self, session: _Session, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents") or 0)
        if intents & MESSAGE_CONTENT and not self.allow_message_content:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = data.get("shard")
        if shard is not None:
            if not (isinstance(shard, list) and len(shard) == 2 and 0 <= shard[0] < shard[1]):
                await session.ws.close(code=4010, message=b"Invalid shard.")
                return
            session.shard = (int(shard[0]), int(shard[1]))
        if self.sharding_required and (session.shard or (0, 1))[1] < self.shards:
            await session.ws.close(code=4011, message=b"Sharding required.")
            return
        session.intents = intents
        session.identified = True
        guilds = [g for g in self.guilds.values() if session.receives(g.id)]
        await session.dispatch(
            "READY",
            {
                "v": 10,
                "user": self.bot,
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                **({"shard": list(session.shard)} if session.shard else {}),
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
            },
        )
        for guild in guilds:
            await session.dispatch("GUILD_CREATE", self._guild_payload(guild))
        self.identifies.append(data)
        self._touch()

    # -- REST -------------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.events.append(("download", path))
        file = self.files.get(path)
        if file is None or not file.available:
            return web.Response(status=404, text="Not Found")
        if file.redirect_to is not None:
            return web.Response(status=302, headers={"Location": file.redirect_to})
        if file.stream_bytes is not None:
            return await self._stream(request, path, file.stream_bytes)
        self.cdn_sent[path] = len(file.data)
        return web.Response(body=file.data, content_type=file.content_type or "application/octet-stream")

    async def _stream(self, request: web.Request, path: str, total: int) -> web.StreamResponse:
        """``total`` bytes of a PNG-looking body in 64 KiB writes, counting what got out."""
        response = web.StreamResponse(headers={"Content-Type": "image/png", "Content-Length": str(total)})
        await response.prepare(request)
        chunk = (b"\x89PNG\r\n\x1a\n" + bytes(64 * 1024))[: 64 * 1024]
        self.cdn_sent[path] = 0
        try:
            while self.cdn_sent[path] < total:
                piece = chunk[: total - self.cdn_sent[path]]
                await response.write(piece)
                self.cdn_sent[path] += len(piece)
        except ConnectionError:
            return response  # the bot hung up
        finally:
            self._touch()
        await response.write_eof()
        return response

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        self.requests.append((request.method, path))
        self.timed_requests.append((request.method, path, time.monotonic()))
        webhook_route = path.startswith(("/interactions/", "/webhooks/"))
        if not webhook_route and request.headers.get("Authorization") != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        for limit in self.rate_limits:
            if limit.times > 0 and limit.method == request.method and re.fullmatch(limit.path, path):
                limit.times -= 1
                self.rate_limited.append((request.method, path, time.monotonic()))
                self._touch()
                return limit.response()
        for raw in self.raw_answers:
            if raw.times > 0 and raw.method == request.method and re.fullmatch(raw.path, path):
                raw.times -= 1
                self.raw_answered.append((request.method, path))
                self._touch()
                return web.Response(status=raw.status, body=raw.body, content_type=raw.content_type)
        routes: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", r"/users/@me", self._me),
            ("GET", r"/oauth2/applications/@me", self._application),
            ("GET", r"/gateway/bot", self._gateway_bot),
            ("PUT", r"/applications/(\d+)/commands", self._put_commands),
            ("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._put_commands),
            ("GET", r"/channels/(\d+)", self._get_channel),
            ("POST", r"/channels/(\d+)/typing", self._typing),
            ("POST", r"/channels/(\d+)/messages", self._create_message),
            ("GET", r"/channels/(\d+)/messages/(\d+)", self._get_message),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._create_thread),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback),
            ("GET", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._get_original),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._edit_original),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
        ]
        for method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and request.method == method:
                try:
                    return await handler(request, *match.groups())
                except DiscordHTTPError as exc:
                    return exc.response()
        self.unhandled.append((request.method, path))
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    async def _me(self, _request: web.Request) -> web.Response:
        return _json(self.bot)

    async def _application(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot["global_name"],
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.alice,
                "verify_key": secrets.token_hex(32),
                "flags": 0,
                "team": None,
            }
        )

    async def _gateway_bot(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": self.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def _put_commands(
        self, request: web.Request, app_id: str, guild_id: str | None = None
    ) -> web.Response:
        if int(app_id) != self.application_id:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        if guild_id is not None and int(guild_id) not in self.guilds:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        body = await request.json()
        registered = []
        for command in body:
            entry = {
                **command,
                "id": str(self.new_id()),
                "application_id": app_id,
                "version": str(self.new_id()),
                "type": command.get("type", 1),
                # Discord answers every command with a description ("" for context-menu ones).
                "description": command.get("description", ""),
            }
            if guild_id is not None:
                entry["guild_id"] = guild_id
            registered.append(entry)
        self.commands[int(guild_id) if guild_id else None] = registered
        self._touch()
        return _json(registered)

    def _channel(self, channel_id: str | int) -> dict[str, Any]:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise DiscordHTTPError(404, 10003, "Unknown Channel")
        if int(channel.get("guild_id") or 0) in self.foreign_guilds or channel["type"] == GROUP_DM:
            raise DiscordHTTPError(403, 50001, "Missing Access")
        return channel

    async def _get_channel(self, _request: web.Request, channel_id: str) -> web.Response:
        return _json(self._channel(channel_id))

    async def _typing(self, _request: web.Request, channel_id: str) -> web.Response:
        self._channel(channel_id)
        self.events.append(("typing", int(channel_id)))
        self._touch()
        return web.Response(status=204)

    async def _read_body(self, request: web.Request) -> tuple[dict[str, Any], list[FakeFile]]:
        """JSON, or multipart with ``payload_json`` and ``files[n]`` parts (how files are sent)."""
        if not request.content_type.startswith("multipart/"):
            return (await request.json() if request.can_read_body else {}), []
        payload: dict[str, Any] = {}
        files: list[FakeFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            data = await part.read(decode=False)  # type: ignore[union-attr]
            if part.name == "payload_json":
                payload = json.loads(data)
            elif part.filename is not None:
                # Discord names an upload's type from its content, whatever the part header says.
                guessed = mimetypes.guess_type(part.filename)[0] or part.headers.get("Content-Type")
                files.append(FakeFile(part.filename, bytes(data), guessed))
        # Each file's description (alt text) comes in payload_json's "attachments", by index.
        described = {
            int(a["id"]): a.get("description") for a in payload.get("attachments") or () if "id" in a
        }
        files = [replace(f, description=described.get(i)) for i, f in enumerate(files)]
        return payload, files

    def _check_v2(self, channel_id: int, body: dict[str, Any], files: list[FakeFile]) -> None:
        """A Components V2 message (flag 1 << 15): no content or embeds, top-level layout components,
        galleries that show uploaded files, alt text within 1024 characters; refused outright (the
        components are read as classic ones) in the channels of ``refuse_v2``."""
        if not int(body.get("flags") or 0) & IS_COMPONENTS_V2:
            return
        components = body.get("components") or []
        if self.classic_only or channel_id in self.refuse_v2:
            raise form_error(
                ["components", "0", "type"],
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (1,).',
            )
        if body.get("content") or body.get("embeds"):
            raise form_error(
                ["content"],
                "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                "The 'content' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
            )
        names = {f.filename for f in files}
        for index, component in enumerate(components):
            if component.get("type") not in V2_TOP_LEVEL:
                raise form_error(
                    ["components", str(index), "type"], "UNION_TYPE_CHOICES", "Not a top-level component."
                )
        for item in FakeMessage({"components": components}).gallery():
            url = str((item.get("media") or {}).get("url") or "")
            if url.startswith("attachment://") and url.removeprefix("attachment://") not in names:
                raise form_error(
                    ["components"], "UNFURLED_MEDIA_ITEM_ATTACHMENT_NOT_FOUND", "No such attachment."
                )
            if len(item.get("description") or "") > 1024:
                raise form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 1024 or fewer in length.")

    def _check_message(self, body: dict[str, Any], files: list[FakeFile]) -> None:
        content = body.get("content") or ""
        if len(content) > 2000:
            raise DiscordHTTPError(400, 50035, "Invalid Form Body: content: Must be 2000 or fewer in length.")
        if any(len(f.description or "") > 1024 for f in files):
            raise form_error(
                ["attachments", "0", "description"],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 1024 or fewer in length.",
            )
        if len(files) > 10:
            raise DiscordHTTPError(400, 50035, "Invalid Form Body: files: Must be 10 or fewer in length.")
        if sum(len(f.data) for f in files) > self.upload_limit:
            raise DiscordHTTPError(413, 40005, "Request entity too large")
        if not content and not files and not body.get("components") and not body.get("embeds"):
            raise DiscordHTTPError(400, 50006, "Cannot send an empty message")

    def _bot_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[FakeFile],
        *,
        kind: int = 0,
        flags: int = 0,
        webhook: bool = False,
        message_id: int | None = None,
    ) -> FakeMessage:
        reference = None
        ref = body.get("message_reference")
        if ref:
            target = self.messages.get(int(ref["message_id"]))
            if target is None and ref.get("fail_if_not_exists", True):
                raise DiscordHTTPError(400, 50035, "Invalid Form Body: message_reference: Unknown message")
            if target is not None and target.channel_id != channel_id:
                raise DiscordHTTPError(
                    400, 50035, "Invalid Form Body: message_reference: Cannot reply across channels"
                )
            reference = target.id if target else None
        attachments = [self._attachment(channel_id, f) for f in files]
        payload = self._message_payload(
            channel_id,
            self.bot,
            body.get("content") or "",
            attachments,
            reference=reference,
            components=body.get("components") or (),
            kind=kind,
            flags=flags | int(body.get("flags") or 0),
            webhook_id=self.application_id if webhook else None,
            message_id=message_id,
        )
        payload["embeds"] = list(body.get("embeds") or ())
        return FakeMessage(
            payload,
            files,
            allowed_mentions=body.get("allowed_mentions"),
            ephemeral=bool(payload["flags"] & EPHEMERAL),
        )

    async def _create_message(self, request: web.Request, channel_id: str) -> web.Response:
        self._channel(channel_id)
        body, files = await self._read_body(request)
        self._check_message(body, files)
        self._check_v2(int(channel_id), body, files)
        message = self._bot_message(int(channel_id), body, files)
        await self._store_and_dispatch(message)
        return _json(message.payload)

    async def _get_message(self, _request: web.Request, channel_id: str, message_id: str) -> web.Response:
        self._channel(channel_id)
        message = self.messages.get(int(message_id))
        if message is None or message.channel_id != int(channel_id):
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return _json(message.payload)

    async def _create_thread(self, request: web.Request, channel_id: str, message_id: str) -> web.Response:
        channel = self._channel(channel_id)
        if channel["type"] != GUILD_TEXT:
            raise DiscordHTTPError(400, 50024, "Cannot execute action on this channel type")
        if int(channel_id) in self.forbidden_threads:
            raise DiscordHTTPError(403, 50013, "Missing Permissions")
        starter = self.messages.get(int(message_id))
        if starter is None or starter.channel_id != int(channel_id):
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        if int(message_id) in self.channels:
            raise DiscordHTTPError(400, 160004, "A thread has already been created for this message")
        body = await request.json()
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise DiscordHTTPError(
                400, 50035, "Invalid Form Body: name: Must be between 1 and 100 in length."
            )
        thread = self._thread_payload(int(message_id), int(channel_id), name, int(self.bot["id"]))
        self.channels[int(message_id)] = thread
        starter.payload["thread"] = thread
        self.events.append(("thread", int(channel_id), int(message_id)))
        self._touch()
        await self._dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    # -- interactions -----------------------------------------------------------------------------

    def _interaction(self, token: str) -> FakeInteraction:
        record = self.interactions.get(token)
        if record is None:
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        return record

    async def _callback(self, request: web.Request, interaction_id: str, token: str) -> web.Response:
        record = self._interaction(token)
        if record.id != int(interaction_id):
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        body, files = await self._read_body(request)
        if record.callbacks:
            raise DiscordHTTPError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - record.created > INTERACTION_DEADLINE_S:
            record.late_callbacks += 1
            self._touch()
            raise DiscordHTTPError(404, 10062, "Unknown interaction")
        kind = int(body["type"])
        data = body.get("data") or {}
        record.callbacks.append(kind)
        self.events.append(("callback", record.id, kind))
        message: FakeMessage | None = None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            if kind == CHANNEL_MESSAGE:
                self._check_message(data, files)
            flags = int(data.get("flags") or 0) | (LOADING if kind == DEFERRED_CHANNEL_MESSAGE else 0)
            message = self._bot_message(
                record.channel_id, {**data, "flags": flags}, files, kind=20, webhook=True
            )
            record.original_id = message.id
            await self._store_and_dispatch(message)
        elif kind == MODAL:
            if record.payload["type"] == MODAL_SUBMIT:
                raise DiscordHTTPError(400, 50035, "Invalid Form Body: a form cannot answer a form")
            if not data.get("custom_id") or not data.get("title") or not data.get("components"):
                raise DiscordHTTPError(
                    400, 50035, "Invalid Form Body: a modal needs custom_id, title, components"
                )
            record.modal = data
        elif kind == UPDATE_MESSAGE:
            target = self.messages[int(record.payload["message"]["id"])]
            target.payload.update({k: v for k, v in data.items() if k in ("content", "components")})
        self._touch()
        if "with_response" not in request.query:
            return web.Response(status=204)
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": record.payload["type"],
                "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None:
            answer["interaction"]["response_message_id"] = str(message.id)
            answer["resource"] = {"type": kind, "message": message.payload}
        return _json(answer)

    def _original(self, token: str) -> FakeMessage:
        record = self._interaction(token)
        if record.original_id is None:
            raise DiscordHTTPError(404, 10008, "Unknown Message")
        return self.messages[record.original_id]

    async def _get_original(self, _request: web.Request, _app: str, token: str) -> web.Response:
        return _json(self._original(token).payload)

    async def _edit_original(self, request: web.Request, _app: str, token: str) -> web.Response:
        original = self._original(token)
        body, files = await self._read_body(request)
        self._edit(original, body, files)
        return _json(original.payload)

    def _edit(self, message: FakeMessage, body: dict[str, Any], files: list[FakeFile]) -> None:
        merged = {"content": message.content, **body}
        self._check_message(merged, files or message.files)
        if "content" in body:
            message.payload["content"] = body["content"] or ""
        if "components" in body:
            message.payload["components"] = body["components"] or []
        if "embeds" in body:
            message.payload["embeds"] = body["embeds"] or []
        if files:
            message.files = files
            message.payload["attachments"] = [self._attachment(message.channel_id, f) for f in files]
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        message.payload["flags"] = int(message.payload.get("flags") or 0) & ~LOADING
        message.payload["edited_timestamp"] = _iso()
        self.events.append(("edit", message.channel_id, message.id))
        self._touch()

    async def _followup(self, request: web.Request, app_id: str, token: str) -> web.Response:
        record = self._interaction(token)
        if int(app_id) != self.application_id:
            raise DiscordHTTPError(404, 10015, "Unknown Webhook")
        if not record.callbacks:
            raise DiscordHTTPError(400, 40060, "The interaction has not been acknowledged yet.")
        body, files = await self._read_body(request)
        # The first followup after a deferred ("thinking") response replaces the loading message.
        if record.original_id is not None and self.messages[record.original_id].loading:
            original = self.messages[record.original_id]
            self._edit(original, body, files)
            return _json(original.payload)
        self._check_message(body, files)
        self._check_v2(record.channel_id, body, files)
        message = self._bot_message(record.channel_id, body, files, webhook=True)
        record.followup_ids.append(message.id)
        await self._store_and_dispatch(message)
        return _json(message.payload)
