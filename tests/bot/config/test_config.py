"""Configuration contract: names, defaults, and one clear line per invalid value."""

from pathlib import Path

import pytest

from bot.config import (
    ConfigError,
    load_config,
    read_environment,
    redacted_database_url,
    require_generation,
    reveal,
)
from bot.vocabulary import ResponseMode


def test_defaults_follow_the_contract() -> None:
    config = load_config({})
    # Issue 11 overrides the contract's gemini-2.5-flash-image: unset means "the first preferred
    # model the key can use", chosen at start-up; until then the first of the list.
    assert (config.gemini.model, config.gemini.model_set) == ("gemini-3.1-flash-image", False)
    assert load_config({"GEMINI_MODEL": "gemini-2.5-flash-image"}).gemini.model_set
    assert config.storage.path == Path("data/bot.sqlite3")
    assert config.discord.api_url == "https://discord.com/api/v10"
    assert config.slack.api_url == "https://slack.com/api/"
    assert config.http.port == 3000
    assert config.gemini.base_url is None
    assert config.limits.context_max_images == 3
    assert config.images.max_attachment_bytes == 20 * 1024 * 1024
    assert config.images.memory_bytes == 256 * 1024 * 1024
    assert load_config({"IMAGE_MEMORY_MB": "64"}).images.memory_bytes == 64 * 1024 * 1024
    assert config.images.default_response_mode is ResponseMode.TEXT_AND_IMAGE
    assert not config.discord.enabled and not config.slack.enabled


