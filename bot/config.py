"""Configuration: read once at start-up from the environment and `.env`, validated, passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from bot import messages
from bot.capabilities import PREFERRED_MODELS, capabilities_for, normalise_size
from bot.shards import parse_shards
from bot.vocabulary import ResponseMode

# Used when GEMINI_MODEL is unset and the start-up check cannot reach the API; when it can, the
# first of PREFERRED_MODELS the key can use is chosen instead.
DEFAULT_MODEL = PREFERRED_MODELS[0]
DEFAULT_DATABASE_URL = "sqlite:///data/bot.sqlite3"
DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class ConfigError(Exception):
    """Invalid configuration; ``problems`` holds one plain line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the bot reads from its environment. Secrets are excluded from ``repr``."""

    gemini_api_key: str | None = field(default=None, repr=False)
    gemini_model: str = DEFAULT_MODEL
    # False when GEMINI_MODEL was not set: start-up then picks the first preferred model served.
    gemini_model_set: bool = True
    # Models people may pick per conversation (/model, --model); empty = the capability table's.
    allowed_models: tuple[str, ...] = ()
    gemini_base_url: str | None = None
    gemini_timeout_s: float = 120.0
    gemini_max_attempts: int = 4
    database_url: str = DEFAULT_DATABASE_URL
    database_path: Path = Path("data/bot.sqlite3")
    discord_token: str | None = field(default=None, repr=False)
    discord_api_url: str = DEFAULT_DISCORD_API_URL
    # Guilds where slash commands are registered per guild (instant); empty = global commands.
    discord_guild_ids: tuple[int, ...] = ()
    # False = run without the privileged message-content intent; then a mention is needed in
    # threads too.
    discord_message_content: bool = True
    # None = every shard, the count from GET /gateway/bot; ids need a count.
    discord_shard_count: int | None = None
    discord_shard_ids: tuple[int, ...] | None = None
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    port: int = 3000
    default_aspect_ratio: str | None = None
    default_image_size: str | None = None
    default_response_mode: ResponseMode = ResponseMode.TEXT_AND_IMAGE
    max_attachment_bytes: int = 20 * 1024 * 1024
    max_prompt_chars: int = 4000
    max_input_side: int = 3072
    # Memory that downloading and decoding attachments may use at once, process-wide.
    image_memory_bytes: int = 256 * 1024 * 1024
    # None = re-send the whole history every turn (unbounded cost; for comparison only).
    context_max_images: int | None = 3
    console_output_dir: Path = Path("out")
    log_level: str = "INFO"
    # Cost control (0 / None = no limit).
    user_images_per_hour: int = 60
    user_images_per_day: int = 200
    channel_images_per_day: int = 0
    workspace_images_per_day: int = 0
    daily_spend_cap_usd: float | None = None
    max_concurrent_generations: int = 32
    max_queued_turns: int = 200
    retention_days: int = 0
    # How long after its posting time a turn waits for earlier messages still in transit.
    turn_order_settle_s: float = 0.25
    # Several processes: one that stops renewing its lease this long is taken for dead.
    process_lease_s: float = 30.0
    # Access control: empty = everyone. Users are platform ids; admins are "platform:id".
    discord_allowed_guilds: frozenset[str] = frozenset()
    discord_allowed_channels: frozenset[str] = frozenset()
    discord_allowed_users: frozenset[str] = frozenset()
    slack_allowed_teams: frozenset[str] = frozenset()
    slack_allowed_channels: frozenset[str] = frozenset()
    slack_allowed_users: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    refuse_silently: bool = False

    @property
    def discord_enabled(self) -> bool:
        return bool(self.discord_token)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token)

    @property
    def database_is_postgres(self) -> bool:
        return is_postgres_url(self.database_url)

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs or messages."""
        values = (
            database_password(self.database_url),
            self.gemini_api_key,
            self.discord_token,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
        )
        return tuple(v for v in values if v)


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


POSTGRES_SCHEMES = ("postgresql", "postgres")
_POSTGRES_FORM = "use postgresql://user:password@host:5432/database"
_SQLITE_FORM = f"use {DEFAULT_DATABASE_URL}"


def _not_positive(name: str, raw: str) -> str:
    return f"{name} must be greater than 0, not {raw}."


def is_postgres_url(url: str) -> bool:
    return url.partition("://")[0] in POSTGRES_SCHEMES


def database_password(url: str) -> str | None:
    """The password in a PostgreSQL URL (a secret: never logged), or None."""
    if not is_postgres_url(url):
        return None
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def redacted_database_url(url: str) -> str:
    """The URL with its password replaced, fit for messages and logs."""
    password = database_password(url)
    return url.replace(f":{password}@", ":***@", 1) if password else url


