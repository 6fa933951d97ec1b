"""The whole configuration, grouped by concern: read once at start-up, validated, passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError

from bot.config.group import SettingsGroup
from bot.config.groups import (
    ConsoleSettings,
    GeminiSettings,
    HttpSettings,
    ImageSettings,
    LimitSettings,
    LoggingSettings,
    StorageSettings,
    defaults_fit_model,
)
from bot.config.models_file import read_registry
from bot.config.platforms import AccessSettings, DiscordSettings, SlackSettings
from bot.config.problems import ConfigError, lines_of
from bot.gemini.capabilities import APIS, GENERATE_CONTENT, INTERACTIONS
from bot.gemini.registry import ModelRegistry
from bot.text import model_words


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the bot reads from its environment, one group per concern. Secrets are
    ``SecretStr`` (masked in ``repr``); ``reveal`` them only where they are sent."""

    gemini: GeminiSettings
    storage: StorageSettings
    images: ImageSettings
    limits: LimitSettings
    access: AccessSettings
    discord: DiscordSettings
    slack: SlackSettings
    http: HttpSettings
    console: ConsoleSettings
    logging: LoggingSettings
    # The image models known (shipped file and MODELS_FILE), and after start-up which are served.
    models: ModelRegistry

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or messages."""
        values = (
            self.storage.password,
            reveal(self.gemini.api_key),
            reveal(self.discord.token),
            reveal(self.slack.bot_token),
            reveal(self.slack.app_token),
            reveal(self.slack.signing_secret),
            reveal(self.http.admin_token),
        )
        return tuple(v for v in values if v)

    def with_model(self, model: str) -> Config:
        """This configuration with the model start-up chose (GEMINI_MODEL stays as set or not)."""
        return replace(self, gemini=self.gemini.model_copy(update={"model": model}))

    def with_served(self, models: list[str] | None) -> Config:
        """This configuration with the image models ``models.list`` offered (None: unknown)."""
        return replace(self, models=self.models.with_served(models))


# Each attribute of Config and its group's class, in the order problems are reported.
GROUPS: tuple[tuple[str, type[SettingsGroup]], ...] = (
    ("gemini", GeminiSettings),
    ("storage", StorageSettings),
    ("images", ImageSettings),
    ("limits", LimitSettings),
    ("access", AccessSettings),
    ("discord", DiscordSettings),
    ("slack", SlackSettings),
    ("http", HttpSettings),
    ("console", ConsoleSettings),
    ("logging", LoggingSettings),
)


def reveal(secret: SecretStr | None) -> str:
    """The secret's value for the one place it is sent to; empty when unset."""
    return secret.get_secret_value() if secret is not None else ""


def read_environment(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> dict[str, str]:
    """The process environment over the values of ``.env`` (the environment wins)."""
    env_path = env_file if env_file is not None else Path(".env")
    merged: dict[str, str] = {}
    if env_path.is_file():
        merged.update({k: v for k, v in dotenv_values(env_path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def load_config(env: Mapping[str, str]) -> Config:
    """Validate ``env`` into a Config, or raise ConfigError listing every problem, one per line."""
    # Surrounding blanks are typing accidents, and a blank value means unset.
    values = {name: value.strip() for name, value in env.items() if value.strip()}
    groups: dict[str, SettingsGroup] = {}
    problems: list[str] = []
    models, found = read_registry(values.get("MODELS_FILE"))
    if models is not None:
        models = models.with_api(api_of(values))
        found += models_for_api(values, models)
    pick = models.default_pick() if models is not None else None
    for name, group in GROUPS:
        try:
            groups[name] = group.from_env(values)
        except ValidationError as exc:
            problems.extend(lines_of(exc))
        problems.extend(group.problems_across(values))
        if name == "gemini":
            problems.extend(found)
        elif name == "images" and models is not None and pick is not None:
            problems.extend(defaults_fit_model(values, models, pick.model))
    if problems:
        raise ConfigError(problems)
    assert models is not None and pick is not None  # the shipped file prices a flash model
    gemini = groups["gemini"]
    assert isinstance(gemini, GeminiSettings)
    if not gemini.model_set:
        groups["gemini"] = gemini.model_copy(update={"model": pick.model})
    return Config(**groups, models=models)  # type: ignore[arg-type]


def api_of(values: Mapping[str, str]) -> str:
    """GEMINI_API as set (generate_content when unset or not one of them: that is its own line)."""
    api = values.get("GEMINI_API", GENERATE_CONTENT).lower()
    return api if api in APIS else GENERATE_CONTENT


def models_for_api(values: Mapping[str, str], models: ModelRegistry) -> list[str]:
    """The line for a GEMINI_MODEL only the Interactions API serves, with generateContent."""
    model, api = values.get("GEMINI_MODEL"), models.api
    if model and api != INTERACTIONS and models.interactions_only(model):
        return [model_words.interactions_only(model, api)]
    return []


def require_generation(config: Config) -> None:
    """Raise ConfigError when something that generates images is about to start without a key."""
    if config.gemini.api_key is None:
        raise ConfigError(
            [
                "GEMINI_API_KEY is not set; get a key at https://aistudio.google.com/apikey "
                "and put GEMINI_API_KEY=... in the environment or in .env."
            ]
        )
