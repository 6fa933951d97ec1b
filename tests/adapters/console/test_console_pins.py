"""The reference board in the console (`python -m bot console`): a character pinned once and used in
three prompts, pins from a file, the list, unpinning, and every refusal's one sentence."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from bot.text import pin_words
from tests.adapters.console.test_console import run_piped, saved_images
from tests.auxil import image_factory
from tests.auxil.engines import ENGINES
from tests.auxil.fake_gemini import FakeGemini, RecordedRequest, b64decode_any

FLASH = "gemini-2.5-flash-image"  # takes at most 3 images per turn


def last_user_parts(request: RecordedRequest) -> list[dict[str, Any]]:
    return list(request.contents[-1]["parts"])


def described(parts: list[dict[str, Any]]) -> list[str]:
    """Each part as text, or ``image:<sha prefix>`` for an image (by its bytes)."""
    out = []
    for part in parts:
        inline = part.get("inlineData") or part.get("inline_data")
        if inline:
            out.append("image:" + hashlib.sha256(b64decode_any(inline["data"])).hexdigest()[:12])
        else:
            out.append(part["text"])
    return out


def image_key(data: bytes) -> str:
    return "image:" + hashlib.sha256(data).hexdigest()[:12]


@pytest.mark.parametrize("engine_api", ENGINES)
async def test_a_character_pinned_once_is_reused_in_three_prompts(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    (tmp_path / "bob.png").write_bytes(image_factory.png(40, 40))
    lines = [
        "/pin alice",  # nothing drawn yet
        "a girl called Alice in a red coat",
        "/pin Alice",
        "/pin alice",  # taken
        "/pin bob @bob.png",
        "/pins",
        "Alice rides a bicycle --ref alice",
        "/new",
        "Alice at the beach --ref ALICE",
        "/new",
        "Alice and Bob have tea --ref alice --ref bob",
        "--ref ghost a castle",
        "--ref alice --ref bob --ref alice2 --ref x a crowd",
        "/unpin bob",
        "/unpin bob",
        "/pins",
    ]
    out = await run_piped(fake_gemini, tmp_path, lines, {"GEMINI_MODEL": FLASH, "GEMINI_API": engine_api})
    said = out.splitlines()
    assert f"! {pin_words.NOTHING_TO_PIN}" in said
    assert pin_words.pinned("alice") in said
    assert f"! {pin_words.name_taken('alice')}" in said
    assert pin_words.pinned("bob") in said
    assert said.count(pin_words.PINS_HEADING) == 2
    assert f"! {pin_words.unknown_refs(['ghost'])}" in said
    assert f"! {pin_words.too_many_references(4, 0, 3, FLASH)}" in said
    assert pin_words.unpinned("bob") in said
    assert f"! {pin_words.unknown_pin('bob')}" in said
    first, *_ = saved_images(out, tmp_path)
    alice = image_key(first.read_bytes())
    # One request to draw Alice, three that use her; none for the refused prompts.
    assert len(fake_gemini.requests) == 4
    label_a, label_b = pin_words.reference_label("alice"), pin_words.reference_label("bob")
    for request in fake_gemini.requests[1:3]:
        parts = described(last_user_parts(request))
        assert parts[-3:-1] == [label_a, alice]
    tea = described(last_user_parts(fake_gemini.requests[3]))
    assert tea[-5:] == [label_a, alice, label_b, tea[-2], "Alice and Bob have tea"]
    assert tea[-2].startswith("image:") and tea[-2] != alice
    # The lists: both pins, then only alice.
    listed = out.split(pin_words.PINS_HEADING)
    assert "• alice" in listed[1] and "• bob" in listed[1]
    assert "• alice" in listed[2] and "• bob" not in listed[2]


@pytest.mark.parametrize("engine_api", ENGINES)
async def test_pins_survive_a_restart_and_a_forget(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    engine = {"GEMINI_API": engine_api}
    await run_piped(fake_gemini, tmp_path, ["a lighthouse", "/pin lighthouse", "/forget"], engine)
    out = await run_piped(
        fake_gemini, tmp_path, ["/pins", "the lighthouse at night --ref lighthouse"], engine
    )
    assert "• lighthouse" in out.splitlines()
    assert len(saved_images(out, tmp_path)) == 1
    assert len(fake_gemini.requests) == 2
    assert pin_words.reference_label("lighthouse") in described(last_user_parts(fake_gemini.requests[1]))
    with closing(sqlite3.connect(tmp_path / "data" / "bot.sqlite3")) as db:
        assert db.execute("SELECT name, pinned_by != '' FROM pins").fetchall() == [("lighthouse", 1)]
        assert db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] >= 1


async def test_bad_pin_names_and_flags_get_one_sentence(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    long = "a" * (pin_words.MAX_NAME + 1)
    lines = ["a cat", "/pin", "/pin bad!name", f"/pin {long}", "/unpin", "a dog --ref", "a dog --ref no/way"]
    out = await run_piped(fake_gemini, tmp_path, lines)
    said = out.splitlines()
    assert f"! {pin_words.PIN_WHICH_NAME}" in said
    assert f"! {pin_words.bad_name('bad!name')}" in said
    assert f"! {pin_words.bad_name(long)}" in said
    assert f"! {pin_words.UNPIN_WHICH_NAME}" in said
    assert f"! {pin_words.ref_needs_name()}" in said
    assert f"! {pin_words.bad_name('no/way')}" in said
    assert len(fake_gemini.requests) == 1
