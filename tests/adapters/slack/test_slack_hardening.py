"""Slack under hostile or broken input: one bounded answer per message, and turns never lost."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from pathlib import Path

import aiohttp
import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.slack.text import escape
from adapters.slack.words import POST_FAILED as POST_FAILED_MESSAGE
from bot.entry.service import UNKNOWN_TURN_MESSAGE
from bot.turns.forgetting import FORGET_REFUSED
from tests.adapters.slack.test_slack import controls, thread_key
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil.core import Core, refusal
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.slack_bot import CHANNEL, Bot, slack_env
from tests.auxil.slack_bot import bot as bot

FLASH_RATIOS = "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9"


def bot_posts(bot: Bot, thread_ts: str) -> list[str]:
    return [
        c.params.get("text", "")
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == thread_ts
    ]


# -- 3. a message full of bad flags gets one answer ----------------------------------------------


async def test_a_message_of_thousands_of_bad_flags_gets_one_short_answer(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    flood = " ".join(["--ar x"] * 4286)  # 30,001 characters
    message = await bot.mention(flood)
    (answer,) = await bot.replies(message["ts"], 1)
    assert answer["text"] == (
        f":warning: x is not an aspect ratio gemini-2.5-flash-image supports; use one of {FLASH_RATIOS}. "
        "4,285 more flags in this message can't be used either."
    )
    assert len(bot_posts(bot, message["ts"])) == 1
    assert fake_gemini.requests == []


async def test_a_huge_bad_flag_value_is_echoed_as_a_short_excerpt(bot: Bot) -> None:
    message = await bot.mention("a cat --ar " + "9" * 20_000)
    (answer,) = await bot.replies(message["ts"], 1)
    assert answer["text"] == (
        f":warning: {'9' * 30}… is not an aspect ratio gemini-2.5-flash-image supports; "
        f"use one of {FLASH_RATIOS}."
    )


# -- 6. a refused control changes nothing --------------------------------------------------------


async def test_a_ratio_pick_carrying_another_threads_turn_is_refused_and_changes_nothing(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    first = await bot.mention("a castle")
    await bot.replies(first["ts"], 2)
    second = await bot.mention("a harbour")
    _, buttons = await bot.replies(second["ts"], 2)
    click = bot.slack.block_actions(buttons, "nb_aspect", option="9:16")
    click["actions"][0]["selected_option"]["value"] = "1|9:16"  # turn 1 is the castle thread's
    assert bot.sender is not None
    await bot.sender.action(click)
    posted = await bot.replies(second["ts"], 3)
    assert posted[-1]["text"] == f":warning: {UNKNOWN_TURN_MESSAGE}"
    assert (await bot.core.service.effective_settings(thread_key(second["ts"]))).aspect_ratio is None
    assert "aspect_ratio" not in await bot.core.store.settings(thread_key(second["ts"]))
    assert len(fake_gemini.requests) == 2


# -- 7. impossible ids in signed actions ---------------------------------------------------------

IMPOSSIBLE_IDS = ["1" + "0" * 23, str(2**63), "²", "-1", "1e3", " 1"]


@pytest.mark.parametrize("turn_id", IMPOSSIBLE_IDS)
@pytest.mark.parametrize("action_id", ["nb_regenerate", "nb_aspect"])
async def test_a_control_with_an_impossible_turn_id_gets_a_plain_private_answer(
    bot: Bot, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture, action_id: str, turn_id: str
) -> None:
    message = await bot.mention("a castle")
    _, buttons = await bot.replies(message["ts"], 2)
    if action_id == "nb_aspect":
        click = bot.slack.block_actions(buttons, action_id, option="9:16")
        click["actions"][0]["selected_option"]["value"] = f"{turn_id}|9:16"
    else:
        click = bot.slack.block_actions(buttons, action_id)
        click["actions"][0]["value"] = turn_id
    assert bot.sender is not None
    status, _ = await bot.sender.action(click)
    assert status == 200
    notes = await bot.slack.wait_for(lambda: bot.slack.ephemerals_in(CHANNEL, message["ts"]))
    assert [(n["user"], n["text"]) for n in notes] == [(fs.ALICE, escape(UNKNOWN_TURN_MESSAGE))]
    assert len(fake_gemini.requests) == 1
    assert "aspect_ratio" not in await bot.core.store.settings(thread_key(message["ts"]))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# -- 5. malformed requests get 400/401 and one log line ------------------------------------------


def problems_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(
    ("stamp", "body", "signed", "status"),
    [
        ("²", b'{"type": "event_callback"}', True, 401),
        ("١٧٠٠", b'{"type": "event_callback"}', True, 401),
        ("now", b'{"type": "event_callback"}', False, 401),
        ("NOW", b"\xff\xfe{not utf-8", False, 401),
        ("NOW", b"payload=%FF%FE", True, 400),
        ("NOW", b'{"type": "event_callback", "x": "\xc3\x28"}', False, 401),
    ],
    ids=["superscript-stamp", "arabic-digit-stamp", "word-stamp", "binary", "form-not-utf8", "json-not-utf8"],
)
async def test_malformed_requests_are_refused_with_one_log_line(
    bot: Bot, caplog: pytest.LogCaptureFixture, stamp: str, body: bytes, signed: bool, status: int
) -> None:
    stamp = str(int(time.time())) if stamp == "NOW" else stamp
    signature = "v0=" + "0" * 64
    if signed:
        mac = hmac.new(fs.SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        signature = "v0=" + mac.hexdigest()
    content_type = (
        "application/json" if body.startswith((b"{", b"\xff")) else "application/x-www-form-urlencoded"
    )
    assert bot.sender is not None and bot.adapter is not None
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(bot.sender.url, data=body, headers=headers)
        assert response.status == status
    refused = [r for r in caplog.records if r.getMessage() == "refused an unreadable Slack request"]
    assert len(refused) == 1
    assert problems_in(caplog) == []
    assert bot.slack.calls_to("chat.postMessage") == []


# -- 4. whatever body a failing Slack API call answers with, the turn goes on --------------------

PROXY_ANSWERS = [
    (503, "text/plain", b"upstream connect error or disconnect/reset before headers"),
    (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    (500, "application/json", b"{not json"),
    (500, "application/json", b""),
    (429, "text/plain", b"slow down"),
    (200, "text/plain", b"OK"),
]
PROXY_IDS = ["plain-503", "html-502", "broken-json-500", "empty-500", "plain-429", "plain-200"]


@pytest.mark.parametrize(("status", "content_type", "body"), PROXY_ANSWERS, ids=PROXY_IDS)
async def test_a_failing_reaction_never_drops_the_turn(
    bot: Bot,
    fake_gemini: FakeGemini,
    caplog: pytest.LogCaptureFixture,
    status: int,
    content_type: str,
    body: bytes,
) -> None:
    bot.slack.answer_raw("reactions.add", status, body, content_type, times=5)
    message = await bot.mention("a castle")
    image, buttons = await bot.replies(message["ts"], 2)
    assert image["files"] and controls(buttons)
    assert [r.prompt for r in fake_gemini.requests] == ["a castle"]
    assert problems_in(caplog) == []
    assert await bot.core.service.drain(5)
    assert await bot.core.store.unfinished_messages("slack", 0) == []


async def test_a_post_failing_once_is_retried_and_posted_once(bot: Bot, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(fg.text_only("A castle is a fortified building."))
    bot.slack.answer_raw("chat.postMessage", 503, b"Service Unavailable")
    message = await bot.mention("what is a castle")
    (answer,) = await bot.replies(message["ts"], 1)
    assert answer["text"] == "A castle is a fortified building."
    calls = bot.slack.calls_to("chat.postMessage")
    assert [c.raw_answered for c in calls] == [True, False]


async def test_a_post_that_keeps_failing_is_told_privately_and_the_turn_finishes(
    bot: Bot, fake_gemini: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    fake_gemini.enqueue(fg.text_only("A castle is a fortified building."))
    bot.slack.answer_raw("chat.postMessage", 503, b"Service Unavailable", times=2)
    message = await bot.mention("what is a castle")
    # The thread has no reply, so Slack would show the note there to no one: it goes to the channel.
    notes = await bot.slack.wait_for(lambda: bot.slack.ephemerals_in(CHANNEL))
    assert [(n["user"], n["text"], n["thread_ts"]) for n in notes] == [
        (fs.ALICE, escape(POST_FAILED_MESSAGE), None)
    ]
    assert bot.slack.dropped_ephemerals == []
    assert bot.slack.thread(CHANNEL, message["ts"]) == []
    assert len(fake_gemini.requests) == 1
    assert problems_in(caplog) == []
    assert await bot.core.service.drain(5)
    assert await bot.core.store.unfinished_messages("slack", 0) == []


async def test_a_proxy_page_at_start_up_stops_with_one_line(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    slack.answer_raw("auth.test", 503, b"Service Unavailable", times=5)
    line = await refusal(SlackAdapter, fake_gemini, tmp_path / "db.sqlite3", slack_env(slack))
    assert line == "Slack refused auth.test (http_503); check SLACK_BOT_TOKEN and the app."


# -- 10. forget is for whoever started the conversation and admins --------------------------------


async def test_someone_else_cannot_forget_a_thread_they_did_not_start(bot: Bot) -> None:
    message = await bot.mention("a castle")
    _, buttons = await bot.replies(message["ts"], 2)
    assert bot.sender is not None
    # Bob regenerating the first image gives the history a root of his; it still is not his.
    await bot.sender.action(bot.slack.block_actions(buttons, "nb_regenerate", user=fs.BOB))
    posted = await bot.replies(message["ts"], 4)
    await bot.sender.action(bot.slack.block_actions(posted[-1], "nb_forget", user=fs.BOB))
    notes = await bot.slack.wait_for(lambda: bot.slack.ephemerals_in(CHANNEL, message["ts"]))
    assert [(n["user"], n["text"]) for n in notes] == [(fs.BOB, escape(FORGET_REFUSED))]
    assert await bot.core.store.conversation(thread_key(message["ts"])) is not None
    assert len(bot.slack.thread(CHANNEL, message["ts"])) == 4
    assert bot.slack.calls_to("chat.update") == []

    await bot.sender.action(bot.slack.block_actions(posted[-1], "nb_forget", user=fs.ALICE))
    forgot = await bot.slack.wait_for(
        lambda: [m for m in bot.slack.thread(CHANNEL, message["ts"]) if m["text"].startswith("Forgot")]
    )
    assert forgot[0]["text"].startswith("Forgot this conversation: 2 turns")


async def test_an_admin_can_forget_any_thread(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {**slack_env(slack), "ADMIN_USERS": f"slack:{fs.BOB}"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    bot = await Bot(core, slack, socket=False).start()
    try:
        message = await bot.mention("a castle")
        _, buttons = await bot.replies(message["ts"], 2)
        assert bot.sender is not None
        await bot.sender.action(bot.slack.block_actions(buttons, "nb_forget", user=fs.BOB))
        forgot = await bot.slack.wait_for(
            lambda: [m for m in bot.slack.thread(CHANNEL, message["ts"]) if m["text"].startswith("Forgot")]
        )
        assert forgot[0]["text"].startswith("Forgot this conversation: 1 turn")
    finally:
        await bot.stop()
        await core.stop()
