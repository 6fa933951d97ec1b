"""The tracing observer in one process, through the real core, store and SDK against the fake
Gemini, its spans kept by the OpenTelemetry SDK's in-memory exporter: what fails is marked as an
error on the span it belongs to, and the turn's outcome is the metrics' word."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from bot.composition import build_service
from bot.gemini import GeminiEngine
from bot.observing.metrics import Metrics
from bot.observing.traces import Tracing, build_tracing
from bot.vocabulary import AttachmentUnavailable
from tests.auxil import fake_gemini as fg
from tests.auxil.core import Core, failing_ref
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import TEST_MODEL


async def traced_core(fake: FakeGemini, db: Path) -> tuple[Core, Tracing, InMemorySpanExporter]:
    """A ``Core`` whose engine and service tell a ``Tracing`` over ``Metrics``, as the runtime wires
    them with OTEL_EXPORTER_OTLP_ENDPOINT set, with spans kept in memory instead of sent."""
    core = await Core(fake, db).start()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(Metrics(), provider.get_tracer("test"), provider)
    await core.engine.aclose()
    core.engine = GeminiEngine(
        api_key="test-key", model=TEST_MODEL, base_url=fake.base_url, max_attempts=1, observer=tracing
    )
    core.service = build_service(core.config, core.store, core.engine, observer=tracing)
    return core, tracing, exporter


def children_of(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_a_failed_download_is_an_error_span_of_a_rejected_turn(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core, tracing, exporter = await traced_core(fake_gemini, tmp_path / "bot.sqlite3")
    try:
        gone = AttachmentUnavailable("That photo could not be downloaded.", reason="status")
        await core.say("edit this photo", failing_ref("photo.png", gone))
    finally:
        await core.stop()
        tracing.close()
    spans = exporter.get_finished_spans()
    [turn] = [s for s in spans if s.name == "turn prompt"]
    assert turn.attributes is not None and turn.attributes["nanobanana.turn.outcome"] == "rejected"
    assert turn.status.status_code is StatusCode.UNSET  # a refusal, not an error of the bot's
    [download] = [s for s in children_of(spans, turn) if s.name == "download"]
    assert download.status.status_code is StatusCode.ERROR
    assert dict(download.attributes or {}) == {"nanobanana.platform": "console", "error.type": "status"}
    [notice] = [s for s in children_of(spans, turn) if s.name == "post reply"]
    assert notice.status.status_code is StatusCode.UNSET
    assert not [s for s in spans if s.name.startswith("generate_content")]  # never asked


async def test_a_failed_model_call_is_an_error_span_of_a_failed_turn(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core, tracing, exporter = await traced_core(fake_gemini, tmp_path / "bot.sqlite3")
    try:
        fake_gemini.enqueue(fg.error(500))
        await core.say("a lighthouse at dusk")
        with tracing.turn("discord", "prompt", "abc123"):  # a platform call failing inside a turn
            tracing.platform_error("discord", "POST /channels/{channel_id}/messages", "5xx")
    finally:
        await core.stop()
        tracing.close()
    spans = exporter.get_finished_spans()
    failed, posting = [s for s in spans if s.name == "turn prompt"]
    assert (failed.attributes or {})["nanobanana.turn.outcome"] == "failed"
    assert failed.status.status_code is StatusCode.ERROR
    [call] = [s for s in children_of(spans, failed) if s.name.startswith("generate_content")]
    assert call.status.status_code is StatusCode.ERROR
    attributes = dict(call.attributes or {})
    assert attributes["error.type"] == attributes["nanobanana.outcome"] != "image"
    assert attributes["gen_ai.request.model"] == TEST_MODEL
    assert "gen_ai.response.finish_reasons" not in attributes  # no answer, no reason
    assert (posting.attributes or {})["nanobanana.turn.outcome"] == "crashed"  # ended without a status
    [event] = posting.events
    assert event.name == "platform API error"
    assert dict(event.attributes or {}) == {
        "nanobanana.method": "POST /channels/{channel_id}/messages",
        "nanobanana.status": "5xx",
    }


def test_without_an_endpoint_or_without_the_extra_there_are_no_traces(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert build_tracing(Metrics(), None) is None
    assert build_tracing(Metrics(), "") is None
    # As if the otel extra were not installed: importing the exporter fails.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with caplog.at_level(logging.WARNING):
        assert build_tracing(Metrics(), "http://127.0.0.1:4318") is None
    assert [r.getMessage() for r in caplog.records] == [
        "traces off: OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed"
    ]
