"""Discord under hostile or broken input: one bounded answer per message or interaction."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.service import UNKNOWN_TURN_MESSAGE
from tests.auxil.fake_discord import FakeDiscord, FakeMessage
from tests.auxil.fake_gemini import FakeGemini
from tests.test_discord import Bot, assert_never_pinged, ephemeral_answer, start_bot

FLASH_RATIOS = "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    running = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3")
    yield running
    await running.stop()
    assert_never_pinged(fake)
    assert not fake.unhandled
    assert all(r.callbacks and not r.late_callbacks for r in fake.interactions.values())


# -- 3. a message full of bad flags gets one answer ----------------------------------------------


async def test_a_message_of_bad_flags_gets_one_answer(bot: Bot) -> None:
    flood = " ".join(["--ar x"] * 281)  # 1,966 characters
    _, thread_id = await bot.mention(flood)
    [answer] = await bot.replies(thread_id)
    assert answer.content == (
        f"x is not an aspect ratio gemini-2.5-flash-image supports; use one of {FLASH_RATIOS}. "
        "280 more flags in this message can't be used either."
    )
    assert len(bot.fake.bot_messages(thread_id)) == 1
    assert bot.gemini.requests == []


def forged(message: FakeMessage, real: str, fake_id: str) -> FakeMessage:
    """``message`` as a modified client could present it: a control's custom id swapped."""
    payload = json.loads(json.dumps(message.payload).replace(f'"{real}"', f'"{fake_id}"'))
    return FakeMessage(payload)


# -- 6. a refused control changes nothing --------------------------------------------------------


async def test_a_ratio_pick_carrying_another_threads_turn_is_refused_and_changes_nothing(bot: Bot) -> None:
    _, castle = await bot.mention("a castle")
    await bot.replies(castle)
    _, harbour = await bot.mention("a harbour")
    [reply] = await bot.replies(harbour)
    click = await bot.fake.click(forged(reply, "nb:ar:2", "nb:ar:1"), "nb:ar:1", values=["9:16"])
    answer = await ephemeral_answer(bot.fake, click.token)
    assert answer.content == UNKNOWN_TURN_MESSAGE
    assert await bot.core.store.settings(bot.key(harbour)) == {}
    assert await bot.core.store.settings(bot.key(castle)) == {}
    assert len(bot.gemini.requests) == 2


# -- 7. impossible ids in signed interactions ----------------------------------------------------

IMPOSSIBLE_IDS = ["1" + "0" * 23, str(2**63), "²", "-1", "", "1 "]


@pytest.mark.parametrize("turn_id", IMPOSSIBLE_IDS)
@pytest.mark.parametrize("control", ["nb:regen", "nb:ar"])
async def test_a_control_with_an_impossible_turn_id_gets_a_plain_private_answer(
    bot: Bot, caplog: pytest.LogCaptureFixture, control: str, turn_id: str
) -> None:
    _, thread_id = await bot.mention("a castle")
    [reply] = await bot.replies(thread_id)
    custom_id = f"{control}:{turn_id}"
    values = ["9:16"] if control == "nb:ar" else []
    click = await bot.fake.click(forged(reply, f"{control}:1", custom_id), custom_id, values=values)
    answer = await ephemeral_answer(bot.fake, click.token)
    assert answer.content == UNKNOWN_TURN_MESSAGE
    assert len(bot.gemini.requests) == 1
    assert await bot.core.store.settings(bot.key(thread_id)) == {}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# -- 4. whatever body a failing Discord call answers with, the turn goes on -----------------------


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [(503, "text/plain", b"upstream connect error"), (502, "text/html", b"<h1>502 Bad Gateway</h1>")],
    ids=["plain-503", "html-502"],
)
async def test_a_failing_typing_indicator_never_drops_the_turn(
    bot: Bot, caplog: pytest.LogCaptureFixture, status: int, content_type: str, body: bytes
) -> None:
    bot.fake.answer_raw("POST", r"/channels/\d+/typing", status, body, content_type, times=10)
    _, thread_id = await bot.mention("a castle")
    [reply] = await bot.replies(thread_id)
    assert reply.files and reply.custom_ids() == ["nb:regen:1", "nb:ar:1"]
    assert [r.prompt for r in bot.gemini.requests] == ["a castle"]
    assert ("POST", f"/channels/{thread_id}/typing") in bot.fake.raw_answered
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert await bot.core.store.unfinished_messages("discord", 0) == []
