"""GET /metrics after a scripted set of turns through the real core, store and SDK against the
fake Gemini: exactly those turns, calls, tokens, images and costs, and no person or prompt in any label."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.composition import build_service
from bot.gemini import GeminiEngine
from bot.gemini.calls import model_label
from bot.gemini.registry import shipped
from bot.health import METRICS_PATH, Health, HealthServer
from bot.observing import status_class
from bot.observing.metrics import Metrics
from bot.vocabulary import AttachmentUnavailable
from tests.adapters.slack.test_slack import held
from tests.auxil import fake_gemini as fg
from tests.auxil.core import ALICE, Core, failing_ref
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import TEST_MODEL

# What each model accepts and costs: the file shipped with the bot.
capabilities_for = shipped().capabilities_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(exposition: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
    }


def value(got: Samples, name: str, **labels: str) -> float:
    return got.get((name, frozenset(labels.items())), 0.0)


async def observed_core(fake: FakeGemini, db: Path, env: dict[str, str]) -> tuple[Core, Metrics]:
    """A ``Core`` whose engine and service tell one ``Metrics``, as ``python -m bot`` wires them."""
    core = await Core(fake, db, env=env).start()
    metrics = Metrics()
    await core.engine.aclose()
    core.engine = GeminiEngine(
        api_key="test-key", model=TEST_MODEL, base_url=fake.base_url, max_attempts=1, observer=metrics
    )
    core.service = build_service(core.config, core.store, core.engine, observer=metrics)
    return core, metrics


async def test_scripted_turns_show_exactly_in_the_metrics(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core, metrics = await observed_core(fake_gemini, tmp_path / "bot.sqlite3", {"USER_IMAGES_PER_HOUR": "1"})
    server = HealthServer(Health(core.store, []), port=0, extra={METRICS_PATH: metrics.handle})
    await server.start()
    try:
        fake_gemini.enqueue(fg.prompt_blocked())
        await core.say("a forbidden secret prompt")  # blocked by safety
        unreachable = AttachmentUnavailable("gone", reason="status")
        await core.say("edit this photo", failing_ref("photo.png", unreachable))  # failed download
        await core.say("a lighthouse at dusk")  # the one image the limit allows
        await core.say("a second lighthouse")  # refused by the limit
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{server.port}/metrics") as resp,
        ):
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            text = await resp.text()
        cost_in_ledger = await core.store.cost_since(0)
    finally:
        await server.close()
        await core.stop()

    got = samples(text)
    model = model_label(TEST_MODEL)
    turns = {
        outcome: value(got, "nanobanana_turns_total", platform="console", kind="prompt", outcome=outcome)
        for outcome in ("blocked_by_safety", "rejected", "image", "refused_by_limit", "failed", "cancelled")
    }
    assert turns == {
        "blocked_by_safety": 1,
        "rejected": 1,
        "image": 1,
        "refused_by_limit": 1,
        "failed": 0,
        "cancelled": 0,
    }
    calls = "nanobanana_gemini_calls_total"
    assert value(got, calls, gen_ai_request_model=model, result="prompt_blocked") == 1
    assert value(got, calls, gen_ai_request_model=model, result="image") == 1
    assert sum(v for (name, _), v in got.items() if name == calls) == 2  # the download failed first
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert value(got, duration, gen_ai_operation_name="generate_content", gen_ai_request_model=model) == 2
    assert value(got, "nanobanana_images_total", gen_ai_request_model=model, size="1K") == 1

    # Tokens as the fake reported them; the cost is the ledger's plus the blocked call's input.
    blocked, drawn = fake_gemini.requests
    token_sum = "gen_ai_client_token_usage_sum"
    tokens = {"gen_ai_operation_name": "generate_content", "gen_ai_request_model": model}
    assert (
        value(got, token_sum, **tokens, gen_ai_token_type="input")
        == blocked.prompt_tokens + drawn.prompt_tokens
    )
    assert value(got, token_sum, **tokens, gen_ai_token_type="output_image") == fg.image_tokens(
        TEST_MODEL, None
    )
    prices = capabilities_for(model).prices
    blocked_cost = blocked.prompt_tokens * prices.input_text / 1e6
    assert cost_in_ledger > 0
    cost = value(got, "nanobanana_estimated_cost_usd_total", gen_ai_request_model=model)
    assert cost == pytest.approx(cost_in_ledger + blocked_cost)

    assert value(got, "nanobanana_download_failures_total", platform="console", reason="status") == 1
    assert value(got, "nanobanana_queue_wait_seconds_count") == 3  # each turn that reached the gate
    assert value(got, "nanobanana_database_round_trip_seconds_count", operation="append_turn") == 1
    # Each of the four messages is claimed once, in the call that also reads its settings.
    assert value(got, "nanobanana_database_round_trip_seconds_count", operation="claim_turn") == 4
    assert value(got, "nanobanana_turns_in_flight") == 0
    assert value(got, "nanobanana_generations_in_flight") == 0
    assert value(got, "nanobanana_image_memory_in_use_bytes", pool="turns") == 0
    half = core.config.images.memory_bytes // 2
    assert value(got, "nanobanana_image_memory_capacity_bytes", pool="turns") == half

    labels = {v for (_, pairs) in got for _, v in pairs}
    for private in (ALICE.id, "forbidden", "lighthouse", "photo.png", "thread-1", "terminal"):
        assert not any(private in label for label in labels), private


async def test_a_turn_cut_off_is_counted_as_cancelled(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core, metrics = await observed_core(fake_gemini, tmp_path / "bot.sqlite3", {})
    behaviour, release = held()
    fake_gemini.enqueue(behaviour)
    try:
        turn = asyncio.create_task(core.say("a slow sunset"))
        await fake_gemini.wait_for_requests(1)
        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn
    finally:
        release.set()
        await core.stop()
    got = samples(metrics.exposition().decode())
    assert value(got, "nanobanana_turns_total", platform="console", kind="prompt", outcome="cancelled") == 1


def test_labels_are_bounded() -> None:
    metrics = Metrics()
    metrics.download_failed("matrix", "a reason with\nnewline")
    metrics.platform_error("slack", "chat.postMessage", "5xx")
    metrics.platform_error("discord", "GET /users/@me", "a status\nmade up")
    got = samples(metrics.exposition().decode())
    assert value(got, "nanobanana_download_failures_total", platform="other", reason="other") == 1
    errors = "nanobanana_platform_api_errors_total"
    assert value(got, errors, platform="slack", method="chat.postMessage", status="5xx") == 1
    assert value(got, errors, platform="discord", method="GET /users/@me", status="other") == 1
    assert model_label("gemini-2.5-flash-image-preview") == "gemini-2.5-flash-image"
    assert model_label("someone-elses-model") == "other"
    with pytest.raises(ValueError):
        metrics.sample("people_online", lambda: 1)


def test_failed_platform_calls_are_counted_by_status_class() -> None:
    answers = (None, 400, 403, 404, 429, 200, 500, 503)
    assert [status_class(s) for s in answers] == ["network", *["4xx"] * 5, "5xx", "5xx"]
