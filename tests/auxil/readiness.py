"""A platform adapter running on a production-wired core with its /healthz and /readyz on a small
server of their own (port 0), as a process that serves no Slack events runs them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from adapters.discord.adapter import DiscordAdapter
from bot.health import Health, HealthServer
from bot.ports import PlatformAdapter
from tests.auxil.core import Core
from tests.auxil.discord_bot import discord_core
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini


@asynccontextmanager
async def serving_readiness(core: Core, adapter: PlatformAdapter) -> AsyncIterator[HealthServer]:
    """The health server (its ``port`` set), then the adapter's run; both stopped, and the core."""
    server = HealthServer(Health(core.store, [adapter]), port=0)
    await server.start()
    assert server.port
    task = asyncio.create_task(adapter.run())
    try:
        yield server
    finally:
        await adapter.close()
        await asyncio.wait_for(task, 15)
        await server.close()
        await core.stop()


@asynccontextmanager
async def discord_readiness(gemini: FakeGemini, db: Path) -> AsyncIterator[tuple[FakeDiscord, HealthServer]]:
    """The Discord adapter against a fake Discord the test may close and start again (closed at
    the end), and its health server."""
    fake = await FakeDiscord().start()
    core = await discord_core(fake, gemini, db).start()
    try:
        async with serving_readiness(core, DiscordAdapter(core.config, core.service)) as server:
            yield fake, server
    finally:
        await fake.close()
