"""Which image model a conversation may use, and what a switch of model resets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.config import Config
from bot.gemini.capabilities import ModelCapabilities
from bot.text import messages
from bot.text.settings import EffectiveSettings, SettingError
from bot.vocabulary import SettingName, SettingScope
from storage.protocol import SettingsStore


def allowed_models(config: Config, default: str) -> tuple[str, ...]:
    """The operator's ALLOWED_MODELS (or the registry's models this key is served), the default
    first."""
    return tuple(dict.fromkeys((default, *(config.gemini.allowed_models or config.models.offered()))))


def validate_model(value: str, allowed: Sequence[str]) -> str:
    """A model id typed by a person, if this bot offers it; else SettingError naming the choices."""
    wanted = value.strip().removeprefix("models/")
    for model in allowed:
        if model.lower() == wanted.lower():
            return model
    shown = value.strip() or "(nothing)"
    raise SettingError(messages.bad_model(shown, allowed))


def unsupported_notes(before: EffectiveSettings, after: EffectiveSettings) -> list[str]:
    """One sentence per setting the new model cannot use and that went back to a default."""
    caps: ModelCapabilities | None = after.caps
    if caps is None:
        return []
    notes = []
    if before.aspect_ratio and before.aspect_ratio not in caps.aspect_ratios:
        now = after.aspect_ratio or "the model's default"
        notes.append(messages.ratio_reset(caps.model, before.aspect_ratio, now))
    if before.image_size and before.image_size not in caps.image_sizes:
        if not caps.supports_sizes():
            size = before.image_size
            notes.append(messages.size_dropped(caps.model, size))
        else:
            now = after.image_size or "the model's default"
            notes.append(messages.size_reset(caps.model, before.image_size, now))
    return notes


async def store_model(
    store: SettingsStore,
    scope: SettingScope,
    model: str,
    settings_of: Callable[[], Awaitable[EffectiveSettings]],
) -> list[str]:
    """Set the model at ``scope``, resetting there a ratio or size the new model cannot use;
    returns one sentence per reset (``settings_of`` resolves the scope's settings)."""
    before = await settings_of()
    await store.set_setting(scope, SettingName.MODEL.value, model)
    caps = (await settings_of()).caps
    if caps is not None and before.aspect_ratio not in (None, *caps.aspect_ratios):
        await store.set_setting(scope, SettingName.ASPECT_RATIO.value, None)
    if caps is not None and before.image_size not in (None, *caps.image_sizes):
        await store.set_setting(scope, SettingName.IMAGE_SIZE.value, None)
    return unsupported_notes(before, await settings_of())
