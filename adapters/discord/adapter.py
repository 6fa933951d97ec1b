"""The Discord adapter: connects with discord.py, registers commands and controls, runs until closed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.api_errors import count_failures, count_webhook_failures
from adapters.discord.commands import build_commands
from adapters.discord.controls import Controls
from adapters.discord.conversation import Conversation
from adapters.discord.desk import FormDesk
from adapters.discord.doors import EditDoor, PinDoor
from adapters.discord.permissions import invite_url, user_install_url
from adapters.discord.pins import PinCommands, pin_commands
from adapters.discord.places import PLATFORM
from adapters.discord.settings import SettingsCommands
from adapters.discord.shards import IdentifyGate, shard_list
from adapters.discord.sink import NO_MENTIONS, ChannelSink, upload_limit
from adapters.discord.surface import Surface
from adapters.discord.words import BAD_TOKEN, INTENT_REFUSED
from bot.config import DEFAULT_DISCORD_API_URL, Config, reveal
from bot.entry.leaving import forget_workspace
from bot.entry.service import ConversationService
from bot.observing.null import NOBODY
from bot.ports import Observer, PlatformError, ReplySink
from bot.vocabulary import ConversationKey

log = logging.getLogger(__name__)

# Gateway close codes: an invalid token (the REST login usually catches it first), a shard
# number Discord does not accept, and too few shards for the bot's number of servers.
AUTHENTICATION_FAILED = 4004
INVALID_SHARD = 4010
SHARDING_REQUIRED = 4011
# Grace for replies being posted when the host stops the bot (it kills ~10 s after SIGTERM).
CLOSE_GRACE_S = 8.0


def intents_for(config: Config) -> discord.Intents:
    """Guilds (channels and threads), guild and DM messages, and message content when allowed."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = config.discord.message_content
    return intents


