"""Inline flags: parsing, stripping, validation messages."""

import pytest

from bot.gemini.registry import shipped
from bot.text.flags import parse_flags

# What each model accepts and costs: the file shipped with the bot.
capabilities_for = shipped().capabilities_for

FLASH = capabilities_for("gemini-2.5-flash-image")
PRO = capabilities_for("gemini-3-pro-image-preview")


@pytest.mark.parametrize(
    ("text", "prompt", "aspect"),
    [
        ("a red bicycle --ar 16:9", "a red bicycle", "16:9"),
        ("--aspect 9:16 a tall tower", "a tall tower", "9:16"),
        ("a cat --ar=3:2 in a hat", "a cat in a hat", "3:2"),
        ("a cat —ar 4:3", "a cat", "4:3"),
        ("a cat –ar 21:9", "a cat", "21:9"),
        ("a cat --AR 16x9", "a cat", "16:9"),
        ("a cat --aspect-ratio 16/9", "a cat", "16:9"),
        ("no flags -- here, a--ar b", "no flags -- here, a--ar b", None),
    ],
)
def test_aspect_flag_is_stripped_and_normalised(text: str, prompt: str, aspect: str | None) -> None:
    parsed = parse_flags(text, FLASH)
    assert parsed.text == prompt
    assert parsed.aspect_ratio == aspect
    assert parsed.errors == ()


def test_invalid_aspect_lists_the_models_ratios() -> None:
    parsed = parse_flags("a cat --ar 7:3", FLASH)
    assert parsed.errors == (
        "7:3 is not an aspect ratio gemini-2.5-flash-image supports; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9.",
    )
    assert parsed.aspect_ratio is None


def test_extreme_ratio_only_on_models_that_have_it() -> None:
    assert parse_flags("x --ar 1:8", capabilities_for("gemini-3.1-flash-image-preview")).aspect_ratio == "1:8"
    assert parse_flags("x --ar 1:8", FLASH).errors


def test_flag_without_value() -> None:
    assert parse_flags("a cat --ar", FLASH).errors == ("--ar needs a value, for example --ar 16:9.",)


def test_size_flag_on_a_model_with_sizes() -> None:
    parsed = parse_flags("a castle --size 2k --ar 16:9", PRO)
    assert (parsed.text, parsed.image_size, parsed.aspect_ratio) == ("a castle", "2K", "16:9")


def test_size_flag_on_a_single_size_model_is_explained() -> None:
    parsed = parse_flags("a castle --size 2K", FLASH)
    assert parsed.errors == (
        "gemini-2.5-flash-image makes images at a single size, so the size can't be changed.",
    )


def test_bad_size_lists_valid_sizes() -> None:
    assert parse_flags("x --size 8K", PRO).errors == (
        "8K is not an image size gemini-3-pro-image-preview supports; use one of 1K, 2K, 4K.",
    )


def test_flags_only_prompt_is_empty_text() -> None:
    parsed = parse_flags("--ar 1:1", FLASH)
    assert parsed.text == ""
    assert parsed.has_settings


def test_multiline_prompt_keeps_its_lines() -> None:
    assert parse_flags("line one --ar 1:1\nline two", FLASH).text == "line one\nline two"


def test_invisible_and_direction_override_characters_are_removed() -> None:
    parsed = parse_flags("\u200ba cat\u200d \u202ein a hat\u202c\ufeff --ar\u200b 16:9", FLASH)
    assert parsed.text == "a cat in a hat"
    assert parsed.aspect_ratio == "16:9"


def test_right_to_left_text_is_kept() -> None:
    assert parse_flags("قطة في قبعة --ar 1:1", FLASH).text == "قطة في قبعة"
    assert parse_flags("חתול בכובע", FLASH).text == "חתול בכובע"


def test_only_invisible_characters_is_an_empty_prompt() -> None:
    assert parse_flags("\u200b\u200c\u2060", FLASH).text == ""


def test_size_without_a_value_suggests_a_size_the_model_has() -> None:
    parsed = parse_flags("a castle --size", PRO)
    assert parsed.errors == ("--size needs a value, for example --size 1K.",)
    assert (parsed.text, parsed.image_size) == ("a castle", None)
    newer = parse_flags("a castle —size", capabilities_for("gemini-3.1-flash-image-preview"))
    assert newer.errors == ("--size needs a value, for example --size 512.",)


