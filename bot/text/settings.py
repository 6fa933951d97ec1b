"""Conversation settings: validating user-typed values and resolving the effective ones."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.config import Config
from bot.gemini.capabilities import THINKING_LEVELS, ModelCapabilities, normalise_level, normalise_size
from bot.text import messages, model_words
from bot.vocabulary import ResponseMode, SettingName

_RATIO_SEPARATORS = re.compile(r"\s*[:x×/]\s*", re.IGNORECASE)
# How much of a value a person typed is echoed back in an error: enough to recognise it, never
# enough to push a reply past a platform's message limit.
EXCERPT_CHARS = 30


def excerpt(value: str, limit: int = EXCERPT_CHARS) -> str:
    """``value`` stripped, cut to ``limit`` characters with an ellipsis, or "(nothing)"."""
    shown = value.strip()
    if not shown:
        return "(nothing)"
    return shown if len(shown) <= limit else shown[:limit] + "…"


class SettingError(ValueError):
    """A user-typed setting value that cannot be used; ``user_message`` says why and what works."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True, slots=True)
class EffectiveSettings:
    """The settings one turn is generated with."""

    aspect_ratio: str | None
    image_size: str | None
    response_mode: ResponseMode
    # The conversation's model and what it accepts (None: the engine's, for callers that
    # build settings by hand).
    caps: ModelCapabilities | None = None
    # /think: a level the model lists, or None (the model's own default).
    thinking_level: str | None = None

    @property
    def model(self) -> str | None:
        return self.caps.model if self.caps is not None else None


def validate_aspect_ratio(value: str, caps: ModelCapabilities) -> str:
    """``16:9``, ``16x9`` or ``16/9`` -> ``16:9`` if the model supports it, else SettingError."""
    cleaned = _RATIO_SEPARATORS.sub(":", value.strip())
    if cleaned in caps.aspect_ratios:
        return cleaned
    raise SettingError(messages.bad_aspect_ratio(excerpt(value), caps.model, caps.aspect_ratios))


def validate_image_size(value: str, caps: ModelCapabilities) -> str:
    """``2k`` -> ``2K`` if the model supports sizes and this one, else SettingError."""
    if not caps.supports_sizes():
        raise SettingError(messages.single_size(caps.model))
    cleaned = normalise_size(value)
    if cleaned in caps.image_sizes:
        return cleaned
    raise SettingError(messages.bad_image_size(excerpt(value), caps.model, caps.image_sizes))


def validate_thinking_level(value: str, caps: ModelCapabilities) -> str:
    """``High`` -> ``high`` if the model lists that thinking level, else SettingError."""
    if not caps.supports_thinking():
        raise SettingError(model_words.no_thinking(caps.model))
    cleaned = normalise_level(value)
    if cleaned in caps.thinking_levels:
        return cleaned
    if cleaned in THINKING_LEVELS:
        raise SettingError(model_words.level_not_offered(cleaned, caps.model, caps.thinking_levels))
    raise SettingError(model_words.bad_thinking_level(excerpt(value), caps.thinking_levels))


def validate_response_mode(value: str) -> ResponseMode:
    """``image`` / ``image_only`` or ``text`` / ``text_image`` -> ResponseMode."""
    cleaned = value.strip().lower().replace("-", "_").replace("+", "_")
    if cleaned in ("image", "image_only", "images", "images_only"):
        return ResponseMode.IMAGE_ONLY
    if cleaned in ("text_image", "text_and_image", "text", "both", "image_text"):
        return ResponseMode.TEXT_AND_IMAGE
    raise SettingError(messages.bad_response_mode(excerpt(value)))


def resolve(
    stored: Mapping[str, str],
    config: Config,
    caps: ModelCapabilities,
    allowed: Sequence[str] = (),
) -> EffectiveSettings:
    """Stored settings (already merged thread > channel > global) over the configured defaults.

    ``caps`` is the default model's; a stored model in ``allowed`` replaces it. A stored value
    the model does not support (the operator or a person switched models) is ignored rather
    than sent, so a model change never breaks existing threads.
    """
    model = stored.get(SettingName.MODEL)
    if model and model != caps.model and model in allowed:
        caps = config.models.capabilities_for(model)
    defaults = config.images
    aspect = stored.get(SettingName.ASPECT_RATIO) or defaults.default_aspect_ratio
    if aspect not in caps.aspect_ratios:
        aspect = (
            defaults.default_aspect_ratio if defaults.default_aspect_ratio in caps.aspect_ratios else None
        )
    size = stored.get(SettingName.IMAGE_SIZE) or defaults.default_image_size
    if not caps.supports_sizes() or size not in caps.image_sizes:
        size = defaults.default_image_size if defaults.default_image_size in caps.image_sizes else None
    mode_raw = stored.get(SettingName.RESPONSE_MODE)
    try:
        mode = ResponseMode(mode_raw) if mode_raw else config.images.default_response_mode
    except ValueError:
        mode = config.images.default_response_mode
    thinking = stored.get(SettingName.THINKING)
    return EffectiveSettings(aspect, size, mode, caps, thinking if thinking in caps.thinking_levels else None)