def check_postgres_url(url: str) -> None:
    """Raise ValueError (one line, without the password) if a PostgreSQL URL is malformed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"DATABASE_URL is a malformed PostgreSQL URL; {_POSTGRES_FORM}.") from None
    if not (parts.hostname or "host=" in parts.query):
        raise ValueError(f"DATABASE_URL names no PostgreSQL host; {_POSTGRES_FORM}.")


def database_path_from_url(url: str) -> Path:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs/path.db`` -> ``/abs/path.db``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL {url!r} is not a URL; {_SQLITE_FORM}.")
    if scheme != "sqlite":
        # A driver suffix (postgresql+asyncpg://) is PostgreSQL spelled for another library.
        advice = _POSTGRES_FORM if scheme.startswith(("postgresql+", "postgres+")) else _SQLITE_FORM
        raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported; {advice}.")
    path = rest[1:]
    malformed = not rest.startswith("/") or rest == "/" or path.endswith("/") or ":memory:" in path
    if malformed or urlsplit(url).query:
        raise ValueError(
            f"DATABASE_URL {url!r} is malformed; use sqlite:///relative.db or sqlite:////abs/path.db."
        )
    return Path(path)


def _int(env: Mapping[str, str], name: str, default: int, problems: list[str], minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, not {raw!r}.")
        return default
    if value < minimum:
        problems.append(f"{name} must be at least {minimum}, not {value}.")
        return default
    return value


def _float(env: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number of seconds, not {raw!r}.")
        return default
    if value <= 0:
        problems.append(_not_positive(name, raw))
        return default
    return value


def _url(env: Mapping[str, str], name: str, default: str | None, problems: list[str]) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        problems.append(f"{name} must be an http(s) URL, not {raw!r}.")
        return default
    return raw


def _names(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _admins(env: Mapping[str, str], problems: list[str]) -> frozenset[str]:
    admins = _names(env, "ADMIN_USERS")
    bad = sorted(
        a
        for a in admins
        if a.partition(":")[0] not in ("discord", "slack", "console") or not a.partition(":")[2]
    )
    if bad:
        problems.append(
            f"ADMIN_USERS entries must look like discord:123456 or slack:U012ABC, not {', '.join(bad)}."
        )
        return frozenset()
    return admins


def _money(env: Mapping[str, str], name: str, problems: list[str]) -> float | None:
    raw = env.get(name, "").strip().lstrip("$")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be an amount in US dollars such as 5 or 12.50, not {raw!r}.")
        return None
    if value <= 0:
        problems.append(_not_positive(name, raw))
        return None
    return value


def _bool(env: Mapping[str, str], name: str, default: bool, problems: list[str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    problems.append(f"{name} must be true or false, not {raw!r}.")
    return default


def _id_list(env: Mapping[str, str], name: str, problems: list[str]) -> tuple[int, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not all(part.isdigit() for part in ids):
        problems.append(f"{name} must be a numeric id or a comma-separated list of them, not {raw!r}.")
        return ()
    return tuple(int(part) for part in ids)


def _model_list(value: str | None) -> tuple[str, ...]:
    """``ALLOWED_MODELS``: comma-separated ids, each once, in the operator's order."""
    return tuple(dict.fromkeys(m.strip() for m in (value or "").split(",") if m.strip()))


def _context_budget(env: Mapping[str, str], problems: list[str]) -> int | None:
    raw = env.get("CONTEXT_MAX_IMAGES", "").strip().lower()
    if raw in ("all", "unlimited", "none"):
        return None
    return _int(env, "CONTEXT_MAX_IMAGES", 3, problems, minimum=0)


