"""Settings groups of the core: Gemini, images, limits, storage, the HTTP port, console, logging."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, SecretStr, model_validator

from bot.config import parsers as p
from bot.config.database import (
    DEFAULT_DATABASE_PATH,
    DEFAULT_DATABASE_URL,
    database_password,
    database_path_from_url,
    is_postgres_url,
)
from bot.config.group import SettingsGroup, setting
from bot.gemini.capabilities import APIS, GENERATE_CONTENT, normalise_size
from bot.gemini.registry import ModelRegistry
from bot.text import messages
from bot.vocabulary import ResponseMode

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MB = 1024 * 1024
# A dashboard token anyone could guess is no lock at all.
ADMIN_TOKEN_MIN = 16


class GeminiSettings(SettingsGroup):
    """The Gemini API: key, model, endpoint, patience."""

    api_key: SecretStr | None = setting(AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY"), None)
    # Unset: the model registry's pick (bot.gemini.registry.DEFAULT_RULE) among every model it
    # knows until start-up asks which ones this key is served.
    model: str = setting("GEMINI_MODEL", "")
    # False when GEMINI_MODEL was not set: start-up then picks by the rule among those served.
    model_set: bool = True
    # The operator's model file over the shipped one (bot/config/models_file.py).
    models_file: str | None = setting("MODELS_FILE", None)
    # Models people may pick per conversation; empty = the registry's models this key is served.
    allowed_models: Annotated[tuple[str, ...], p.distinct_names()] = setting("ALLOWED_MODELS", ())
    base_url: Annotated[str | None, p.http_url()] = setting("GOOGLE_GEMINI_BASE_URL", None)
    timeout_s: Annotated[float, p.seconds()] = setting("GEMINI_TIMEOUT_SECONDS", 120.0)
    max_attempts: Annotated[int, p.whole(minimum=1)] = setting("GEMINI_MAX_ATTEMPTS", 4)
    # Which API generates: generateContent (the whole window every turn) or the Interactions
    # API (server-side history: a later turn sends only what is new).
    api: Annotated[str, p.one_of(APIS)] = setting("GEMINI_API", GENERATE_CONTENT)

    @model_validator(mode="before")
    @classmethod
    def _note_model_set(cls, data: Any) -> Any:
        return {**data, "model_set": "GEMINI_MODEL" in data} if isinstance(data, dict) else data


class ImageSettings(SettingsGroup):
    """Defaults for new conversations, and what attachments may cost in bytes and memory."""

    default_aspect_ratio: str | None = setting("DEFAULT_ASPECT_RATIO", None)
    default_image_size: Annotated[str | None, p.image_size()] = setting("DEFAULT_IMAGE_SIZE", None)
    default_response_mode: Annotated[ResponseMode, p.one_of(ResponseMode)] = setting(
        "DEFAULT_RESPONSE_MODE", ResponseMode.TEXT_AND_IMAGE
    )
    max_attachment_bytes: Annotated[int, p.whole(minimum=1, times=MB)] = setting("MAX_ATTACHMENT_MB", 20 * MB)
    max_input_side: Annotated[int, p.whole(minimum=256)] = setting("MAX_INPUT_IMAGE_SIDE", 3072)
    # Memory that downloading and decoding attachments may use at once, process-wide.
    memory_bytes: Annotated[int, p.whole(minimum=16, times=MB)] = setting("IMAGE_MEMORY_MB", 256 * MB)


def defaults_fit_model(env: Mapping[str, str], models: ModelRegistry, default: str) -> list[str]:
    """The image defaults must suit GEMINI_MODEL (or ``default``, the registry's pick): one line
    each that does not."""
    model = env.get("GEMINI_MODEL", default)
    caps, found = models.capabilities_for(model), []
    aspect, size = env.get("DEFAULT_ASPECT_RATIO"), env.get("DEFAULT_IMAGE_SIZE")
    if aspect and aspect not in caps.aspect_ratios:
        found.append(
            messages.default_not_supported("DEFAULT_ASPECT_RATIO", aspect, model, caps.aspect_ratios)
        )
    if size and not caps.supports_sizes():
        found.append(messages.default_size_fixed(model))
    elif size and normalise_size(size) not in caps.image_sizes:
        found.append(
            messages.default_not_supported(
                "DEFAULT_IMAGE_SIZE", normalise_size(size), model, caps.image_sizes
            )
        )
    return found


class LimitSettings(SettingsGroup):
    """Cost control: images per person and place, spend, load, prompt and history size."""

    # 0 / None = no limit.
    user_images_per_hour: Annotated[int, p.whole()] = setting("USER_IMAGES_PER_HOUR", 60)
    user_images_per_day: Annotated[int, p.whole()] = setting("USER_IMAGES_PER_DAY", 200)
    channel_images_per_day: Annotated[int, p.whole()] = setting("CHANNEL_IMAGES_PER_DAY", 0)
    workspace_images_per_day: Annotated[int, p.whole()] = setting("WORKSPACE_IMAGES_PER_DAY", 0)
    daily_spend_cap_usd: Annotated[float | None, p.dollars()] = setting("DAILY_SPEND_CAP_USD", None)
    max_concurrent_generations: Annotated[int, p.whole(minimum=1)] = setting("MAX_CONCURRENT_GENERATIONS", 32)
    max_queued_turns: Annotated[int, p.whole()] = setting("MAX_QUEUED_TURNS", 200)
    max_prompt_chars: Annotated[int, p.whole(minimum=1)] = setting("MAX_PROMPT_CHARS", 4000)
    # None = re-send the whole history every turn (unbounded cost; for comparison only).
    context_max_images: Annotated[int | None, p.whole_or_unlimited()] = setting("CONTEXT_MAX_IMAGES", 3)


class StorageSettings(SettingsGroup):
    """The database, how long it keeps conversations, and how processes sharing it coordinate."""

    url: Annotated[str, p.database_url()] = setting("DATABASE_URL", DEFAULT_DATABASE_URL, repr=False)
    retention_days: Annotated[int, p.whole()] = setting("RETENTION_DAYS", 0)
    # How long after its posting time a turn waits for earlier messages still in transit.
    turn_order_settle_s: Annotated[float, p.whole(per=1000)] = setting("TURN_ORDER_SETTLE_MS", 0.25)
    # Several processes: one that stops renewing its lease this long is taken for dead.
    process_lease_s: Annotated[float, p.whole(minimum=1)] = setting("PROCESS_LEASE_S", 30.0)
    # How long a message waits for an unreachable database before one sentence says so.
    outage_s: Annotated[float, p.whole(minimum=1)] = setting("DATABASE_OUTAGE_S", 120.0)
    # Connections each process may hold (PostgreSQL), besides the one for arriving turns.
    pool_size: Annotated[int, p.whole(minimum=2, maximum=1000)] = setting("DATABASE_POOL_SIZE", 10)
    # Stored images each process keeps in memory (the ones it wrote or read lately), so a later
    # turn does not read its history's images back from the database; 0 keeps none.
    image_cache_bytes: Annotated[int, p.whole(times=MB)] = setting("IMAGE_CACHE_MB", 24 * MB)

    @property
    def is_postgres(self) -> bool:
        return is_postgres_url(self.url)

    @property
    def path(self) -> Path:
        """The SQLite file; for PostgreSQL the default one's folder still holds console.log."""
        return DEFAULT_DATABASE_PATH if self.is_postgres else database_path_from_url(self.url)

    @property
    def password(self) -> str | None:
        return database_password(self.url)


class HttpSettings(SettingsGroup):
    """The HTTP listener (Slack HTTP mode, health, the region editor) and where people reach it."""

    port: Annotated[int, p.whole(minimum=0, maximum=65535)] = setting("PORT", 3000)
    # Unset: no region editor. Links are {public_url}/edit/<token>.
    public_url: Annotated[str | None, p.public_url()] = setting("PUBLIC_URL", None)
    # Unset: no dashboard (GET /admin is 404). Operators sign in with it.
    admin_token: Annotated[SecretStr | None, p.secret_of_length(ADMIN_TOKEN_MIN)] = setting(
        "ADMIN_TOKEN", None
    )
    # The dashboard's days and times.
    admin_timezone: Annotated[str, p.time_zone()] = setting("ADMIN_TIMEZONE", "UTC")

    def editor_link(self, token: str) -> str | None:
        """The editor's address for a link token, or None when PUBLIC_URL is unset."""
        return f"{self.public_url}/edit/{token}" if self.public_url else None


class ConsoleSettings(SettingsGroup):
    output_dir: Path = setting("CONSOLE_OUTPUT_DIR", Path("out"))


class LoggingSettings(SettingsGroup):
    """What operators read: the log, and traces (with the otel extra) sent to an OTLP/HTTP endpoint."""

    level: Annotated[str, p.one_of(LOG_LEVELS, upper=True)] = setting("LOG_LEVEL", "INFO")
    # Unset: no traces, and OpenTelemetry is never imported. The SDK's own variable name.
    traces_endpoint: Annotated[str | None, p.http_url()] = setting("OTEL_EXPORTER_OTLP_ENDPOINT", None)
