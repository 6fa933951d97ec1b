"""The settings a conversation's turns get, resolved in one place for every part that asks."""

from __future__ import annotations

from collections.abc import Mapping

from bot.config import Config
from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.model_choice import allowed_models
from bot.gemini.registry import ModelRegistry
from bot.ports import ServedModel
from bot.text.settings import EffectiveSettings, resolve
from bot.vocabulary import ConversationKey
from storage.protocol import SettingsStore


class ConversationSettings:
    """Stored settings (thread > channel > global) over the configured defaults, for the model
    the engine serves; a conversation may pick another of ``allowed_models``."""

    def __init__(self, store: SettingsStore, config: Config, served: ServedModel) -> None:
        self._store = store
        self._config = config
        self._served = served

    @property
    def capabilities(self) -> ModelCapabilities:
        """The default model's."""
        return self._served.capabilities

    @property
    def models(self) -> ModelRegistry:
        return self._config.models

    def capabilities_for(self, model: str) -> ModelCapabilities:
        """What ``model`` accepts and costs, from the model registry (MODELS_FILE included)."""
        return self._config.models.capabilities_for(model)

    @property
    def spend_capped(self) -> bool:
        """Whether DAILY_SPEND_CAP_USD is set (then a model without a price is refused)."""
        return self._config.limits.daily_spend_cap_usd is not None

    @property
    def default_model(self) -> str:
        return self._served.model

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """Models people may pick per conversation, the default first."""
        return allowed_models(self._config, self._served.model)

    async def effective(self, key: ConversationKey) -> EffectiveSettings:
        return self.resolved(await self._store.settings(key))

    def resolved(self, stored: Mapping[str, str]) -> EffectiveSettings:
        """Settings the store already returned (effective, as ``settings(key)``), resolved."""
        return resolve(stored, self._config, self.capabilities, self.allowed_models)
