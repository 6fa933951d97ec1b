"""`python -m bot` as a deployment runs it (Slack HTTP mode): /metrics and /readyz scraped over HTTP
on PORT, beside /slack/events, after an image, a safety block and a failed download."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from bot.gemini.calls import model_label
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil import image_factory as img
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender
from tests.auxil.process import TEST_MODEL, BotProcess
from tests.bot.observing.test_metrics import samples, value

CHANNEL = "C0GENERAL"


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def _answered(slack: FakeSlack, sender: SlackSender, text: str, **kw: Any) -> None:
    """Mention the bot (both of Slack's copies) and wait until it has answered in the thread."""
    message = slack.user_message(CHANNEL, f"<@{fs.BOT_USER_ID}> {text}", **kw)
    for body in (FakeSlack.event_body(message), FakeSlack.event_body(FakeSlack.app_mention(message))):
        assert (await sender.event(body))[0] == 200
    await slack.wait_for(
        lambda: len(slack.thread(CHANNEL, message["ts"])) >= 1 and not any(slack.reactions.values())
    )


async def _metrics_once(base: str, turns: int, limit_s: float = 15.0) -> str:
    """/metrics once ``turns`` turns have ended (a turn ends just after its reply is posted)."""
    for _ in range(int(limit_s / 0.1)):
        status, text = await _get(base + "/metrics")
        assert status == 200
        ended = sum(v for (name, _), v in samples(text).items() if name == "nanobanana_turns_total")
        if ended >= turns:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {turns} turns ended")


async def test_a_process_serves_its_metrics_and_readiness_over_http(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": fs.SIGNING_SECRET,
    }
    bot = await BotProcess.start(tmp_path, env)
    try:
        port = (await bot.wait_for_log("slack connected"))["port"]
        base = f"http://127.0.0.1:{port}"
        status, body = await _get(base + "/readyz")
        assert status == 200, body
        assert '"model": "up"' in body and '"database": "up"' in body and '"slack": "up"' in body
        fake_gemini.enqueue_for("forbidden", fg.prompt_blocked())
        missing = slack.host_file("photo.png", img.png(), status=404)
        async with SlackSender(base + "/slack/events") as sender:
            await _answered(slack, sender, "a forbidden thing")
            await _answered(slack, sender, "edit my photo", files=[missing])
            await _answered(slack, sender, "a lighthouse at dusk")
        text = await _metrics_once(base, turns=3)
        assert (await _get(base + "/healthz"))[0] == 200
        assert await bot.stop(15) == 0
    finally:
        bot.ensure_dead()
    got = samples(text)
    model = model_label(TEST_MODEL)
    turns = {
        o: value(got, "nanobanana_turns_total", platform="slack", kind="prompt", outcome=o)
        for o in ("image", "blocked_by_safety", "rejected")
    }
    assert turns == {"image": 1, "blocked_by_safety": 1, "rejected": 1}
    assert value(got, "nanobanana_download_failures_total", platform="slack", reason="status") == 1
    assert value(got, "nanobanana_images_total", gen_ai_request_model=model, size="1K") == 1
    assert (
        value(got, "nanobanana_gemini_calls_total", gen_ai_request_model=model, result="prompt_blocked") == 1
    )
    assert value(got, "nanobanana_estimated_cost_usd_total", gen_ai_request_model=model) > 0
    for private in (fs.ALICE, CHANNEL, "forbidden", "lighthouse", "photo.png", fs.TEAM_ID):
        assert private not in text
