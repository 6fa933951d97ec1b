"""The model registry as data (issue 22): the shipped file, MODELS_FILE over it, the default pick,
models no file knows, and the spend cap with a model whose price is unknown."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.config.models_file import SHIPPED_NAME
from bot.entry.commands import Command, CommandName
from bot.gemini.model_check import start_model
from bot.gemini.model_choice import allowed_models
from bot.gemini.registry import shipped
from bot.text import model_words
from bot.turns.pipeline import TurnStatus
from bot.vocabulary import Usage
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.engines import ENGINES, interactions
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import run_bot

ROOT = Path(__file__).resolve().parents[3]
NEW = "gemini-4-flash-image"
NEW_ENTRY = f"""
prices_date = "2026-09-01"

[models."{NEW}"]
class = "flash"
released = "2026-08-20"
aspect_ratios = ["1:1", "16:9", "9:16"]
image_sizes = ["1K", "2K"]
max_input_images = 6
thinking_levels = ["low", "high"]

[models."{NEW}".prices]
input_text = 0.40
input_image = 0.40
output_image = 50.0
output_text = 2.0
tokens_per_image = {{ "1K" = 1000, "2K" = 1500 }}
"""


def models_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    return caught.value.problems


# ---------------------------------------------------------------------------------------------
# The shipped file


def test_the_shipped_file_holds_what_the_constants_held() -> None:
    models = shipped()
    assert models.ids() == ("gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image")
    assert models.prices_date == "2026-05-28"
    flash = models.capabilities_for("gemini-3.1-flash-image-preview")
    assert (flash.base, flash.family, flash.thinking_levels) == (
        "gemini-3.1-flash-image",
        "flash",
        ("minimal", "high"),
    )
    assert flash.image_sizes == ("512", "1K", "2K", "4K") and len(flash.aspect_ratios) == 14
    assert flash.prices is not None and dict(flash.prices.tokens_per_image)["2K"] == 1680
    old = models.capabilities_for("gemini-2.5-flash-image")
    assert (old.image_sizes, old.max_input_images, old.thinking_levels) == ((), 3, ())
    assert old.image_price() == pytest.approx(1290 * 30 / 1e6)


def test_the_shipped_file_ships_in_the_wheel() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["bot.gemini"]
    assert SHIPPED_NAME in globs and (ROOT / "bot" / "gemini" / SHIPPED_NAME).is_file()


def test_a_model_no_file_knows_gets_what_every_known_model_accepts_and_no_price() -> None:
    caps = shipped().capabilities_for("gemini-9-image")
    assert not caps.known and not caps.priced and caps.base == ""
    # Ratios all three take, no size setting (2.5 has none), 3 input images, no thinking levels.
    assert caps.aspect_ratios == ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
    assert (caps.image_sizes, caps.max_input_images, caps.thinking_levels) == ((), 3, ())
    assert caps.estimate_cost(Usage(prompt_tokens=1000, output_tokens=1290, images_generated=1), None) == 0.0


# ---------------------------------------------------------------------------------------------
# MODELS_FILE


def test_models_file_adds_a_model_that_is_then_priced_and_offered(tmp_path: Path) -> None:
    config = load_config({"MODELS_FILE": models_file(tmp_path, NEW_ENTRY), "GEMINI_MODEL": NEW})
    caps = config.models.capabilities_for(NEW)
    assert caps.known and caps.priced and caps.thinking_levels == ("low", "high")
    usage = Usage(prompt_tokens=100, output_tokens=1500 + 20, images_generated=1)
    assert caps.estimate_cost(usage, "2K") == pytest.approx((100 * 0.40 + 1500 * 50 + 20 * 2) / 1e6)
    assert config.models.prices_date == "2026-09-01"
    assert config.models.offered() == (*shipped().ids(), NEW)
    # Unset GEMINI_MODEL: the newest flash model known (before start-up asks what is served).
    assert load_config({"MODELS_FILE": models_file(tmp_path, NEW_ENTRY)}).gemini.model == NEW


def test_models_file_overrides_one_field_and_keeps_the_rest(tmp_path: Path) -> None:
    text = '[models."gemini-3-pro-image".prices]\noutput_image = 100.0\n'
    config = load_config({"MODELS_FILE": models_file(tmp_path, text)})
    pro = config.models.capabilities_for("gemini-3-pro-image")
    assert pro.prices is not None and pro.prices.output_image == 100.0 and pro.prices.input_text == 2.0
    assert pro.image_sizes == ("1K", "2K", "4K") and config.models.prices_date == "2026-05-28"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            '[models."gemini-3-pro-image"]\nmax_input_images = "lots"\n',
            "model 'gemini-3-pro-image': max_input_images must be a whole number of at least 1, not 'lots'.",
        ),
        (
            '[models."x-image"]\nclass = "flash"\naspect_ratios = ["1:1"]\n',
            "model 'x-image': a new model needs max_input_images.",
        ),
        (
            '[models."gemini-2.5-flash-image"]\naspect_ratios = ["wide"]\n',
            "model 'gemini-2.5-flash-image': aspect_ratios must be a list of ratios like 16:9, not ['wide'].",
        ),
        (
            '[models."gemini-3.1-flash-image"]\nthinking_levels = ["max"]\n',
            "model 'gemini-3.1-flash-image': thinking_levels must be a list of minimal, low, medium, high, "
            "not ['max'].",
        ),
        (
            '[models."gemini-3.1-flash-image"]\nspeed = 3\n',
            "model 'gemini-3.1-flash-image': unknown field 'speed'; the fields are class, released, api, "
            "aspect_ratios, image_sizes, max_input_images, thinking_levels, prices.",
        ),
        (
            '[models."gemini-3-pro-image".prices.tokens_per_image]\n"4K" = 0\n',
            "model 'gemini-3-pro-image': prices.tokens_per_image must map each image size to a whole "
            "number of tokens.",
        ),
        (
            '[models."gemini-3-pro-image"]\nimage_sizes = ["1K", "8K"]\n',
            "model 'gemini-3-pro-image': prices.tokens_per_image has no tokens for size 8K.",
        ),
        ('prices_date = "last May"\n', "prices_date must be a date like 2026-05-28, not 'last May'."),
        (
            "[models\n",
            "is not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 8).",
        ),
    ],
)
def test_a_bad_entry_is_one_line_naming_the_file_and_the_model(tmp_path: Path, text: str, line: str) -> None:
    path = models_file(tmp_path, text)
    separator = " " if line.startswith("is not") else ": "
    assert problems_of({"MODELS_FILE": path}) == [f"MODELS_FILE {path}{separator}{line}"]


def test_each_bad_entry_is_its_own_line_and_a_missing_file_is_one(tmp_path: Path) -> None:
    text = '[models."a-image"]\nclass = "pro"\n\n[models."gemini-3-pro-image"]\napi = "rest"\n'
    path = models_file(tmp_path, text)
    assert problems_of({"MODELS_FILE": path}) == [
        f"MODELS_FILE {path}: model 'gemini-3-pro-image': api must be one of generate_content, "
        "interactions, not 'rest'.",
        f"MODELS_FILE {path}: model 'a-image': a new model needs aspect_ratios, max_input_images.",
    ]
    gone = str(tmp_path / "nowhere.toml")
    assert problems_of({"MODELS_FILE": gone}) == [
        f"MODELS_FILE {gone} cannot be read: no such file or directory."
    ]


async def test_process_stops_with_the_bad_entry_line(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    path = models_file(tmp_path, '[models."gemini-3-pro-image"]\nmax_input_images = 0\n')
    env = {"GEMINI_API_KEY": "k", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url, "MODELS_FILE": path}
    result = await asyncio.to_thread(run_bot, ["console"], tmp_path, env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: MODELS_FILE {path}: model 'gemini-3-pro-image': max_input_images must be a whole "
        "number of at least 1, not 0."
    ]
    assert fake_gemini.model_lookups == [] and fake_gemini.requests == []


# ---------------------------------------------------------------------------------------------
# Through the service


async def test_an_added_model_is_selectable_and_its_turns_are_priced(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models.add(NEW)
    core = await Core(
        fake_gemini, tmp_path / "bot.sqlite3", {"MODELS_FILE": models_file(tmp_path, NEW_ENTRY)}
    ).start()
    try:
        chosen = await core.service.dialogue.run(Command(CommandName.MODEL, KEY, ALICE, NEW))
        assert (chosen.text, chosen.refused) == (f"The model is now {NEW} for this conversation.", False)
        result, _ = await core.say("a lighthouse --size 2K --ar 16:9")
        assert result.status is TurnStatus.ANSWERED
        request = fake_gemini.requests[-1]
        assert (request.model, request.image_size, request.aspect_ratio) == (NEW, "2K", "16:9")
        usage = await core.store.usage_since(0)
        caps = core.config.models.capabilities_for(NEW)
        assert usage.cost_usd > 0
        assert usage.cost_usd == pytest.approx(caps.estimate_cost(usage, "2K"), rel=1e-9)
    finally:
        await core.stop()


CAP = {"DAILY_SPEND_CAP_USD": "5", "ALLOWED_MODELS": "gemini-2.5-flash-image,gemini-9-image"}
REFUSED = (
    "I can't draw with gemini-9-image while a spend cap is set: its price is unknown, so its cost "
    "can't be counted; ask the bot's operator to add its price to MODELS_FILE."
)


async def test_with_a_spend_cap_a_model_without_a_price_is_refused(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models.add("gemini-9-image")
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", CAP).start()
    try:
        result, sink = await core.say("a harbour --model gemini-9-image")
        assert result.status is TurnStatus.LIMITED
        assert sink.last.text == REFUSED
        # Refused before anything is stored: the conversation keeps its model.
        assert (await core.service.effective_settings(KEY)).model == "gemini-2.5-flash-image"
        await core.service.dialogue.run(Command(CommandName.MODEL, KEY, ALICE, "gemini-9-image"))
        result, sink = await core.say("a harbour at dusk")
        assert (result.status, sink.last.text) == (TurnStatus.LIMITED, REFUSED)
        assert fake_gemini.requests == []
        usage = await core.service.dialogue.run(Command(CommandName.USAGE, KEY, ALICE))
        assert usage.text.splitlines()[-2:] == [
            "This conversation draws with gemini-9-image.",
            "The cost of images drawn with gemini-9-image is unknown (no model file gives its price), "
            "so they count as $0 here.",
        ]
    finally:
        await core.stop()


async def test_without_a_spend_cap_a_model_without_a_price_draws(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models.add("gemini-9-image")
    env = {"ALLOWED_MODELS": CAP["ALLOWED_MODELS"]}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env).start()
    try:
        result, _ = await core.say("a harbour --model gemini-9-image")
        assert result.status is TurnStatus.ANSWERED and fake_gemini.requests[-1].model == "gemini-9-image"
        # No invented price: the turn is recorded at $0, its tokens as they came.
        assert (await core.store.usage_since(0)).cost_usd == 0.0
    finally:
        await core.stop()


# ---------------------------------------------------------------------------------------------
# At start-up, as `python -m bot`


def console_env(base_url: str, **extra: str) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": "registry-test-key",
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_MODEL": "",
        **extra,
    }


async def test_process_says_when_the_model_of_the_last_start_is_gone(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    first = await asyncio.to_thread(run_bot, ["console"], tmp_path, console_env(fake_gemini.base_url))
    assert first.returncode == 0 and first.stderr == ""
    fake_gemini.models -= {"gemini-3.1-flash-image", "gemini-3.1-flash-image-preview"}
    again = await asyncio.to_thread(run_bot, ["console"], tmp_path, console_env(fake_gemini.base_url))
    assert again.returncode == 0
    line = (
        "gemini-3.1-flash-image, the model this bot drew with at its last start, is no longer served to "
        "this key; it now draws with gemini-2.5-flash-image at $0.0387 per 1K image."
    )
    assert again.stderr.splitlines() == [f"warning: {line}"]
    assert (
        again.stdout.splitlines()[0]
        == "Nano Banana console · model gemini-2.5-flash-image · type /help for commands"
    )
    log = (tmp_path / "data" / "console.log").read_text()
    assert line in log
    # The third start has nothing to say: 2.5 flash is what it used last.
    third = await asyncio.to_thread(run_bot, ["console"], tmp_path, console_env(fake_gemini.base_url))
    assert third.stderr == ""


async def test_process_warns_about_a_served_model_no_file_knows(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake_gemini.models.add("gemini-9-image")
    env = console_env(fake_gemini.base_url, GEMINI_MODEL="gemini-9-image", DAILY_SPEND_CAP_USD="3")
    result = await asyncio.to_thread(run_bot, ["console"], tmp_path, env)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "warning: gemini-9-image is in no model file: it gets the limits every known model accepts and "
        "its cost is unknown; add it with its price to MODELS_FILE. With DAILY_SPEND_CAP_USD set, its "
        "turns are refused until then."
    ]


# ---------------------------------------------------------------------------------------------
# A model only the Interactions API serves (api = "interactions")

INTERACTIONS_ONLY = NEW_ENTRY.replace(
    'released = "2026-08-20"', 'released = "2026-08-20"\napi = "interactions"'
)
FLASH_3 = "gemini-3.1-flash-image"


def test_an_interactions_only_model_is_picked_with_interactions_and_refused_without(tmp_path: Path) -> None:
    path = models_file(tmp_path, INTERACTIONS_ONLY)
    # GEMINI_MODEL unset: the newest flash model either API can call.
    assert load_config({"MODELS_FILE": path, "GEMINI_API": "interactions"}).gemini.model == NEW
    assert load_config({"MODELS_FILE": path}).gemini.model == FLASH_3
    # Named: fine with interactions; one sentence at start-up with generate_content.
    assert (
        load_config({"MODELS_FILE": path, "GEMINI_API": "Interactions", "GEMINI_MODEL": NEW}).gemini.model
        == NEW
    )
    line = model_words.interactions_only(NEW, "generate_content")
    assert problems_of({"MODELS_FILE": path, "GEMINI_MODEL": NEW}) == [line]
    assert line == (
        f"GEMINI_MODEL {NEW} is served only by the Interactions API, but GEMINI_API is generate_content; "
        "set GEMINI_API=interactions or choose another model."
    )


@pytest.mark.parametrize("engine_api", ENGINES)
async def test_an_interactions_only_model_is_chosen_and_draws_only_on_interactions(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    fake_gemini.interactions_only.add(NEW)
    env = {
        "MODELS_FILE": models_file(tmp_path, INTERACTIONS_ONLY),
        "GEMINI_MODEL": "",
        "GEMINI_API": engine_api,
    }
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env).start()
    try:
        start = await start_model(core.engine, core.store, core.config)
        assert start.config is not None and start.error is None
        chosen = start.config.gemini.model
        offered = allowed_models(start.config, chosen)
        said = await core.service.dialogue.run(Command(CommandName.MODEL, KEY, ALICE, NEW))
        if interactions(engine_api):
            assert chosen == NEW and NEW in offered
            assert (said.text, said.refused) == (f"The model is now {NEW} for this conversation.", False)
            result, _ = await core.say("a lighthouse --size 2K")
            assert result.status is TurnStatus.ANSWERED
            assert (fake_gemini.requests[-1].method, fake_gemini.requests[-1].model) == ("interactions", NEW)
        else:
            assert chosen == FLASH_3 and NEW not in offered
            assert said.refused and said.text.startswith(f"{NEW} is not a model this bot offers;")
            assert fake_gemini.requests == []
    finally:
        await core.stop()


async def test_process_refuses_an_interactions_only_model_with_generate_content(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = console_env(
        fake_gemini.base_url, MODELS_FILE=models_file(tmp_path, INTERACTIONS_ONLY), GEMINI_MODEL=NEW
    )
    result = await asyncio.to_thread(run_bot, ["console"], tmp_path, env)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {model_words.interactions_only(NEW, 'generate_content')}"]
    assert fake_gemini.model_lookups == [] and fake_gemini.requests == []