def test_size_without_a_value_on_a_single_size_model_says_it_cannot_change() -> None:
    parsed = parse_flags("a castle --size", FLASH)
    assert parsed.errors == (
        "gemini-2.5-flash-image makes images at a single size, so the size can't be changed.",
    )
    assert parsed.text == "a castle"


@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u2066", "\u2067", "\u2068", "\u2069"])
def test_a_direction_mark_typed_before_a_flag_does_not_hide_it(mark: str) -> None:
    parsed = parse_flags(f"a cat {mark}--ar 16:9", FLASH)
    assert (parsed.text, parsed.aspect_ratio, parsed.errors) == ("a cat", "16:9", ())


def test_has_settings_only_when_a_flag_set_something() -> None:
    assert not parse_flags("a plain cat", PRO).has_settings
    assert not parse_flags("a cat --ar 7:3", PRO).has_settings  # refused, so nothing set
    size_only = parse_flags("a cat --size 4K", PRO)
    assert size_only.has_settings and (size_only.aspect_ratio, size_only.image_size) == (None, "4K")


ALLOWED = ("gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image")


@pytest.mark.parametrize(
    ("text", "takes", "errors"),
    [
        ("a cat --n 3", 3, ()),
        ("--n=2 a cat", 2, ()),
        ("a cat —n 4", 4, ()),
        ("a cat --n 1", 1, ("--n 1 can't be used; ask for 2, 3 or 4 takes at once, for example --n 3.",)),
        ("a cat --n 5", 1, ("--n 5 can't be used; ask for 2, 3 or 4 takes at once, for example --n 3.",)),
        ("a cat --n two", 1, ("--n two can't be used; ask for 2, 3 or 4 takes at once, for example --n 3.",)),
        ("a cat --n", 1, ("--n can't be used; ask for 2, 3 or 4 takes at once, for example --n 3.",)),
    ],
)
def test_takes_flag(text: str, takes: int, errors: tuple[str, ...]) -> None:
    parsed = parse_flags(text, FLASH, ALLOWED)
    assert (parsed.text, parsed.takes, parsed.errors) == ("a cat", takes, errors)


def test_model_flag_picks_an_offered_model_and_checks_the_rest_against_it() -> None:
    parsed = parse_flags("a cat --model GEMINI-3-pro-image --size 4k", FLASH, ALLOWED)
    assert (parsed.text, parsed.model, parsed.image_size, parsed.errors) == (
        "a cat",
        "gemini-3-pro-image",
        "4K",
        (),
    )
    assert parsed.has_settings
    # 4:1 is a 3.1 flash ratio: with --model it is checked against the model asked for.
    parsed = parse_flags("a cat --ar 4:1 --model gemini-2.5-flash-image", PRO, ALLOWED)
    assert parsed.errors == (
        "4:1 is not an aspect ratio gemini-2.5-flash-image supports; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9.",
    )


def test_model_flag_refuses_a_model_the_bot_does_not_offer() -> None:
    parsed = parse_flags("a cat --model gemini-9-ultra", FLASH, ALLOWED[:2])
    assert parsed.errors == (
        "gemini-9-ultra is not a model this bot offers; use one of "
        "gemini-3.1-flash-image, gemini-3-pro-image.",
    )
    assert parsed.model is None
    assert parse_flags("a cat --model", FLASH, ALLOWED).errors == (
        "--model needs a value, for example --model gemini-3.1-flash-image.",
    )


@pytest.mark.parametrize(
    ("text", "prompt", "refs"),
    [
        ("tea --ref alice --ref bob", "tea", ("alice", "bob")),
        ("--ref Bob tea --ref=ALICE", "tea", ("bob", "alice")),
        ("tea —ref alice --ref alice", "tea", ("alice",)),
        ("--ref a_1 --ref b-2", "", ("a_1", "b-2")),
        ("no refs--ref here", "no refs--ref here", ()),
    ],
)
def test_ref_flags_keep_their_order_in_lower_case(text: str, prompt: str, refs: tuple[str, ...]) -> None:
    parsed = parse_flags(text, FLASH)
    assert (parsed.text, parsed.refs, parsed.errors) == (prompt, refs, ())
    assert not parsed.has_settings


def test_bad_ref_flags_are_one_sentence_each() -> None:
    from bot.text import pin_words

    parsed = parse_flags("a cat --ref é --ref ok --ref -x --ref", FLASH)
    assert parsed.refs == ("ok",)
    assert parsed.errors == (pin_words.bad_name("é"), pin_words.bad_name("-x"), pin_words.ref_needs_name())
