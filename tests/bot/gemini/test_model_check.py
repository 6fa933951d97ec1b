"""The start-up model check through the real SDK against the fake's models.get / models.list."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.gemini import GeminiEngine
from bot.gemini.model_check import MSG_KEY_REJECTED, ModelChoice, choose_model
from tests.auxil import fake_gemini as fg
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import run_bot

GA = ("gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image")


def closed_port_url() -> str:
    """A local URL nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def engine_for(fake_gemini: FakeGemini) -> AsyncIterator:
    engines: list[GeminiEngine] = []

    def make(model: str = "gemini-2.5-flash-image", *, key: str = "k", base_url: str | None = None):
        engine = GeminiEngine(api_key=key, model=model, base_url=base_url or fake_gemini.base_url)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.aclose()


async def test_a_served_model_is_kept_after_one_models_get(fake_gemini: FakeGemini, engine_for) -> None:
    engine = engine_for("gemini-3-pro-image")
    choice = await choose_model(engine, "gemini-3-pro-image", explicit=True)
    assert choice == ModelChoice("gemini-3-pro-image")
    assert fake_gemini.model_lookups == ["/v1beta/models/gemini-3-pro-image"]


async def test_an_unserved_model_stops_start_up_naming_the_usable_image_models(
    fake_gemini: FakeGemini, engine_for
) -> None:
    fake_gemini.models = {"gemini-3-pro-image", "gemini-3.1-flash-image"}
    fake_gemini.list_page_size = 2  # 2 image models + 3 others: three pages
    choice = await choose_model(engine_for(), "gemini-2.5-flash-image", explicit=True)
    assert choice == ModelChoice(
        None,
        "GEMINI_MODEL gemini-2.5-flash-image is not available to this key; "
        "image models it can use: gemini-3.1-flash-image, gemini-3-pro-image.",
    )
    # Every page was read: the SDK followed nextPageToken.
    assert fake_gemini.model_lookups == [
        "/v1beta/models/gemini-2.5-flash-image",
        "/v1beta/models",
        "/v1beta/models?pageToken=2",
        "/v1beta/models?pageToken=4",
    ]


async def test_models_that_do_not_generate_content_are_not_offered(
    fake_gemini: FakeGemini, engine_for
) -> None:
    # imagen-4.0-generate-001 contains "image" but only offers predict; gemini-2.5-flash has no
    # "image" in its id.
    fake_gemini.models = set()
    choice = await choose_model(engine_for(), "imagen-4.0-generate-001", explicit=True)
    assert choice.error == (
        "GEMINI_MODEL imagen-4.0-generate-001 is not available to this key; this key can use no image models."
    )