def test_gemini_api_key_wins_over_google_api_key() -> None:
    assert reveal(load_config({"GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "o"}).gemini.api_key) == "g"
    assert reveal(load_config({"GOOGLE_API_KEY": "o"}).gemini.api_key) == "o"


def test_secrets_are_not_in_repr() -> None:
    config = load_config({"GEMINI_API_KEY": "AIza-secret", "DISCORD_TOKEN": "disc-secret"})
    assert "AIza-secret" not in repr(config) and "disc-secret" not in repr(config)
    assert set(config.secrets()) == {"AIza-secret", "disc-secret"}


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:///relative.db", Path("relative.db")), ("sqlite:////abs/path.db", Path("/abs/path.db"))],
)
def test_database_url_forms(url: str, path: Path) -> None:
    config = load_config({"DATABASE_URL": url})
    assert config.storage.path == path
    assert not config.storage.is_postgres


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:s3cret@db.internal:5432/nano",
        "postgres://bot:s3cret@db.internal/nano",
        "postgresql://bot:s3cret@/nano?host=/var/run/postgresql",
    ],
)
def test_postgres_urls_are_accepted_and_their_password_is_a_secret(url: str) -> None:
    config = load_config({"DATABASE_URL": url})
    assert config.storage.is_postgres
    assert config.storage.url == url
    assert "s3cret" in config.secrets()
    assert "s3cret" not in redacted_database_url(url)
    assert redacted_database_url(url) == url.replace("s3cret", "***")


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"DATABASE_URL": "postgresql+asyncpg://u@h/db"},
            "DATABASE_URL scheme 'postgresql+asyncpg' is not supported; "
            "use postgresql://user:password@host:5432/database.",
        ),
        (
            {"DATABASE_URL": "postgresql://u:hunter2@h:port/db"},
            "DATABASE_URL is a malformed PostgreSQL URL; use postgresql://user:password@host:5432/database.",
        ),
        (
            {"DATABASE_URL": "postgres:///db"},
            "DATABASE_URL names no PostgreSQL host; use postgresql://user:password@host:5432/database.",
        ),
        (
            {"DATABASE_URL": "bot.db"},
            "DATABASE_URL 'bot.db' is not a URL; use sqlite:///data/bot.sqlite3.",
        ),
        (
            {"DATABASE_URL": "sqlite://"},
            "DATABASE_URL 'sqlite://' is malformed; use sqlite:///relative.db or sqlite:////abs/path.db.",
        ),
        (
            {"DATABASE_URL": "mysql://x/y"},
            "DATABASE_URL scheme 'mysql' is not supported; use sqlite:///data/bot.sqlite3.",
        ),
        (
            {"GEMINI_MODEL": "gemini-2.5-flash-image", "DEFAULT_ASPECT_RATIO": "7:5"},
            "DEFAULT_ASPECT_RATIO '7:5' is not supported by gemini-2.5-flash-image; use one of "
            "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9.",
        ),
        (
            {"GEMINI_MODEL": "gemini-2.5-flash-image", "DEFAULT_IMAGE_SIZE": "2K"},
            "DEFAULT_IMAGE_SIZE is set but gemini-2.5-flash-image has a single image size; unset it.",
        ),
        ({"PORT": "http"}, "PORT must be a whole number, not 'http'."),
        ({"IMAGE_MEMORY_MB": "lots"}, "IMAGE_MEMORY_MB must be a whole number, not 'lots'."),
        ({"IMAGE_MEMORY_MB": "8"}, "IMAGE_MEMORY_MB must be at least 16, not 8."),
        ({"CONTEXT_MAX_IMAGES": "-1"}, "CONTEXT_MAX_IMAGES must be at least 0, not -1."),
        ({"GEMINI_TIMEOUT_SECONDS": "0"}, "GEMINI_TIMEOUT_SECONDS must be greater than 0, not 0."),
        (
            {"GOOGLE_GEMINI_BASE_URL": "localhost:9"},
            "GOOGLE_GEMINI_BASE_URL must be an http(s) URL, not 'localhost:9'.",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1"},
            "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
            "SLACK_SIGNING_SECRET (HTTP mode) is; set one of them.",
        ),
    ],
)
def test_each_invalid_value_is_one_clear_line(env: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert caught.value.problems == [line]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DATABASE_URL": "mysql://x/y", "DEFAULT_ASPECT_RATIO": "nope", "PORT": "x"})
    assert len(caught.value.problems) == 3


def test_size_and_ratio_defaults_for_a_model_with_sizes() -> None:
    config = load_config(
        {
            "GEMINI_MODEL": "gemini-3-pro-image-preview",
            "DEFAULT_IMAGE_SIZE": "2k",
            "DEFAULT_ASPECT_RATIO": "16:9",
        }
    )
    assert (config.images.default_image_size, config.images.default_aspect_ratio) == ("2K", "16:9")


def test_unbounded_context_budget() -> None:
    assert load_config({"CONTEXT_MAX_IMAGES": "all"}).limits.context_max_images is None


def test_missing_key_is_reported_when_generation_is_needed() -> None:
    with pytest.raises(ConfigError) as caught:
        require_generation(load_config({}))
    assert caught.value.problems[0].startswith("GEMINI_API_KEY is not set;")


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("GEMINI_API_KEY=from-file\nGEMINI_MODEL=gemini-3-pro-image-preview\n")
    merged = read_environment({"GEMINI_API_KEY": "from-env"}, env_file)
    config = load_config(merged)
    assert reveal(config.gemini.api_key) == "from-env"
    assert config.gemini.model == "gemini-3-pro-image-preview"


def test_discord_options() -> None:
    config = load_config({"DISCORD_GUILD_ID": "123, 456", "DISCORD_MESSAGE_CONTENT": "false"})
    assert config.discord.guild_ids == (123, 456)
    assert config.discord.message_content is False
    assert load_config({}).discord.message_content is True


def test_invalid_discord_options_are_one_line_each() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DISCORD_GUILD_ID": "my-server", "DISCORD_MESSAGE_CONTENT": "maybe"})
    assert caught.value.problems == [
        "DISCORD_GUILD_ID must be a numeric id or a comma-separated list of them, not 'my-server'.",
        "DISCORD_MESSAGE_CONTENT must be true or false, not 'maybe'.",
    ]


def test_allowed_models_are_a_comma_separated_list() -> None:
    assert load_config({}).gemini.allowed_models == ()
    config = load_config(
        {"ALLOWED_MODELS": " gemini-3-pro-image, ,gemini-2.5-flash-image,gemini-3-pro-image "}
    )
    assert config.gemini.allowed_models == ("gemini-3-pro-image", "gemini-2.5-flash-image")
