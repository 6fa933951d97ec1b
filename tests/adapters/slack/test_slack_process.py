"""`python -m bot` as a deployment runs it, on Slack: Socket Mode and HTTP mode against the fakes."""

from __future__ import annotations

import io
import re
import socket
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from adapters.slack.words import CONTROLS_FALLBACK
from tests.auxil import fake_slack as fs
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender
from tests.auxil.process import BotProcess

CHANNEL = "C0GENERAL"
SECRETS = (fs.BOT_TOKEN, fs.APP_TOKEN, fs.SIGNING_SECRET, "process-key")


def _env(fake_gemini: FakeGemini, slack: FakeSlack, **extra: str) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        **extra,
    }


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
        assert await bot.stop(15) == 0
    finally:
        bot.ensure_dead()
    upload, buttons = slack.thread(CHANNEL, message["ts"])
    assert upload["text"] == "Here is your image."
    assert buttons["text"] == CONTROLS_FALLBACK
    assert [r.prompt for r in fake_gemini.requests] == ["a red bicycle at dawn"]
    assert (tmp_path / "data" / "bot.sqlite3").is_file()
    connected = next(e for e in bot.logs() if e.get("message") == "slack connected")
    assert connected["mode"] == "socket" and connected["team"] == fs.TEAM_ID
    assert bot.problems(SECRETS) == []


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
        assert await bot.stop(15) == 0
    finally:
        bot.ensure_dead()
    assert [r.prompt for r in fake_gemini.requests] == ["a lighthouse"]
    assert bot.problems(SECRETS) == []


async def test_a_rejected_token_exits_with_one_line_and_no_traceback(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = _env(fake_gemini, slack, SLACK_APP_TOKEN=slack.app_token)
    env["SLACK_BOT_TOKEN"] = "xoxb-revoked-token"
    bot = await BotProcess.start(tmp_path, env)
    try:
        code = await bot.wait(30)
    finally:
        bot.ensure_dead()
    assert code == 1
    assert (
        "error: Slack rejected SLACK_BOT_TOKEN; reinstall the app and copy the Bot User OAuth Token again."
        in bot.lines
    )
    assert bot.problems(["xoxb-revoked-token"]) == []


async def test_http_mode_process_serves_the_region_editor_and_zoom_with_public_url(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    env = _env(fake_gemini, slack, SLACK_SIGNING_SECRET=fs.SIGNING_SECRET, PORT=str(port), PUBLIC_URL=base)
    bot = await BotProcess.start(tmp_path, env)
    try:
        await bot.wait_for_log("slack connected")
        async with SlackSender(base + "/slack/events") as sender:

            async def deliver(body: dict[str, Any]) -> None:
                status, _ = await sender.event(body)
                assert status == 200

            message = await _mention_and_wait(slack, deliver, "a lighthouse")
            buttons = slack.thread(CHANNEL, message["ts"])[1]
            await sender.action(slack.block_actions(buttons, "nb_frame_edit_"))
            private = await slack.wait_for(lambda: slack.ephemerals_in(CHANNEL, message["ts"]))
            found = re.search(r"(http://\S+/edit/[A-Za-z0-9_.-]+)", str(private[0]["text"]))
            assert found is not None
            async with aiohttp.ClientSession() as session:
                async with session.get(found.group(1)) as page:
                    assert page.status == 200
                async with session.get(found.group(1)[:-2] + "xx") as refused:
                    assert refused.status == 403
            await sender.action(slack.block_actions(buttons, "nb_frame_zoom_2"))
            await slack.wait_for(
                lambda: len(slack.thread(CHANNEL, message["ts"])) >= 4 and not any(slack.reactions.values())
            )
        assert await bot.stop(15) == 0
    finally:
        bot.ensure_dead()
    first, zoom = fake_gemini.requests
    with (
        Image.open(io.BytesIO(first.response_images[0].data)) as a,
        Image.open(io.BytesIO(zoom.images[-1][0].data)) as b,
    ):
        assert b.size == (a.width * 2, a.height * 2)
    assert bot.problems(SECRETS) == []
