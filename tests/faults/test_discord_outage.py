"""`python -m bot` on Discord while its PostgreSQL restarts: messages sent meanwhile are held and
answered once, in order, and /readyz says the database is down until it is back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bot.text import messages
from tests.adapters.discord.test_discord_process import discord_env
from tests.adapters.discord.test_discord_shards import free_port
from tests.auxil.fake_discord import FakeDiscord, FakeMessage
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.pg_leftovers import settled_leftovers
from tests.auxil.postgres import PostgresServer
from tests.auxil.process import BotProcess
from tests.test_health import get_ready, ready_becomes

SENTENCES = (
    messages.FAILED,
    messages.INTERRUPTED,
    messages.STORAGE_UNREACHABLE,
    messages.NOT_SAVED,
    messages.HEAD_MOVED,
)


async def test_discord_messages_sent_while_postgres_restarts_are_answered_once_in_order(
    restartable_postgres: PostgresServer, restartable_url: str, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    port = free_port()
    async with FakeDiscord() as fake:
        env = {
            **discord_env(fake, fake_gemini, tmp_path),
            "DATABASE_URL": restartable_url,
            "PORT": str(port),
            "PROCESS_LEASE_S": "4",
        }
        bot = await BotProcess.start(tmp_path, env)
        try:
            await bot.wait_while_running(fake.wait_ready())
            first = await fake.post(fake.general_id, f"{fake.mention()} a red bicycle at dawn")
            await fake.wait_until(lambda: fake.bot_messages(first.id))  # the thread's id is the message's

            await asyncio.to_thread(restartable_postgres.stop_for_now)
            assert (await ready_becomes(port, 503))["parts"]["database"] == "down"
            await fake.post(first.id, "now as a watercolor")
            await fake.post(first.id, "add a black cat")
            other = await fake.post(fake.general_id, f"{fake.mention()} a blue whale")
            await asyncio.sleep(3)
            assert len(fake.bot_messages(first.id)) == 1 and len(fake_gemini.requests) == 1  # held
            await asyncio.to_thread(restartable_postgres.start_again)

            replies = await fake.wait_until(lambda: _at_least(_images(fake, first.id), 3), 60)
            [whale] = await fake.wait_until(lambda: fake.bot_messages(other.id), 30)
            assert (await get_ready(port))[0] == 200
            code = await bot.stop()
        finally:
            bot.ensure_dead()
    assert code == 0
    assert len(replies) == 3 and whale.files
    notes = [m.payload.get("content") for m in fake.bot_messages(first.id) if not m.files]
    assert notes in ([], [messages.QUEUED]), notes  # the second waited behind the first
    shown = [r.payload.get("content") or "" for r in [*replies, whale]]
    assert not [text for text in shown if any(sentence in text for sentence in SENTENCES)]
    thread = [r.prompt for r in fake_gemini.requests if r.prompt != "a blue whale"]
    assert thread == ["a red bicycle at dawn", "now as a watercolor", "add a black cat"]  # in order
    assert [r.prompt for r in fake_gemini.requests].count("a blue whale") == 1
    leftovers = await settled_leftovers(restartable_url, 10)
    assert leftovers.count == 0, leftovers.describe()
    logs = [json.loads(line) for line in bot.lines if line.startswith("{")]
    said = [entry["message"] for entry in logs]
    assert "database unavailable; holding work until it is back" in said and "database is back" in said
    assert bot.problems([fake.token, "process-key"]) == [], "\n".join(bot.lines[-60:])


def _images(fake: FakeDiscord, thread_id: int) -> list[FakeMessage]:
    return [m for m in fake.bot_messages(thread_id) if m.files]


def _at_least(found: list[FakeMessage], count: int) -> list[FakeMessage] | None:
    return found if len(found) >= count else None