class _Client(discord.AutoShardedClient):
    """discord.py's client wired to the adapter: commands, persistent controls, events, and the
    shards this process runs (all of them unless DISCORD_SHARD_IDS says otherwise)."""

    def __init__(self, adapter: DiscordAdapter, intents: discord.Intents) -> None:
        config = adapter.config
        ids = list(config.discord.shard_ids) if config.discord.shard_ids is not None else None
        super().__init__(
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            chunk_guilds_at_startup=False,
            shard_count=config.discord.shard_count,
            shard_ids=ids,
        )
        self.identify_gate = IdentifyGate()
        count_failures(
            self.http, lambda method, status: adapter.observer.platform_error(PLATFORM, method, status)
        )
        # Every command in both installs (a server's, and a person's own) and every context: servers,
        # DMs with the bot, group DMs and DMs between people.
        self.tree = app_commands.CommandTree(
            self,
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=True
            ),
        )
        # One feature group each, like discord.py cogs; they share the surface, not each other.
        self.surface = Surface.build(self, adapter.service, adapter.config)
        self.controls = Controls(self.surface)
        self.conversation = Conversation(self.surface, self.controls.kit)
        self.settings = SettingsCommands(self.surface)
        self.pins = PinCommands(self.surface)
        self.edit_door = EditDoor(self.surface, self.controls.kit)
        self.pin_door = PinDoor(self.surface, self.pins)
        self.forms = FormDesk(self.surface, self.edit_door, self.pin_door, self.controls)
        self.tree.error(self.settings.command_error)
        self._adapter = adapter

    async def setup_hook(self) -> None:
        await self._adapter.setup(self)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await self.identify_gate.wait(shard_id)

    async def on_ready(self) -> None:
        log.info(
            "discord connected",
            extra={
                "user": str(self.user),
                "user_id": self.user.id if self.user else None,
                "guilds": len(self.guilds),
                "shards": sorted(self.shards),
                "shard_count": self.shard_count,
            },
        )

    async def on_message(self, message: discord.Message) -> None:
        await self.conversation.on_message(message)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await self.forms.on_interaction(interaction)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server (kicked, banned, or the server deleted): its data goes. A
        GUILD_DELETE with ``unavailable`` (an outage) is on_guild_unavailable instead: all kept."""
        async with self.surface.in_flight.track():
            service = self.surface.service
            await forget_workspace(
                service.store, PLATFORM, str(guild.id), reason="guild_remove", drop_remote=service.drop_remote
            )


class DiscordAdapter:
    """Runs the bot on Discord: the gateway for events, REST for replies, both via discord.py."""

    name = "discord"

    def __init__(self, config: Config, service: ConversationService) -> None:
        self.config = config
        self.service = service
        self._client: _Client | None = None
        self._closed = False
        self._recommended_shards = 1
        # Told of each failed REST call, by route and status class; set by the runtime.
        self.observer: Observer = NOBODY

    def _prepare_library(self) -> None:
        # discord.py keeps the REST base in a class attribute; set here, never at import.
        Route.BASE = self.config.discord.api_url.rstrip("/")
        # This bot never joins voice: silence discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False

    async def run(self) -> None:
        if self._closed:
            return
        token = reveal(self.config.discord.token)
        self._prepare_library()
        # Interaction responses and follow-ups go through discord.py's webhook adapter: counted
        # for every task this one starts.
        count_webhook_failures(lambda method, status: self.observer.platform_error(PLATFORM, method, status))
        client = self._client = _Client(self, intents_for(self.config))
        try:
            await self._login(client, token)
            await self._ask_gateway(client)
            if not self._closed:
                await self._connect(client)
        except Exception:
            # close() during login or connect makes discord.py fail on its closed session; that
            # is a shutdown, not a platform problem to report.
            if self._closed:
                return
            raise
        finally:
            await client.close()
            await client.surface.files.close()

    async def _login(self, client: _Client, token: str) -> None:
        try:
            await client.login(token)
        except discord.LoginFailure as exc:
            raise PlatformError(BAD_TOKEN) from exc
        except discord.HTTPException as exc:
            raise PlatformError(
                f"Discord refused the login (HTTP {exc.status}); check DISCORD_TOKEN and DISCORD_API_URL."
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise PlatformError(
                f"Could not reach Discord at {self.config.discord.api_url} ({type(exc).__name__}); "
                "check the network or DISCORD_API_URL."
            ) from exc

    async def _ask_gateway(self, client: _Client) -> None:
        """GET /gateway/bot: where the websocket is (behind a proxy or in tests it is not the
        hard-coded wss://gateway.discord.gg), how many shards to run when DISCORD_SHARD_COUNT is
        unset, and how many sessions may start at once."""
        try:
            shards, url, limits = await client.http.get_bot_gateway()
        except (discord.GatewayNotFound, discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise PlatformError(
                f"Discord at {self.config.discord.api_url} did not say where its gateway is; "
                "check DISCORD_API_URL."
            ) from exc
        self._recommended_shards = int(shards)
        if self.config.discord.api_url.rstrip("/") != DEFAULT_DISCORD_API_URL:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        if client.shard_count is None:
            client.shard_count = int(shards)
        client.identify_gate = IdentifyGate(int(limits.get("max_concurrency") or 1))
        log.info(
            "discord shards",
            extra={
                "shard_count": client.shard_count,
                "shard_ids": shard_list(client.shard_count, self.config.discord.shard_ids),
                "recommended": int(shards),
            },
        )

    async def _connect(self, client: _Client) -> None:
        try:
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired as exc:
            raise PlatformError(INTENT_REFUSED) from exc
        except discord.ConnectionClosed as exc:
            if exc.code == AUTHENTICATION_FAILED:
                raise PlatformError(BAD_TOKEN) from exc
            if exc.code in (INVALID_SHARD, SHARDING_REQUIRED):
                raise PlatformError(
                    f"Discord refused shard {exc.shard_id} of {client.shard_count} (code {exc.code}); "
                    f"it asks for {self._recommended_shards} shards: set DISCORD_SHARD_COUNT to at least "
                    "that, or unset it and DISCORD_SHARD_IDS."
                ) from exc
            raise PlatformError(
                f"Discord closed the gateway connection (code {exc.code}); check the bot's settings "
                "in the Developer Portal."
            ) from exc

    async def setup(self, client: _Client) -> None:
        """After login, before the gateway: persistent controls, slash commands, the invite URL."""
        client.add_dynamic_items(*client.controls.items())
        guilds = [discord.Object(id=g) for g in self.config.discord.guild_ids]
        models = self.service.allowed_models
        commands = build_commands(client.conversation, client.settings, self.service.capabilities, models)
        for command in [*commands, *pin_commands(client.pins)]:
            client.tree.add_command(command, guilds=guilds or discord.utils.MISSING)
        for menu in (client.edit_door.command(), client.pin_door.command()):
            client.tree.add_command(menu, guilds=guilds or discord.utils.MISSING)
        await self._sync_commands(client, guilds)
        # Once per start, over REST (the gateway is not needed to post).
        try:
            await client.conversation.announce_interrupted()
        except Exception:
            log.exception("announcing interrupted turns failed")
        application_id = client.application_id
        if application_id is not None:
            log.info(
                "discord invite URL",
                extra={
                    "invite_url": invite_url(application_id),
                    "user_install_url": user_install_url(application_id),
                    "application_id": application_id,
                },
            )

    async def _sync_commands(self, client: _Client, guilds: list[discord.Object]) -> None:
        # Guild commands appear at once; global ones can take a while to reach every client.
        # With guilds configured the global list is emptied, so no command shows up twice.
        targets: list[Any] = [*guilds, None]
        for guild in targets:
            try:
                synced = await client.tree.sync(guild=guild)
            except discord.HTTPException as exc:
                log.warning(
                    "discord command registration failed",
                    extra={
                        "guild_id": guild.id if guild else None,
                        "status": exc.status,
                        "code": exc.code,
                        "hint": "check DISCORD_GUILD_ID and that the bot was invited to that server "
                        "with the applications.commands scope",
                    },
                )
                continue
            log.info(
                "discord commands registered",
                extra={"guild_id": guild.id if guild else None, "commands": sorted(c.name for c in synced)},
            )

    async def connected(self) -> bool:
        """Whether every shard this process runs has an open gateway connection."""
        client = self._client
        if client is None or client.is_closed() or not client.is_ready() or client.shard_count is None:
            return False
        shards = client.shards
        expected = shard_list(client.shard_count, self.config.discord.shard_ids)
        return all(i in shards and not shards[i].is_closed() for i in expected)

    async def wait_idle(self, limit_s: float) -> bool:
        """Wait up to ``limit_s`` until no event or interaction handler is at work."""
        client = self._client
        return client is None or await client.surface.in_flight.wait_idle(limit_s)

    def thread_sinks(self) -> tuple[str, Callable[[ConversationKey, str], ReplySink | None]]:
        """Where a region edit of a Discord conversation is posted: its thread (or DM)."""
        return PLATFORM, self._thread_sink

    def _thread_sink(self, key: ConversationKey, _person: str) -> ReplySink | None:
        client = self._client
        if client is None or not key.thread.isdigit():
            return None
        guild = int(key.workspace) if key.workspace.isdigit() else None
        thread = int(key.thread)
        channel = client.get_channel(thread) or client.get_partial_messageable(thread, guild_id=guild)
        assert isinstance(channel, discord.abc.Messageable)
        return ChannelSink(channel=channel, key=key, limit=upload_limit(channel), kit=client.controls.kit)

    async def announce_interrupted(self) -> None:
        if self._client is not None and not self._closed:
            await self._client.conversation.announce_interrupted()

    async def close(self) -> None:
        """Stop taking events, let handlers at work post their replies (up to a grace), disconnect."""
        self._closed = True
        client = self._client
        if client is None:
            return
        client.surface.in_flight.closing = True
        if not await self.wait_idle(CLOSE_GRACE_S):
            log.warning("discord handlers still running at shutdown")
        await client.close()