def load_config(env: Mapping[str, str]) -> Config:
    """Validate ``env`` into a Config, or raise ConfigError listing every problem, one per line."""
    problems: list[str] = []

    def text(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    model_set = text("GEMINI_MODEL") is not None
    model = text("GEMINI_MODEL") or DEFAULT_MODEL
    caps = capabilities_for(model)

    database_url = text("DATABASE_URL") or DEFAULT_DATABASE_URL
    database_path = Path("data/bot.sqlite3")
    try:
        if is_postgres_url(database_url):
            check_postgres_url(database_url)
        else:
            database_path = database_path_from_url(database_url)
    except ValueError as exc:
        problems.append(str(exc))

    aspect = text("DEFAULT_ASPECT_RATIO")
    if aspect and aspect not in caps.aspect_ratios:
        problems.append(
            messages.default_not_supported("DEFAULT_ASPECT_RATIO", aspect, model, caps.aspect_ratios)
        )
        aspect = None

    size = text("DEFAULT_IMAGE_SIZE")
    if size:
        size = normalise_size(size)
        if not caps.supports_sizes():
            problems.append(messages.default_size_fixed(model))
            size = None
        elif size not in caps.image_sizes:
            problems.append(
                messages.default_not_supported("DEFAULT_IMAGE_SIZE", size, model, caps.image_sizes)
            )
            size = None

    mode_raw = (text("DEFAULT_RESPONSE_MODE") or ResponseMode.TEXT_AND_IMAGE.value).lower()
    try:
        mode = ResponseMode(mode_raw)
    except ValueError:
        problems.append(
            f"DEFAULT_RESPONSE_MODE must be {ResponseMode.TEXT_AND_IMAGE.value} or "
            f"{ResponseMode.IMAGE_ONLY.value}, not {mode_raw!r}."
        )
        mode = ResponseMode.TEXT_AND_IMAGE

    port = _int(env, "PORT", 3000, problems, minimum=0)
    if port > 65535:
        problems.append(f"PORT must be between 0 and 65535, not {port}.")
        port = 3000

    log_level = (text("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}.")
        log_level = "INFO"

    shard_count, shard_ids = parse_shards(env, problems)
    config = Config(
        gemini_api_key=text("GEMINI_API_KEY") or text("GOOGLE_API_KEY"),
        gemini_model=model,
        gemini_model_set=model_set,
        allowed_models=_model_list(text("ALLOWED_MODELS")),
        gemini_base_url=_url(env, "GOOGLE_GEMINI_BASE_URL", None, problems),
        gemini_timeout_s=_float(env, "GEMINI_TIMEOUT_SECONDS", 120.0, problems),
        gemini_max_attempts=_int(env, "GEMINI_MAX_ATTEMPTS", 4, problems, minimum=1),
        database_url=database_url,
        database_path=database_path,
        discord_token=text("DISCORD_TOKEN"),
        discord_api_url=_url(env, "DISCORD_API_URL", DEFAULT_DISCORD_API_URL, problems)
        or DEFAULT_DISCORD_API_URL,
        discord_guild_ids=_id_list(env, "DISCORD_GUILD_ID", problems),
        discord_message_content=_bool(env, "DISCORD_MESSAGE_CONTENT", True, problems),
        discord_shard_count=shard_count,
        discord_shard_ids=shard_ids,
        slack_bot_token=text("SLACK_BOT_TOKEN"),
        slack_app_token=text("SLACK_APP_TOKEN"),
        slack_signing_secret=text("SLACK_SIGNING_SECRET"),
        slack_api_url=_url(env, "SLACK_API_URL", DEFAULT_SLACK_API_URL, problems) or DEFAULT_SLACK_API_URL,
        port=port,
        default_aspect_ratio=aspect,
        default_image_size=size,
        default_response_mode=mode,
        max_attachment_bytes=_int(env, "MAX_ATTACHMENT_MB", 20, problems, minimum=1) * 1024 * 1024,
        max_input_side=_int(env, "MAX_INPUT_IMAGE_SIDE", 3072, problems, minimum=256),
        image_memory_bytes=_int(env, "IMAGE_MEMORY_MB", 256, problems, minimum=16) * 1024 * 1024,
        max_prompt_chars=_int(env, "MAX_PROMPT_CHARS", 4000, problems, minimum=1),
        context_max_images=_context_budget(env, problems),
        console_output_dir=Path(text("CONSOLE_OUTPUT_DIR") or "out"),
        log_level=log_level,
        user_images_per_hour=_int(env, "USER_IMAGES_PER_HOUR", 60, problems),
        user_images_per_day=_int(env, "USER_IMAGES_PER_DAY", 200, problems),
        channel_images_per_day=_int(env, "CHANNEL_IMAGES_PER_DAY", 0, problems),
        workspace_images_per_day=_int(env, "WORKSPACE_IMAGES_PER_DAY", 0, problems),
        daily_spend_cap_usd=_money(env, "DAILY_SPEND_CAP_USD", problems),
        max_concurrent_generations=_int(env, "MAX_CONCURRENT_GENERATIONS", 32, problems, minimum=1),
        max_queued_turns=_int(env, "MAX_QUEUED_TURNS", 200, problems),
        retention_days=_int(env, "RETENTION_DAYS", 0, problems),
        turn_order_settle_s=_int(env, "TURN_ORDER_SETTLE_MS", 250, problems) / 1000,
        process_lease_s=float(_int(env, "PROCESS_LEASE_S", 30, problems, minimum=1)),
        discord_allowed_guilds=_names(env, "DISCORD_ALLOWED_GUILDS"),
        discord_allowed_channels=_names(env, "DISCORD_ALLOWED_CHANNELS"),
        discord_allowed_users=_names(env, "DISCORD_ALLOWED_USERS"),
        slack_allowed_teams=_names(env, "SLACK_ALLOWED_TEAMS"),
        slack_allowed_channels=_names(env, "SLACK_ALLOWED_CHANNELS"),
        slack_allowed_users=_names(env, "SLACK_ALLOWED_USERS"),
        admin_users=_admins(env, problems),
        refuse_silently=_bool(env, "REFUSE_SILENTLY", False, problems),
    )
    if config.slack_enabled and not (config.slack_app_token or config.slack_signing_secret):
        problems.append(
            "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
            "SLACK_SIGNING_SECRET (HTTP mode) is; set one of them."
        )
    if problems:
        raise ConfigError(problems)
    return config


def require_generation(config: Config) -> None:
    """Raise ConfigError when something that generates images is about to start without a key."""
    if not config.gemini_api_key:
        raise ConfigError(
            [
                "GEMINI_API_KEY is not set; get a key at https://aistudio.google.com/apikey "
                "and put GEMINI_API_KEY=... in the environment or in .env."
            ]
        )
