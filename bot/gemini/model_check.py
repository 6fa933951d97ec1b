"""At start-up: make sure the configured image model is served to this key, or choose one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import Config
from bot.gemini import LookupFailure, ModelLookupError
from bot.gemini.capabilities import PREFERRED_MODELS, ModelCapabilities
from bot.ports import ModelDirectory
from bot.text import messages

log = logging.getLogger(__name__)

MSG_KEY_REJECTED = "the Gemini API key was rejected; set a valid GEMINI_API_KEY."


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model to run with, or the one line (without ``error:``) that stops start-up."""

    model: str | None
    error: str | None = None


def _ordered(models: Sequence[str], preferences: Sequence[str]) -> list[str]:
    """Preferred models first, in preference order, then the rest in the API's order."""
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


async def choose_model(
    directory: ModelDirectory,
    configured: str,
    *,
    explicit: bool,
    preferences: Sequence[str] = PREFERRED_MODELS,
) -> ModelChoice:
    """The model to use: ``configured`` when set explicitly and served, else the first of
    ``preferences`` the key can use. A network failure is not fatal: the configured model (or
    the first preference) is used and a warning logged."""
    fallback = configured if explicit else preferences[0]
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
            f"GEMINI_MODEL {configured} is not available to this key; {_usable(available, preferences)}",
        )
    for model in preferences:
        if model in available:
            log.info(
                "GEMINI_MODEL is not set; chose %s, the first preferred model this key can use",
                model,
                extra={"gemini_model": model},
            )
            return ModelChoice(model)
    advice = " Set GEMINI_MODEL to one of them." if available else ""
    return ModelChoice(
        None,
        f"GEMINI_MODEL is not set and none of {', '.join(preferences)} is available to this key; "
        f"{_usable(available, preferences)}{advice}",
    )


def unsupported_default(config: Config, caps: ModelCapabilities) -> str | None:
    """The line that stops start-up when a model chosen for an unset GEMINI_MODEL cannot use the
    configured DEFAULT_ASPECT_RATIO or DEFAULT_IMAGE_SIZE (they were checked against the first
    preferred model when the configuration was read)."""
    chosen = f"{caps.model}, the model chosen because GEMINI_MODEL is not set"
    aspect, size = config.images.default_aspect_ratio, config.images.default_image_size
    if aspect and aspect not in caps.aspect_ratios:
        return messages.default_not_supported("DEFAULT_ASPECT_RATIO", aspect, chosen, caps.aspect_ratios)
    if size and not caps.supports_sizes():
        return messages.default_size_fixed(f"{chosen},")  # the comma closes the aside
    if size and size not in caps.image_sizes:
        return messages.default_not_supported("DEFAULT_IMAGE_SIZE", size, chosen, caps.image_sizes)
    return None
