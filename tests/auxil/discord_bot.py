"""A running Discord adapter on a production-wired core, against the fake Discord and Gemini: start
it (``start_bot``), or take the ``fake`` and ``bot`` fixtures (import them into a test module as
``from tests.auxil.discord_bot import bot as bot``); and what the tests read back through it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.adapter import DiscordAdapter
from bot.vocabulary import ConversationKey
from tests.auxil import image_factory as img
from tests.auxil.core import Core
from tests.auxil.fake_discord import FakeDiscord, FakeFile, FakeMessage, pings_nobody
from tests.auxil.fake_gemini import FakeGemini


@dataclass
class Bot:
    """A running DiscordAdapter on a production-wired core, plus the fakes it talks to."""

    fake: FakeDiscord
    gemini: FakeGemini
    core: Core
    adapter: DiscordAdapter
    task: asyncio.Task[None]

    async def stop(self) -> None:
        await self.adapter.close()
        await asyncio.wait_for(self.task, 15)
        await self.core.stop()

    def key(self, thread_id: int) -> ConversationKey:
        thread = self.fake.channels[thread_id]
        return ConversationKey("discord", str(self.fake.guild_id), thread["parent_id"], str(thread_id))

    async def replies(self, channel_id: int, count: int = 1) -> list[FakeMessage]:
        """The bot's first ``count`` messages in a channel, once they are there and the turn that
        posted them has finished (a message sent before that would be queued behind it)."""

        def enough() -> list[FakeMessage] | None:
            found = self.fake.bot_messages(channel_id)
            return found if len(found) >= count else None

        found = await self.fake.wait_until(enough)
        assert await self.core.service.drain(15)
        return found[:count]

    async def mention(self, text: str, **kwargs: Any) -> tuple[FakeMessage, int]:
        """``@Bot text`` in #general; returns the message and the thread the bot opened on it."""
        message = await self.fake.post(self.fake.general_id, f"{self.fake.mention()} {text}", **kwargs)
        await self.fake.wait_until(lambda: self.fake.thread_on(message.id))
        return message, message.id


# The message context menus, as people see them in Discord's "Apps" menu.
EDIT = "Edit with Nano Banana"
PIN = "Pin as reference"


def photo() -> FakeFile:
    """The picture the context-menu tests right-click."""
    return FakeFile("harbour.png", img.png(80, 60, img.BLUE), "image/png")


def discord_core(fake: FakeDiscord, gemini: FakeGemini, db: Path, env: dict[str, str] | None = None) -> Core:
    """A core (not started) configured for the fake Discord."""
    return Core(gemini, db, env={"DISCORD_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url, **(env or {})})


async def start_adapter(
    fake: FakeDiscord,
    gemini: FakeGemini,
    db: Path,
    env: dict[str, str] | None = None,
    sessions: int | None = None,
) -> tuple[Core, DiscordAdapter, asyncio.Task[None]]:
    """A DiscordAdapter running on a started core, once the fake has sent READY to ``sessions``
    connections (by default, one more than it had)."""
    core = await discord_core(fake, gemini, db, env).start()
    adapter = DiscordAdapter(core.config, core.service)
    task = asyncio.create_task(adapter.run())
    ready = asyncio.create_task(fake.wait_ready(len(fake.identifies) + 1 if sessions is None else sessions))
    done, _ = await asyncio.wait([task, ready], timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        await core.stop()
        task.result()
    assert ready in done, "the bot never connected to the fake gateway"
    return core, adapter, task


async def start_bot(
    fake: FakeDiscord, gemini: FakeGemini, db: Path, env: dict[str, str] | None = None
) -> Bot:
    return Bot(fake, gemini, *await start_adapter(fake, gemini, db, env))


async def stop_and_check(bot: Bot) -> None:
    """Stop the bot, then what every conversation on Discord holds: nobody pinged, no request the
    fake could not answer, every interaction acknowledged."""
    await bot.stop()
    fake = bot.fake
    assert_never_pinged(fake)
    assert not fake.unhandled
    # Every interaction was acknowledged, within Discord's 3 seconds.
    assert all(r.callbacks and not r.late_callbacks for r in fake.interactions.values())


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    running = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3")
    yield running
    await stop_and_check(running)


def assert_never_pinged(fake: FakeDiscord) -> None:
    for message in fake.messages.values():
        if message.author_id == int(fake.bot["id"]) and message.content:
            assert pings_nobody(message.allowed_mentions), message.content


async def ephemeral_answer(fake: FakeDiscord, interaction_token: str) -> FakeMessage:
    """The private answer to an interaction (its deferred response, once filled in)."""

    def answered() -> FakeMessage | None:
        record = fake.interactions[interaction_token]
        ids = ([record.original_id] if record.original_id else []) + record.followup_ids
        for message_id in ids:
            message = fake.messages[message_id]
            if message.ephemeral and not message.loading and message.content:
                return message
        return None

    return await fake.wait_until(answered)
