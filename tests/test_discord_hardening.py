"""Discord under hostile or broken input: one bounded answer per message or interaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.test_discord import Bot, assert_never_pinged, start_bot

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
