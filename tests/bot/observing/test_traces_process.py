"""`python -m bot` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a fake collector: one Discord turn
arrives as a span tree (the turn; its download, model call, database calls and posts) with the
OpenTelemetry GenAI attributes; without the variable no OpenTelemetry module is even imported."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.gemini.calls import model_label
from tests.adapters.discord.test_discord_process import discord_env
from tests.auxil import image_factory as img
from tests.auxil.fake_discord import FakeDiscord, FakeFile
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_otlp import FakeCollector, ReceivedSpan, tree
from tests.auxil.process import TEST_MODEL, BotProcess

MODEL = model_label(TEST_MODEL)
PROMPT = "make it a watercolor"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def collector() -> AsyncIterator[FakeCollector]:
    async with FakeCollector() as server:
        yield server


def _turn_of(spans: list[ReceivedSpan]) -> ReceivedSpan | None:
    return next((s for s in spans if s.name == "turn prompt"), None)


async def test_one_turn_arrives_as_a_span_tree_with_genai_attributes(
    fake: FakeDiscord, fake_gemini: FakeGemini, collector: FakeCollector, tmp_path: Path
) -> None:
    env = {
        **discord_env(fake, fake_gemini, tmp_path),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # the SDK's batch interval (ms), read by the SDK itself
    }
    bot = await BotProcess.start(tmp_path, env)
    try:
        await bot.wait_while_running(fake.wait_ready())
        photo = FakeFile("holiday-photo.png", img.png(), "image/png")
        message = await fake.post(fake.general_id, f"{fake.mention()} {PROMPT}", files=[photo])
        [reply] = await fake.wait_until(lambda: fake.bot_messages(message.id))
        assert reply.files
        # Sent while the process runs, in the SDK's next batch.
        await collector.wait_for(lambda spans: _turn_of(spans) is not None)
        assert await bot.stop() == 0  # what was still waiting is sent on the way out
    finally:
        bot.ensure_dead()
    assert not bot.problems(["process-key", fake.token])
    turn = _turn_of(collector.spans)
    assert turn is not None
    key = f"discord:{fake.guild_id}:{fake.general_id}:{message.id}"
    assert turn.parent_id == "" and turn.kind == "internal" and turn.status == "unset"
    assert turn.attributes == {
        "nanobanana.platform": "discord",
        "nanobanana.conversation": hashlib.sha256(key.encode()).hexdigest()[:16],
        "nanobanana.turn.kind": "prompt",
        "nanobanana.turn.outcome": "image",
    }
    assert turn.resource["service.name"] == "nano-banana-bot"
    shape = tree(collector, turn)
    print("\n".join(shape))  # the report quotes it
    children = collector.children(turn)
    names = [c.name for c in children]
    # In the order they started: the photo, the read of the history, the call, the write, the post.
    expected = [
        "download",
        "store turn_context",
        f"generate_content {MODEL}",
        "store append_turn",
        "post reply",
    ]
    assert [n for n in names if n in expected] == expected
    assert all(name.startswith(("store ", "post ", "download", "generate_content")) for name in names)
    assert {c.trace_id for c in children} == {turn.trace_id}
    assert all(c.kind == "client" and c.status == "unset" for c in children)
    for child in children:  # each within its turn (a millisecond of rounding either way)
        assert turn.start_ns - 1_000_000 <= child.start_ns <= child.end_ns <= turn.end_ns + 1_000_000
    [call] = [c for c in children if c.name.startswith("generate_content")]
    request = fake_gemini.requests[0]
    assert call.attributes["gen_ai.operation.name"] == "generate_content"
    assert call.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert call.attributes["gen_ai.request.model"] == MODEL
    assert call.attributes["gen_ai.response.finish_reasons"] == ("STOP",)
    assert call.attributes["gen_ai.usage.input_tokens"] > 0
    assert call.attributes["gen_ai.usage.output_tokens"] >= 1290  # one 1K image
    assert request.prompt == PROMPT
    [post] = [c for c in children if c.name == "post reply"]
    assert post.attributes == {"nanobanana.platform": "discord", "nanobanana.post": "reply"}
    assert [c.attributes for c in children if c.name == "store append_turn"] == [
        {"db.operation.name": "append_turn"}
    ]
    everything = json.dumps([(s.name, s.attributes, s.events) for s in collector.spans], default=str)
    for private in (PROMPT, "holiday-photo", str(message.id), str(fake.general_id), str(fake.alice["id"])):
        assert private not in everything


NO_OTEL_PROBE = """
import atexit, os, runpy, sys

def report():
    with open(os.environ["PROBE_OUT"], "w") as out:
        out.write("\\n".join(sorted(m for m in sys.modules if m.startswith("opentelemetry"))) or "none")

atexit.register(report)
sys.argv = ["bot"]
runpy.run_module("bot", run_name="__main__", alter_sys=True)
"""


async def test_without_the_endpoint_no_opentelemetry_module_is_imported(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    """The same turn with the variable unset: `python -m bot` (run through runpy by a probe that
    lists, at exit, every module loaded) never imports OpenTelemetry, though it is installed."""
    probe = tmp_path / "probe.py"
    probe.write_text(NO_OTEL_PROBE)
    out = tmp_path / "modules.txt"
    env = {**discord_env(fake, fake_gemini, tmp_path), "PROBE_OUT": str(out)}
    bot = await BotProcess.start(tmp_path, env, launch=[str(probe)])
    try:
        await bot.wait_while_running(fake.wait_ready())
        message = await fake.post(fake.general_id, f"{fake.mention()} {PROMPT}", files=[])
        [reply] = await fake.wait_until(lambda: fake.bot_messages(message.id))
        assert reply.files
        assert await bot.stop() == 0
    finally:
        bot.ensure_dead()
    assert out.read_text() == "none"
    assert "traces on" not in "\n".join(bot.lines)
    assert importlib.util.find_spec("opentelemetry.sdk") is not None  # installed, and left alone
