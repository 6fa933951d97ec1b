"""`python -m bot` as a deployment runs it, on the fake Discord and the fake Gemini."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import bot_env, run_bot

# The list: send messages, create public threads, send messages in threads, attach
# files, read message history, use application commands.
EXPECTED_PERMISSIONS = (1 << 11) | (1 << 35) | (1 << 38) | (1 << 15) | (1 << 16) | (1 << 31)


def discord_env(
    fake: FakeDiscord, gemini: FakeGemini, tmp_path: Path, token: str | None = None
) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "DISCORD_TOKEN": token or fake.token,
        "DISCORD_API_URL": fake.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


class BotProcess:
    """`python -m bot` with piped output; stderr (JSON log lines) is collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str]) -> BotProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=cwd,
            env=bot_env(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode())

    async def wait_until_connected(self, fake: FakeDiscord) -> None:
        ready = asyncio.create_task(fake.wait_ready(), name="ready")
        exited = asyncio.create_task(self.proc.wait(), name="exited")
        done, pending = await asyncio.wait([ready, exited], timeout=30, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        assert ready in done, "".join(self.stderr)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 20)
        await self._reader
        return code

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr if line.startswith("{")]


async def test_python_m_bot_serves_discord_and_stops_cleanly_on_sigterm(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    bot = await BotProcess.start(tmp_path, discord_env(fake, fake_gemini, tmp_path))
    try:
        await bot.wait_until_connected(fake)
        message = await fake.post(fake.general_id, f"{fake.mention()} a red bicycle at dawn")
        await fake.wait_until(lambda: fake.thread_on(message.id))
        [reply] = await fake.wait_until(lambda: fake.bot_messages(message.id))
        assert reply.files and reply.custom_ids() == ["nb:regen:1", "nb:ar:1"]
        assert fake_gemini.requests[0].prompt == "a red bicycle at dawn"
        # The gateway connection came from GET /gateway/bot, zlib-compressed as discord.py asks.
        assert ("GET", "/gateway/bot") in fake.requests
        assert fake.gateway_queries[0]["compress"] == "zlib-stream"
        code = await bot.stop()
    finally:
        bot.kill()
    stderr = "".join(bot.stderr)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert fake.token not in stderr and "process-key" not in stderr
    messages = [entry["message"] for entry in bot.logs()]
    assert "discord commands registered" in messages and "bot stopped" in messages
    assert not [e for e in bot.logs() if e["level"] in ("warning", "error")]
    [invite] = [entry["invite_url"] for entry in bot.logs() if entry["message"] == "discord invite URL"]
    query = parse_qs(urlsplit(invite).query)
    assert urlsplit(invite).netloc == "discord.com"
    assert query["client_id"] == [str(fake.application_id)]
    assert query["scope"] == ["bot applications.commands"]
    assert query["permissions"] == [str(EXPECTED_PERMISSIONS)]


async def test_python_m_bot_with_a_rejected_token_says_what_to_do(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = discord_env(fake, fake_gemini, tmp_path, token="not-the-token")
    result = await asyncio.to_thread(run_bot, [], tmp_path, env)
    assert result.returncode == 1
    assert "error: Discord rejected DISCORD_TOKEN; copy the bot token again from the Developer Portal.\n" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "not-the-token" not in result.stderr
