"""Slack and Discord rate-limiting the bot (HTTP 429): `python -m bot` waits as long as the platform
asks, retries, and posts everything exactly once."""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.slack.text import escape
from adapters.slack.words import CONTROLS_FALLBACK
from adapters.slack.words import UPLOAD_RATE_LIMITED as UPLOAD_RATE_LIMITED_MESSAGE
from bot import gemini as g
from tests.auxil import fake_gemini as fg
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.ledger import LEDGER
from tests.faults.harness import (
    GEMINI_KEY,
    SLACK_SECRETS,
    SlackWorld,
    discord_env,
    generated_images,
    images_in,
    slack_env,
    start_discord_bot,
    start_slack_bot,
    successful_generations,
    warnings_in,
)


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(image_side=128) as fake:
        yield fake


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


# ---------------------------------------------------------------------------------------------
# Slack: slack_sdk's RateLimitErrorRetryHandler, which the adapter installs, sleeps Retry-After.

# Retries the adapter's handler makes after a 429 (max_retry_count).
SLACK_RETRIES = 2


@dataclass(frozen=True)
class SlackCase:
    """A Web API method Slack rate-limits while the bot answers one mention."""

    name: str
    method: str
    retry_after: int
    times: int
    # Gemini withholds the image, so the reply is one error sentence (chat.postMessage).
    blocked: bool = False
    # More 429s than the adapter retries: the user is told this sentence instead.
    warning: str | None = None


SLACK_CASES = (
    SlackCase("controls post rate-limited twice", "chat.postMessage", retry_after=1, times=2),
    SlackCase("upload completion rate-limited", "files.completeUploadExternal", retry_after=2, times=1),
    SlackCase("upload URL rate-limited", "files.getUploadURLExternal", retry_after=1, times=1),
    SlackCase("error reply rate-limited", "chat.postMessage", retry_after=1, times=1, blocked=True),
    SlackCase(
        "upload rate-limited past the retries",
        "files.completeUploadExternal",
        retry_after=1,
        times=SLACK_RETRIES + 1,
        warning=UPLOAD_RATE_LIMITED_MESSAGE,
    ),
)


