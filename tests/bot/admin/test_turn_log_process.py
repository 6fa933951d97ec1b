"""`python -m bot` as a deployment runs it (Discord, ADMIN_TOKEN): the turns it runs are written to
the turn log by the process itself, and its own dashboard shows them (latency and failures)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from storage.reports import OutcomeCount
from storage.sqlite_store import SqliteStore
from tests.adapters.discord.test_discord_process import discord_env
from tests.auxil.admin import TOKEN
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini, prompt_blocked
from tests.auxil.process import BotProcess


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def _section(page: str, name: str) -> str:
    found = re.search(rf'<section id="section-{name}">(.*?)</section>', page, re.S)
    assert found, name
    return found.group(1)


async def _dashboard_once(base: str, done: str, limit_s: float = 20.0) -> str:
    """The signed-in dashboard page once its outcomes section shows ``done`` (the turn log is
    written every 2 s, off the turns' path)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(f"{base}/admin/sign-in", data={"token": TOKEN}) as signed:
            assert signed.status == 200
        deadline = time.monotonic() + limit_s
        while True:
            async with client.get(f"{base}/admin") as response:
                assert response.status == 200
                page = await response.text()
            if done in _section(page, "outcomes") or time.monotonic() > deadline:
                return page
            await asyncio.sleep(0.25)


async def test_the_process_logs_its_turns_and_its_dashboard_shows_them(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = {**discord_env(fake, fake_gemini, tmp_path), "ADMIN_TOKEN": TOKEN}
    bot = await BotProcess.start(tmp_path, env)
    try:
        port = (await bot.wait_for_log("health check listening"))["port"]
        await bot.wait_while_running(fake.wait_ready())
        fake_gemini.enqueue_for("forbidden", prompt_blocked())
        for prompt in ("a lighthouse at dusk", "a forbidden thing"):
            message = await fake.post(fake.general_id, f"{fake.mention()} {prompt}")
            await fake.wait_until(lambda m=message: fake.bot_messages(m.id))
        page = await _dashboard_once(f"http://127.0.0.1:{port}", "prompt_blocked")
        assert await bot.stop() == 0
    finally:
        bot.ensure_dead()
    outcomes = _section(page, "outcomes")
    assert "blocked_by_safety" in outcomes and "prompt_blocked" in outcomes
    latency = _section(page, "latency")  # the answered turn: one today
    assert re.search(r'<table id="latency">.*?<tbody><tr><td>[^<]+</td><td>1</td>', latency, re.S), latency
    store = SqliteStore(tmp_path / "bot.sqlite3")
    await store.open()
    try:
        logged = await store.outcome_counts(0)
    finally:
        await store.close()
    assert sorted(logged, key=lambda o: o.outcome) == [
        OutcomeCount("blocked_by_safety", "prompt_blocked", 1),
        OutcomeCount("image", "image", 1),
    ]
