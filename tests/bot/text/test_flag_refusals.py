"""However many flags in a message are wrong, the person gets one short answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.entry.service import TurnStatus, prompt_too_long_message
from bot.gemini.registry import shipped
from bot.text.flags import parse_flags
from bot.text.settings import SettingError, excerpt, validate_image_size
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini

# What each model accepts and costs: the file shipped with the bot.
capabilities_for = shipped().capabilities_for

FLASH = capabilities_for("gemini-2.5-flash-image")
PRO = capabilities_for("gemini-3-pro-image-preview")
RATIOS = "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9"
NOT_A_RATIO = f"is not an aspect ratio gemini-2.5-flash-image supports; use one of {RATIOS}."


def test_no_bad_flag_no_refusal() -> None:
    assert parse_flags("a cat --ar 16:9", FLASH).refusal is None


def test_one_bad_flag_is_its_own_sentence() -> None:
    assert parse_flags("a cat --ar 7:3", FLASH).refusal == f"7:3 {NOT_A_RATIO}"


def test_two_different_problems_are_both_said() -> None:
    parsed = parse_flags("a cat --ar 7:3 --size 2K", FLASH)
    assert parsed.refusal == (
        f"7:3 {NOT_A_RATIO} "
        "gemini-2.5-flash-image makes images at a single size, so the size can't be changed."
    )


def test_past_two_problems_the_rest_are_counted() -> None:
    parsed = parse_flags("a cat --ar 7:3 --size 9K --ar 7:3 --size 2K --ar 1:7", PRO)
    assert parsed.refusal == (
        "7:3 is not an aspect ratio gemini-3-pro-image-preview supports; use one of "
        f"{RATIOS}. 9K is not an image size gemini-3-pro-image-preview supports; use one of 1K, 2K, 4K. "
        "2 more flags in this message can't be used either."
    )


def test_one_more_flag_is_singular() -> None:
    parsed = parse_flags("--ar x --ar y --ar x", FLASH)
    assert (
        parsed.refusal == f"x {NOT_A_RATIO} y {NOT_A_RATIO} 1 more flag in this message can't be used either."
    )


@pytest.mark.parametrize("count", [3, 100, 10_000])
def test_any_number_of_bad_flags_is_one_bounded_sentence(count: int) -> None:
    parsed = parse_flags(" ".join(["--ar x"] * count), FLASH)
    assert len(parsed.errors) == count
    assert parsed.refusal == f"x {NOT_A_RATIO} {count - 1:,} more flags in this message can't be used either."


def test_a_huge_value_is_echoed_as_an_excerpt() -> None:
    parsed = parse_flags("a cat --ar " + "7" * 50_000, FLASH)
    assert parsed.refusal == f"{'7' * 30}… {NOT_A_RATIO}"
    with pytest.raises(SettingError) as caught:
        validate_image_size("Q" * 6000, PRO)
    assert caught.value.user_message == (
        f"{'Q' * 30}… is not an image size gemini-3-pro-image-preview supports; use one of 1K, 2K, 4K."
    )


@pytest.mark.parametrize(("value", "shown"), [("", "(nothing)"), ("  ", "(nothing)"), ("16:10", "16:10")])
def test_short_values_are_echoed_whole(value: str, shown: str) -> None:
    assert excerpt(value) == shown


async def test_a_prompt_too_long_is_said_before_its_bad_flags(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await Core(fake_gemini, tmp_path / "db.sqlite3", {"MAX_PROMPT_CHARS": "10"}).start()
    try:
        result, sink = await core.say("a very long prompt indeed --ar x --ar y")
        assert result.status is TurnStatus.REJECTED
        assert [r.text for r in sink.replies] == [prompt_too_long_message(25, 10)]
        assert fake_gemini.requests == []
    finally:
        await core.stop()