async def test_slack_429s_are_retried_after_retry_after_and_nothing_is_posted_twice(
    gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    bot = await start_slack_bot(tmp_path, slack_env(gemini, slack, tmp_path / "bot.sqlite3"), slack)
    world = SlackWorld(slack)
    results: list[tuple[SlackCase, list[str]]] = []
    try:
        # One case at a time: a rate limit is scripted per method, for whichever call comes next.
        for case in SLACK_CASES:
            prompt = f"slack 429: {case.name}"
            if case.blocked:
                gemini.enqueue_for(prompt, fg.finish("IMAGE_SAFETY"))
            calls_before = len(slack.calls_to(case.method))
            slack.rate_limit(case.method, retry_after=case.retry_after, times=case.times)
            message = await world.say(prompt)
            await world.wait_finished(message, 30)
            problems: list[str] = []
            calls = slack.calls_to(case.method)[calls_before:]
            limited = [c for c in calls if c.rate_limited]
            expected_calls = min(case.times, SLACK_RETRIES) + 1
            if len(limited) != case.times or len(calls) != expected_calls:
                problems.append(f"{len(calls)} calls to {case.method}, {len(limited)} rate-limited")
            for waited in _gaps([c.at for c in calls]):
                if waited < case.retry_after:
                    problems.append(f"retried after {waited:.2f} s despite Retry-After: {case.retry_after}")
            posts = world.bot_posts(message["ts"])
            if case.blocked:
                if warnings_in(posts) != [g.MSG_IMAGE_SAFETY] or len(posts) != 1:
                    problems.append(f"posted {[p.get('text') for p in posts]}")
            elif case.warning:
                # No image, one sentence saying why, and the controls to make it again.
                texts = [p.get("text") for p in posts]
                if texts != [escape(case.warning), CONTROLS_FALLBACK] or images_in(posts):
                    problems.append(f"posted {texts}, {images_in(posts)} images")
            else:
                controls = [p for p in posts if p.get("text") == CONTROLS_FALLBACK]
                if images_in(posts) != 1 or len(controls) != 1 or len(posts) != 2:
                    problems.append(f"posted {len(posts)} messages, {images_in(posts)} images")
            results.append((case, problems))
        up_after = bot.running
        exit_code = await bot.stop()
    finally:
        bot.ensure_dead()

    generations = successful_generations(gemini)
    uploaded = [hashlib.sha256(u.data).hexdigest() for u in world.posted_uploads()]
    made = generated_images(gemini)
    failures: dict[str, tuple[list[str], int, int]] = {}
    for case, problems in results:
        prompt = f"slack 429: {case.name}"
        shown = sum(1 for digest in uploaded if made.get(digest) == prompt)
        duplicates = max(0, shown - 1) + max(0, generations[prompt] - 1)
        lost = int(not case.blocked and not case.warning and shown == 0)
        LEDGER.record(
            f"slack {case.name}",
            survived=up_after and not problems,
            lost_turns=lost,
            duplicate_generations=duplicates,
        )
        if problems or lost or duplicates:
            failures[case.name] = (problems, lost, duplicates)
    assert failures == {}
    assert up_after and exit_code == 0, "\n".join(bot.lines[-20:])
    assert bot.problems(SLACK_SECRETS) == []
    # Only the upload that ran out of retries was given up on.
    given_up = ("posting a reply failed", "image upload failed")
    assert [e.get("slack_error") for e in bot.logs() if e.get("message") in given_up] == ["ratelimited"]


# ---------------------------------------------------------------------------------------------
# Discord: discord.py's HTTPClient sleeps the 429's retry_after (per route, or for every route
# when global) and sends the request again, files included.


async def test_discord_429s_are_retried_after_retry_after_and_nothing_is_posted_twice(
    gemini: FakeGemini, discord: FakeDiscord, tmp_path: Path
) -> None:
    bot = await start_discord_bot(tmp_path, discord_env(gemini, discord, tmp_path / "bot.sqlite3"), discord)
    # (case, prompt, its scripted 429, how long it asked to wait, images the user must see)
    cases: list[tuple[str, str, int, float, int]] = []
    try:
        # 1. The reply carrying the image is rate-limited on its route.
        discord.rate_limit("POST", r"/channels/\d+/messages", retry_after=0.8)
        first = await discord.post(discord.general_id, f"{discord.mention()} discord 429: image reply")
        [reply] = await discord.wait_until(lambda: discord.bot_messages(first.id))
        cases.append(("image reply rate-limited", "discord 429: image reply", 0, 0.8, 1))
        case_ends = [time.monotonic()]

        # 2. Opening the thread hits a global rate limit: every route waits, then it goes on.
        discord.rate_limit("POST", r"/channels/\d+/messages/\d+/threads", retry_after=0.6, is_global=True)
        second = await discord.post(discord.general_id, f"{discord.mention()} discord 429: global")
        await discord.wait_until(lambda: discord.bot_messages(second.id))
        cases.append(("thread creation globally rate-limited", "discord 429: global", 1, 0.6, 1))
        case_ends.append(time.monotonic())

        # 3. An error sentence is rate-limited too, in the existing thread.
        gemini.enqueue_for("discord 429: blocked", fg.finish("IMAGE_SAFETY"))
        discord.rate_limit("POST", rf"/channels/{first.id}/messages", retry_after=0.5)
        await discord.post(first.id, f"{discord.mention()} discord 429: blocked")
        await discord.wait_until(lambda: len(discord.bot_messages(first.id)) >= 2)
        cases.append(("error reply rate-limited", "discord 429: blocked", 2, 0.5, 0))

        up_after = bot.running
        exit_code = await bot.stop()
        case_ends.append(time.monotonic())
    finally:
        bot.ensure_dead()

    made = generated_images(gemini)
    generations = successful_generations(gemini)
    posted_images = [
        made.get(hashlib.sha256(f.data).hexdigest(), "?")
        for m in discord.messages.values()
        if m.author_id == int(discord.bot["id"])
        for f in m.files
    ]
    first_thread = discord.bot_messages(first.id)
    failures: dict[str, list[str]] = {}
    for (name, prompt, limited, retry_after, images), ended in zip(cases, case_ends, strict=True):
        problems = _retried_once_after(discord, limited, retry_after, ended)
        shown = posted_images.count(prompt)
        if shown != images:
            problems.append(f"{shown} images shown for {prompt!r}, expected {images}")
        if duplicates := max(0, shown - 1) + max(0, generations[prompt] - 1):
            problems.append(f"{duplicates} duplicate generations")
        LEDGER.record(
            f"discord {name}",
            survived=up_after and not problems,
            lost_turns=int(shown < images),
            duplicate_generations=duplicates,
        )
        if problems:
            failures[name] = problems
    assert failures == {}
    # What people see: one image reply with its controls, then the error sentence, in thread 1;
    # one image reply in thread 2; nothing twice.
    assert [m.content for m in first_thread] == ["Here is your image.", g.MSG_IMAGE_SAFETY]
    assert reply.custom_ids() == first_thread[0].custom_ids() and reply.custom_ids()
    assert len(discord.bot_messages(second.id)) == 1
    assert len(discord.threads()) == 2
    assert up_after and exit_code == 0
    stderr = "\n".join(bot.lines)
    assert "Traceback" not in stderr and discord.token not in stderr and GEMINI_KEY not in stderr


def _retried_once_after(discord: FakeDiscord, limited: int, retry_after: float, ended: float) -> list[str]:
    """Problems with a scripted 429 (index into ``discord.rate_limited``): before its case ended,
    the same request must follow exactly once, no sooner than ``retry_after`` seconds later."""
    method, path, limited_at = discord.rate_limited[limited]
    again = [
        at for m, p, at in discord.timed_requests if (m, p) == (method, path) and limited_at < at <= ended
    ]
    problems = []
    if len(again) != 1:
        problems.append(f"{method} {path} was sent {len(again)} times after its 429")
    elif again[0] - limited_at < retry_after:
        problems.append(f"retried after {again[0] - limited_at:.2f} s despite retry_after {retry_after}")
    return problems