async def test_unset_picks_by_the_rule_when_the_first_model_is_gone_and_logs_it(
    fake_gemini: FakeGemini, engine_for, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 22: without gemini-3.1-flash-image the next model in file order (3 pro, $0.1344 an
    # image) is not taken; the rule picks the newest flash-class model served.
    served = {"gemini-2.5-flash-image", "gemini-3-pro-image", "gemini-3-pro-image-preview"}
    fake_gemini.models = served
    with caplog.at_level(logging.INFO, logger="bot.gemini.model_check"):
        choice = await choose_model(engine_for(GA[0]), GA[0], explicit=False)
    assert choice.model == "gemini-2.5-flash-image" and set(choice.served or ()) == served
    assert fake_gemini.model_lookups == ["/v1beta/models"]
    assert [r.getMessage() for r in caplog.records] == [
        "GEMINI_MODEL is not set; chose gemini-2.5-flash-image, the newest flash-class model this key "
        "is served, at $0.0387 per 1K image"
    ]
    assert caplog.records[0].image_price_usd == pytest.approx(1290 * 30 / 1e6)


async def test_unset_without_a_flash_model_picks_the_cheapest_served(
    fake_gemini: FakeGemini, engine_for, caplog: pytest.LogCaptureFixture
) -> None:
    fake_gemini.models = {"gemini-3-pro-image-preview"}
    with caplog.at_level(logging.INFO, logger="bot.gemini.model_check"):
        choice = await choose_model(engine_for(GA[0]), GA[0], explicit=False)
    # Only a preview id is served: that id is chosen, with its base's entry.
    assert choice.model == "gemini-3-pro-image-preview"
    assert [r.getMessage() for r in caplog.records] == [
        "GEMINI_MODEL is not set; chose gemini-3-pro-image-preview, the cheapest per 1K image this key "
        "is served, none being flash-class, at $0.1344 per 1K image"
    ]


async def test_unset_with_no_preferred_model_served_stops(fake_gemini: FakeGemini, engine_for) -> None:
    fake_gemini.models = {"gemini-2.0-flash-preview-image-generation"}
    choice = await choose_model(engine_for(GA[0]), GA[0], explicit=False)
    assert choice.error == (
        "GEMINI_MODEL is not set and none of gemini-3.1-flash-image, gemini-3-pro-image, "
        "gemini-2.5-flash-image is available to this key; image models it can use: "
        "gemini-2.0-flash-preview-image-generation. Set GEMINI_MODEL to one of them."
    )


@pytest.mark.parametrize(("explicit", "expected"), [(True, "gemini-3-pro-image"), (False, GA[0])])
async def test_an_unreachable_api_is_a_warning_not_a_stop(
    engine_for, caplog: pytest.LogCaptureFixture, explicit: bool, expected: str
) -> None:
    engine = engine_for("gemini-3-pro-image", base_url=closed_port_url())
    with caplog.at_level(logging.WARNING, logger="bot.gemini.model_check"):
        choice = await choose_model(engine, "gemini-3-pro-image", explicit=explicit)
    assert choice == ModelChoice(expected)
    assert [r.getMessage() for r in caplog.records] == [
        f"could not check the Gemini model at start-up; going on with {expected}"
    ]


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_failing_models_endpoint_is_a_warning_not_a_stop(
    fake_gemini: FakeGemini, engine_for, status: int
) -> None:
    fake_gemini.models_status = status
    choice = await choose_model(engine_for(), "gemini-2.5-flash-image", explicit=True)
    assert choice == ModelChoice("gemini-2.5-flash-image")
    assert len(fake_gemini.model_lookups) == 1  # no retries at start-up


async def test_a_lookup_that_hangs_times_out_into_a_warning(fake_gemini: FakeGemini) -> None:
    fake_gemini.models_latency_s = 5
    engine = GeminiEngine(api_key="k", model=GA[1], base_url=fake_gemini.base_url, timeout_s=0.3)
    try:
        async with asyncio.timeout(3):
            choice = await choose_model(engine, GA[1], explicit=True)
    finally:
        await engine.aclose()
    assert choice == ModelChoice(GA[1])


async def test_a_rejected_key_stops_start_up(engine_for) -> None:
    choice = await choose_model(engine_for(key=fg.BAD_KEY), "gemini-2.5-flash-image", explicit=True)
    assert choice == ModelChoice(None, MSG_KEY_REJECTED)


# ---------------------------------------------------------------------------------------------
# As `python -m bot`


def console_env(base_url: str, model: str) -> dict[str, str]:
    return {"GEMINI_API_KEY": "model-check-key", "GOOGLE_GEMINI_BASE_URL": base_url, "GEMINI_MODEL": model}


async def run(cwd: Path, env: dict[str, str]):
    return await asyncio.to_thread(run_bot, ["console"], cwd, env, "")


def console_log(cwd: Path) -> list[dict]:
    return [json.loads(line) for line in (cwd / "data" / "console.log").read_text().splitlines()]


async def test_process_stops_with_one_line_when_the_model_is_not_served(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models = {"gemini-3.1-flash-image", "gemini-3-pro-image"}
    result = await run(tmp_path, console_env(fake_gemini.base_url, "gemini-2.5-flash-image"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: GEMINI_MODEL gemini-2.5-flash-image is not available to this key; "
        "image models it can use: gemini-3.1-flash-image, gemini-3-pro-image."
    ]
    assert fake_gemini.requests == []


async def test_process_with_the_model_unset_shows_the_chosen_one(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    result = await run(tmp_path, console_env(fake_gemini.base_url, ""))
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "Nano Banana console · model gemini-3.1-flash-image · type /help for commands",
        "New conversation. Describe the image you want.",
        "Bye. Your conversation is saved; run the bot again to continue it.",
    ]
    chosen = [e for e in console_log(tmp_path) if e["message"].startswith("GEMINI_MODEL is not set")]
    assert [e["gemini_model"] for e in chosen] == ["gemini-3.1-flash-image"]


async def test_process_goes_on_when_gemini_is_unreachable(tmp_path: Path) -> None:
    result = await run(tmp_path, console_env(closed_port_url(), "gemini-3-pro-image"))
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == (
        "Nano Banana console · model gemini-3-pro-image · type /help for commands"
    )
    warnings = [e for e in console_log(tmp_path) if e["level"] == "warning"]
    assert [e["message"] for e in warnings] == [
        "could not check the Gemini model at start-up; going on with gemini-3-pro-image"
    ]


async def test_process_refuses_defaults_the_chosen_model_cannot_use(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models = {"gemini-2.5-flash-image"}
    env = {**console_env(fake_gemini.base_url, ""), "DEFAULT_IMAGE_SIZE": "2K"}
    result = await run(tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: DEFAULT_IMAGE_SIZE is set but gemini-2.5-flash-image, the model chosen because "
        "GEMINI_MODEL is not set, has a single image size; unset it."
    ]
    env = {**console_env(fake_gemini.base_url, ""), "DEFAULT_ASPECT_RATIO": "1:8"}
    result = await run(tmp_path, env)
    assert result.stderr.splitlines() == [
        "error: DEFAULT_ASPECT_RATIO '1:8' is not supported by gemini-2.5-flash-image, the model "
        "chosen because GEMINI_MODEL is not set; use one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, "
        "9:16, 16:9, 21:9."
    ]
    result = await run(tmp_path, console_env(fake_gemini.base_url, ""))
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == (
        "Nano Banana console · model gemini-2.5-flash-image · type /help for commands"
    )


async def test_platform_process_stops_before_any_adapter_starts(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models = {"gemini-3.1-flash-image"}
    env = {
        **console_env(fake_gemini.base_url, "gemini-3-pro-image"),
        "DISCORD_TOKEN": "discord-token-never-used",
        "DISCORD_API_URL": closed_port_url(),  # an adapter that started would fail differently
    }
    result = await asyncio.to_thread(run_bot, [], tmp_path, env)
    assert result.returncode == 2
    # stderr also carries the JSON log here: the database migrations, nothing from an adapter.
    lines = result.stderr.splitlines()
    assert [line for line in lines if not line.startswith("{")] == [
        "error: GEMINI_MODEL gemini-3-pro-image is not available to this key; "
        "image models it can use: gemini-3.1-flash-image."
    ]
    assert lines[-1].startswith("error: ")
    loggers = {json.loads(line)["logger"] for line in lines if line.startswith("{")}
    assert loggers == {"storage.sqlite_file"}
