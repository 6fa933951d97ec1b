"""`python -m bot` as a deployment runs it, on Slack: Socket Mode and HTTP mode against the fakes."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack_blocks import CONTROLS_FALLBACK
from tests.auxil import fake_slack as fs
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender
from tests.auxil.process import bot_env

CHANNEL = "C0GENERAL"


class BotProcess:
    """`python -m bot` with piped output; stderr (JSON log lines) is collected as it arrives."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._arrived = asyncio.Condition()
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
        async for raw in self.proc.stderr:
            async with self._arrived:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._arrived.notify_all()
        async with self._arrived:
            self._arrived.notify_all()

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    async def wait_for_log(self, message: str, limit_s: float = 30.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((entry for entry in self.logs() if entry.get("message") == message), None)

        async with asyncio.timeout(limit_s), self._arrived:
            await self._arrived.wait_for(lambda: found() is not None or self._reader.done())
        entry = found()
        assert entry is not None, "\n".join(self.lines)
        return entry

    async def stop(self, limit_s: float = 15.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(limit_s):
            code = await self.proc.wait()
            await self._reader
        return code

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


def _env(fake_gemini: FakeGemini, slack: FakeSlack, **extra: str) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        **extra,
    }


def _assert_clean(bot: BotProcess) -> None:
    text = "\n".join(bot.lines)
    assert "Traceback" not in text
    for secret in (fs.BOT_TOKEN, fs.APP_TOKEN, fs.SIGNING_SECRET, "process-key"):
        assert secret not in text


async def _mention_and_wait(slack: FakeSlack, deliver: Any, text: str) -> dict[str, Any]:
    message = slack.user_message(CHANNEL, f"<@{fs.BOT_USER_ID}> {text}")
    await deliver(FakeSlack.event_body(message))
    await deliver(FakeSlack.event_body(FakeSlack.app_mention(message)))
    await slack.wait_for(
        lambda: len(slack.thread(CHANNEL, message["ts"])) >= 2 and not any(slack.reactions.values())
    )
    return message


async def test_socket_mode_process_answers_a_mention_and_stops_on_sigterm(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    bot = await BotProcess.start(tmp_path, _env(fake_gemini, slack, SLACK_APP_TOKEN=slack.app_token))
    try:
        await slack.wait_for_socket(limit_s=30)

        async def deliver(body: dict[str, Any]) -> None:
            await slack.send_envelope("events_api", body)

        message = await _mention_and_wait(slack, deliver, "a red bicycle at dawn")
        assert await bot.stop() == 0
    finally:
        bot.kill()
    upload, buttons = slack.thread(CHANNEL, message["ts"])
    assert upload["text"] == "Here is your image."
    assert buttons["text"] == CONTROLS_FALLBACK
    assert [r.prompt for r in fake_gemini.requests] == ["a red bicycle at dawn"]
    assert (tmp_path / "data" / "bot.sqlite3").is_file()
    connected = next(e for e in bot.logs() if e.get("message") == "slack connected")
    assert connected["mode"] == "socket" and connected["team"] == fs.TEAM_ID
    _assert_clean(bot)


async def test_http_mode_process_serves_signed_events_and_health(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = _env(fake_gemini, slack, SLACK_SIGNING_SECRET=fs.SIGNING_SECRET, PORT="0")
    env["SLACK_API_URL"] = slack.api_url.rstrip("/")  # without the trailing slash works too
    bot = await BotProcess.start(tmp_path, env)
    try:
        port = (await bot.wait_for_log("slack connected"))["port"]
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session, session.get(base + "/healthz") as resp:
            assert resp.status == 200
        async with SlackSender(base + "/slack/events") as sender:

            async def deliver(body: dict[str, Any]) -> None:
                status, _ = await sender.event(body)
                assert status == 200

            await _mention_and_wait(slack, deliver, "a lighthouse")
            status, _ = await sender.event(FakeSlack.event_body({}), signature="v0=bad")
            assert status == 401
        assert await bot.stop() == 0
    finally:
        bot.kill()
    assert [r.prompt for r in fake_gemini.requests] == ["a lighthouse"]
    _assert_clean(bot)


async def test_a_rejected_token_exits_with_one_line_and_no_traceback(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = _env(fake_gemini, slack, SLACK_APP_TOKEN=slack.app_token)
    env["SLACK_BOT_TOKEN"] = "xoxb-revoked-token"
    bot = await BotProcess.start(tmp_path, env)
    try:
        async with asyncio.timeout(30):
            code = await bot.proc.wait()
            await bot._reader
    finally:
        bot.kill()
    assert code == 1
    assert (
        "error: Slack rejected SLACK_BOT_TOKEN; reinstall the app and copy the Bot User OAuth Token again."
        in bot.lines
    )
    assert "Traceback" not in "\n".join(bot.lines)
    assert "xoxb-revoked-token" not in "\n".join(bot.lines)
