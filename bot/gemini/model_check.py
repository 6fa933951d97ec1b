"""At start-up: make sure the configured image model is served to this key, or choose one by the
registry's rule; mark which models the key is served; say when last time's model is gone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import Config
from bot.gemini import LookupFailure, ModelLookupError
from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.engine import GeminiEngine
from bot.gemini.registry import ModelRegistry, shipped
from bot.ports import ModelDirectory
from bot.text import messages
from bot.vocabulary import ScopeLevel, SettingScope
from storage.errors import StoreError
from storage.protocol import SettingsStore

log = logging.getLogger(__name__)

MSG_KEY_REJECTED = "the Gemini API key was rejected; set a valid GEMINI_API_KEY."
# Where the model of the last start is remembered: a scope no conversation's settings include.
LAST_START = SettingScope(ScopeLevel.CHANNEL, "_bot", "", "start-up")
LAST_MODEL = "model"


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model to run with, or the one line (without ``error:``) that stops start-up.
    ``served``: the image models ``models.list`` offered, when it was asked."""

    model: str | None
    error: str | None = None
    served: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ModelStart:
    """What start-up settled: the configuration with the model and the served models marked,
    or the line that stops it; and warnings (one line each) for the operator."""

    config: Config | None
    error: str | None = None
    warnings: tuple[str, ...] = ()


def _ordered(models: Sequence[str], preferences: Sequence[str]) -> list[str]:
    """Known models first, in the registry's order, then the rest in the API's order."""
    rank = {m: i for i, m in enumerate(preferences)}
    unique = list(dict.fromkeys(models))
    return sorted(unique, key=lambda m: rank.get(m, len(rank)))


def _usable(models: Sequence[str], preferences: Sequence[str]) -> str:
    if not models:
        return "this key can use no image models."
    return f"image models it can use: {', '.join(_ordered(models, preferences))}."


def _unreachable(model: str, exc: ModelLookupError) -> ModelChoice:
    log.warning(
        "could not check the Gemini model at start-up; going on with %s",
        model,
        extra={"gemini_model": model, "reason": str(exc)},
    )
    return ModelChoice(model)


def per_image(caps: ModelCapabilities) -> str:
    price = caps.image_price()
    return f"${price:.4f} per 1K image" if price is not None else "an unknown price"


async def choose_model(
    directory: ModelDirectory,
    configured: str,
    *,
    explicit: bool,
    models: ModelRegistry | None = None,
) -> ModelChoice:
    """The model to use: ``configured`` when set explicitly and served, else the registry's
    pick (``DEFAULT_RULE``) among the models the key can use. A network failure is not fatal:
    the configured model (or the pick among every known model) is used and a warning logged."""
    models = models if models is not None else shipped()
    known = models.ids()
    pick = models.default_pick()
    fallback = configured if explicit or pick is None else pick.model
    try:
        if explicit and await directory.model_available(configured):
            return ModelChoice(configured)
        available = await directory.image_models()
    except ModelLookupError as exc:
        if exc.kind == LookupFailure.KEY_REJECTED:
            return ModelChoice(None, MSG_KEY_REJECTED)
        return _unreachable(fallback, exc)
    if explicit:
        return ModelChoice(
            None,
            f"GEMINI_MODEL {configured} is not available to this key; {_usable(available, known)}",
        )
    pick = models.default_pick(available)
    if pick is not None:
        log.info(
            "GEMINI_MODEL is not set; chose %s, %s, at %s",
            pick.model,
            models.rule_for(pick),
            per_image(pick),
            extra={"gemini_model": pick.model, "image_price_usd": pick.image_price()},
        )
        return ModelChoice(pick.model, served=tuple(available))
    advice = " Set GEMINI_MODEL to one of them." if available else ""
    return ModelChoice(
        None,
        f"GEMINI_MODEL is not set and none of {', '.join(known)} is available to this key; "
        f"{_usable(available, known)}{advice}",
    )


async def _served(directory: ModelDirectory, choice: ModelChoice) -> tuple[str, ...] | None:
    """The image models the key is served: from the choice, or one ``models.list``."""
    if choice.served is not None:
        return choice.served
    try:
        return tuple(await directory.image_models())
    except ModelLookupError:
        return None  # the choice already logged why the API could not say


async def _last_model(store: SettingsStore, model: str) -> str | None:
    """The model of the last start (None the first time), remembering this one."""
    try:
        last = (await store.scoped_settings([LAST_START])).get(LAST_START.as_text(), {}).get(LAST_MODEL)
        if last != model:
            await store.set_setting(LAST_START, LAST_MODEL, model)
    except StoreError as exc:
        log.warning("could not remember the model of this start", extra={"error": type(exc).__name__})
        return None
    return last


def _warnings(config: Config, caps: ModelCapabilities, last: str | None) -> list[str]:
    models, found = config.models, []
    if last and last != caps.model and models.served is not None and last not in models.served:
        found.append(
            f"{last}, the model this bot drew with at its last start, is no longer served to this key; "
            f"it now draws with {caps.model} at {per_image(caps)}."
        )
    if not caps.known:
        capped = (
            " With DAILY_SPEND_CAP_USD set, its turns are refused until then."
            if (config.limits.daily_spend_cap_usd is not None)
            else ""
        )
        found.append(
            f"{caps.model} is in no model file: it gets the limits every known model accepts and its "
            f"cost is unknown; add it with its price to MODELS_FILE.{capped}"
        )
    return found


async def start_model(engine: GeminiEngine, store: SettingsStore, config: Config) -> ModelStart:
    """Choose the model, mark the served ones, check the defaults fit, and compare with the
    model of the last start."""
    choice = await choose_model(
        engine, config.gemini.model, explicit=config.gemini.model_set, models=config.models
    )
    if choice.model is None:
        return ModelStart(None, choice.error)
    engine.use_model(choice.model)
    served = await _served(engine, choice)
    config = config.with_model(choice.model).with_served(None if served is None else list(served))
    problem = None if config.gemini.model_set else unsupported_default(config, engine.capabilities)
    if problem is not None:
        return ModelStart(None, problem)
    unknown = config.models.unknown_served()
    if unknown:
        log.warning(
            "models.list offers image models no model file describes; add them to MODELS_FILE to use them",
            extra={"models": list(unknown)},
        )
    warnings = _warnings(config, engine.capabilities, await _last_model(store, choice.model))
    for line in warnings:
        log.warning(line, extra={"gemini_model": choice.model})
    return ModelStart(config, warnings=tuple(warnings))


def unsupported_default(config: Config, caps: ModelCapabilities) -> str | None:
    """The line that stops start-up when a model chosen for an unset GEMINI_MODEL cannot use the
    configured DEFAULT_ASPECT_RATIO or DEFAULT_IMAGE_SIZE (they were checked against the
    registry's pick among every known model when the configuration was read)."""
    chosen = f"{caps.model}, the model chosen because GEMINI_MODEL is not set"
    aspect, size = config.images.default_aspect_ratio, config.images.default_image_size
    if aspect and aspect not in caps.aspect_ratios:
        return messages.default_not_supported("DEFAULT_ASPECT_RATIO", aspect, chosen, caps.aspect_ratios)
    if size and not caps.supports_sizes():
        return messages.default_size_fixed(f"{chosen},")  # the comma closes the aside
    if size and size not in caps.image_sizes:
        return messages.default_not_supported("DEFAULT_IMAGE_SIZE", size, chosen, caps.image_sizes)
    return None
