"""Configuration: read once at start-up from the environment and `.env`, validated, passed down."""

from bot.config.database import (
    DEFAULT_DATABASE_URL,
    POSTGRES_SCHEMES,
    check_postgres_url,
    database_password,
    database_path_from_url,
    is_postgres_url,
    redacted_database_url,
)
from bot.config.groups import (
    ConsoleSettings,
    GeminiSettings,
    HttpSettings,
    ImageSettings,
    LimitSettings,
    LoggingSettings,
    StorageSettings,
)
from bot.config.loader import Config, load_config, read_environment, require_generation, reveal
from bot.config.platforms import (
    DEFAULT_DISCORD_API_URL,
    DEFAULT_SLACK_API_URL,
    AccessSettings,
    DiscordSettings,
    SlackSettings,
)
from bot.config.problems import ConfigError

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_DISCORD_API_URL",
    "DEFAULT_SLACK_API_URL",
    "POSTGRES_SCHEMES",
    "AccessSettings",
    "Config",
    "ConfigError",
    "ConsoleSettings",
    "DiscordSettings",
    "GeminiSettings",
    "HttpSettings",
    "ImageSettings",
    "LimitSettings",
    "LoggingSettings",
    "SlackSettings",
    "StorageSettings",
    "check_postgres_url",
    "database_password",
    "database_path_from_url",
    "is_postgres_url",
    "load_config",
    "read_environment",
    "redacted_database_url",
    "require_generation",
    "reveal",
]
