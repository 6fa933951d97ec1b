"""The Slack adapter running on a production-wired core against the fake Slack and Gemini, in HTTP
or Socket Mode: start it (``start_bot``), or take the ``bot`` and ``socket_bot`` fixtures (import
them into a test module as ``from tests.auxil.slack_bot import bot as bot``), and talk to it the
way Slack does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.adapter import SlackAdapter
from tests.auxil import fake_slack as fs
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender

CHANNEL = "C0GENERAL"


def slack_env(slack: FakeSlack, *, socket: bool = False) -> dict[str, str]:
    env = {"SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.api_url, "PORT": "0"}
    if socket:
        env["SLACK_APP_TOKEN"] = slack.app_token
    else:
        env["SLACK_SIGNING_SECRET"] = fs.SIGNING_SECRET
    return env


@dataclass
class Bot:
    """The adapter running on a production-wired core, plus ways to talk to it like Slack does."""

    core: Core
    slack: FakeSlack
    socket: bool
    grace_s: float = 3.0
    adapter: SlackAdapter | None = None
    task: asyncio.Task[None] | None = None
    sender: SlackSender | None = None
    statuses: list[int] = field(default_factory=list)

    async def start(self) -> Bot:
        self.adapter = SlackAdapter(
            self.core.config, self.core.service, mention_grace_s=self.grace_s, share_wait_s=5.0
        )
        self.task = asyncio.create_task(self.adapter.run())
        ready = asyncio.create_task(self.adapter.ready.wait())
        await asyncio.wait([self.task, ready], timeout=15, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self.task.done():
            self.task.result()
        assert self.adapter.ready.is_set()
        if not self.socket:
            self.sender = await SlackSender(
                f"http://127.0.0.1:{self.adapter.http_port}/slack/events"
            ).__aenter__()
        return self

    async def stop(self) -> None:
        if self.sender is not None:
            await self.sender.__aexit__()
            self.sender = None
        if self.adapter is not None and self.task is not None:
            await self.adapter.close()
            async with asyncio.timeout(15):
                await self.task

    async def restart(self) -> None:
        """Like a redeploy: the adapter and the core stop, and start again on the same database."""
        await self.stop()
        await self.core.restart()
        await self.start()

    # -- what Slack delivers -------------------------------------------------------------------
    async def deliver(self, event: dict[str, Any], *, retry_num: int | None = None) -> None:
        body = FakeSlack.event_body(event)
        if self.socket:
            ack = await self.slack.send_envelope("events_api", body, retry_attempt=retry_num or 0)
            assert "envelope_id" in ack
        else:
            assert self.sender is not None
            status, _ = await self.sender.event(body, retry_num=retry_num)
            self.statuses.append(status)
            assert status == 200

    async def mention(
        self,
        text: str,
        *,
        channel: str = CHANNEL,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        order: str = "message_first",
    ) -> dict[str, Any]:
        """A person posts ``<@bot> text``; Slack delivers it as ``message`` and ``app_mention``."""
        message = self.slack.user_message(
            channel, f"<@{fs.BOT_USER_ID}> {text}", thread_ts=thread_ts, files=files
        )
        mention = FakeSlack.app_mention(message)
        if order == "message_first":
            await self.deliver(message)
            await self.deliver(mention)
        elif order == "mention_first":
            await self.deliver(mention)
            await self.deliver(message)
        elif order == "mention_only":
            await self.deliver(mention)
        else:
            await self.deliver(message)
        return message

    async def say(
        self,
        text: str,
        *,
        thread_ts: str | None,
        channel: str = CHANNEL,
        files: list[dict[str, Any]] | None = None,
        channel_type: str = "channel",
    ) -> dict[str, Any]:
        """A person posts without mentioning the bot (only the ``message`` event comes)."""
        message = self.slack.user_message(
            channel, text, thread_ts=thread_ts, files=files, channel_type=channel_type
        )
        await self.deliver(message)
        return message

    async def command(self, command: str, text: str, channel: str = CHANNEL) -> tuple[int, str]:
        """A person runs a slash command: the HTTP status, and what they are shown, said in the
        ack or posted to the command's response URL after it."""
        assert self.sender is not None
        fields = self.slack.slash_command(command, text, channel)
        status, body = await self.sender.command(fields)
        if body:
            return status, json.loads(body).get("text") if body.startswith("{") else body
        return status, str((await self.slack.answer_to(fields))["text"])

    async def replies(self, thread_ts: str, count: int, *, channel: str = CHANNEL) -> list[dict[str, Any]]:
        """Wait for the bot's ``count``-th message in a thread and for its working reaction to go."""

        def done() -> list[dict[str, Any]] | None:
            posted = self.slack.thread(channel, thread_ts)
            busy = any(self.slack.reactions.values())
            return posted if len(posted) >= count and not busy else None

        return await self.slack.wait_for(done)


async def start_bot(fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path, socket: bool) -> Bot:
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=slack_env(slack, socket=socket)).start()
    return await Bot(core, slack, socket).start()


@asynccontextmanager
async def running_bot(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path, socket: bool
) -> AsyncIterator[Bot]:
    """A started bot, stopped afterwards with its core."""
    running = await start_bot(fake_gemini, slack, tmp_path, socket)
    yield running
    await running.stop()
    await running.core.stop()


@pytest.fixture
async def bot(fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(fake_gemini, slack, tmp_path, socket=False) as running:
        yield running


@pytest.fixture
async def socket_bot(fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Bot]:
    async with running_bot(fake_gemini, slack, tmp_path, socket=True) as running:
        yield running
