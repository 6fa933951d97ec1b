"""Configuration groups: every setting parsed into its group, secrets typed, one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import ConfigError, HttpSettings, load_config, reveal
from bot.config.problems import lines_of

ALL_SECRETS = {
    "GEMINI_API_KEY": "AIza-key",
    "DISCORD_TOKEN": "disc-token",
    "SLACK_BOT_TOKEN": "xoxb-bot",
    "SLACK_APP_TOKEN": "xapp-app",
    "SLACK_SIGNING_SECRET": "signing-secret",
    "DATABASE_URL": "postgresql://bot:db-password@db.internal:5432/nano",
}


def test_every_secret_is_listed_for_redaction_and_none_is_in_repr() -> None:
    config = load_config(ALL_SECRETS)
    assert set(config.secrets()) == {
        "AIza-key",
        "disc-token",
        "xoxb-bot",
        "xapp-app",
        "signing-secret",
        "db-password",
    }
    shown = repr(config)
    assert not [secret for secret in config.secrets() if secret in shown]
    assert reveal(config.slack.signing_secret) == "signing-secret"
    assert reveal(config.discord.token) == "disc-token"
    assert reveal(load_config({}).discord.token) == ""


def test_platforms_are_enabled_by_their_tokens() -> None:
    config = load_config(ALL_SECRETS)
    assert config.discord.enabled and config.slack.enabled and config.slack.socket_mode
    http_mode = load_config({"SLACK_BOT_TOKEN": "xoxb", "SLACK_SIGNING_SECRET": "s"})
    assert http_mode.slack.enabled and not http_mode.slack.socket_mode


def test_blank_values_are_unset_and_surrounding_blanks_ignored() -> None:
    config = load_config(
        {"PORT": "  ", "GEMINI_API_KEY": " ", "GOOGLE_API_KEY": " o ", "LOG_LEVEL": " debug "}
    )
    assert config.http.port == 3000
    assert reveal(config.gemini.api_key) == "o"
    assert config.logging.level == "DEBUG"


def test_the_process_environment_is_never_read_behind_load_configs_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    monkeypatch.setenv("DISCORD_TOKEN", "from-os-environ")
    config = load_config({})
    assert config.http.port == 3000 and not config.discord.enabled


def test_units_are_converted_once_when_read() -> None:
    config = load_config(
        {
            "TURN_ORDER_SETTLE_MS": "100",
            "PROCESS_LEASE_S": "45",
            "DATABASE_OUTAGE_S": "300",
            "DATABASE_POOL_SIZE": "4",
            "MAX_ATTACHMENT_MB": "5",
            "IMAGE_MEMORY_MB": "16",
            "DAILY_SPEND_CAP_USD": "$12.50",
            "CONTEXT_MAX_IMAGES": "unlimited",
            "RETENTION_DAYS": "30",
            "CONSOLE_OUTPUT_DIR": "pictures",
        }
    )
    assert (config.storage.turn_order_settle_s, config.storage.process_lease_s) == (0.1, 45.0)
    assert config.storage.retention_days == 30
    assert (config.storage.outage_s, config.storage.pool_size) == (300.0, 4)
    assert config.images.max_attachment_bytes == 5 * 1024 * 1024
    assert config.images.memory_bytes == 16 * 1024 * 1024
    assert config.limits.daily_spend_cap_usd == 12.5
    assert config.limits.context_max_images is None
    assert config.console.output_dir == Path("pictures")


def test_defaults_of_the_settings_on_main() -> None:
    config = load_config({})
    assert (config.storage.turn_order_settle_s, config.storage.process_lease_s) == (0.25, 30.0)
    assert (config.storage.outage_s, config.storage.pool_size) == (120.0, 10)
    assert (config.limits.user_images_per_hour, config.limits.user_images_per_day) == (60, 200)
    assert (config.limits.max_concurrent_generations, config.limits.max_queued_turns) == (32, 200)
    assert config.limits.daily_spend_cap_usd is None and config.limits.max_prompt_chars == 4000
    assert (config.gemini.timeout_s, config.gemini.max_attempts) == (120.0, 4)
    assert config.access.admins == frozenset() and config.access.refuse_silently is False
    assert config.logging.level == "INFO" and config.console.output_dir == Path("out")


def test_access_lists_and_admins() -> None:
    config = load_config(
        {
            "DISCORD_ALLOWED_GUILDS": "1, 2,",
            "SLACK_ALLOWED_USERS": "U1",
            "ADMIN_USERS": "discord:9,slack:U2",
            "REFUSE_SILENTLY": "yes",
        }
    )
    assert config.access.discord_guilds == frozenset({"1", "2"})
    assert config.access.slack_users == frozenset({"U1"}) and config.access.discord_users == frozenset()
    assert config.access.admins == frozenset({"discord:9", "slack:U2"})
    assert config.access.refuse_silently is True


def test_with_model_replaces_only_the_model() -> None:
    config = load_config({"GEMINI_API_KEY": "k"})
    chosen = config.with_model("gemini-3-pro-image")
    assert (chosen.gemini.model, chosen.gemini.model_set) == ("gemini-3-pro-image", False)
    assert config.gemini.model == "gemini-3.1-flash-image"
    assert chosen.gemini.api_key == config.gemini.api_key and chosen.storage is config.storage
    with pytest.raises(ValidationError):
        chosen.gemini.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "models"),
    [
        (None, ()),
        ("gemini-2.5-flash-image", ("gemini-2.5-flash-image",)),
        (
            " gemini-3-pro-image , gemini-2.5-flash-image,gemini-3-pro-image,",
            ("gemini-3-pro-image", "gemini-2.5-flash-image"),
        ),
    ],
)
def test_allowed_models(raw: str | None, models: tuple[str, ...]) -> None:
    assert load_config({} if raw is None else {"ALLOWED_MODELS": raw}).gemini.allowed_models == models


@pytest.mark.parametrize(
    ("env", "count", "ids"),
    [
        ({}, None, None),
        ({"DISCORD_SHARD_COUNT": "4"}, 4, None),
        ({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "0,1"}, 4, (0, 1)),
        ({"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "0-3"}, 4, (0, 1, 2, 3)),
        ({"DISCORD_SHARD_COUNT": "8", "DISCORD_SHARD_IDS": " 6-7, 2 ,2"}, 8, (2, 6, 7)),
        ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1"}, 2, (1,)),
    ],
)
def test_shard_settings(env: dict[str, str], count: int | None, ids: tuple[int, ...] | None) -> None:
    config = load_config(env)
    assert (config.discord.shard_count, config.discord.shard_ids) == (count, ids)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "2"},
            "DISCORD_SHARD_IDS names shard 2, but with DISCORD_SHARD_COUNT=2 shards are numbered 0 to 1.",
        ),
        (
            {"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "0-5"},
            "DISCORD_SHARD_IDS names shard 4, but with DISCORD_SHARD_COUNT=4 shards are numbered 0 to 3.",
        ),
        ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT must be at least 1, not 0."),
        ({"DISCORD_SHARD_COUNT": "-1"}, "DISCORD_SHARD_COUNT must be a whole number, not '-1'."),
        ({"DISCORD_SHARD_COUNT": "two"}, "DISCORD_SHARD_COUNT must be a whole number, not 'two'."),
        (
            {"DISCORD_SHARD_IDS": "0"},
            "DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not; set the total number of shards too.",
        ),
        (
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1-0"},
            "DISCORD_SHARD_IDS range '1-0' runs backwards; write it as 0-1.",
        ),
        (
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "a"},
            "DISCORD_SHARD_IDS must list shards, not 'a'; use shard numbers such as 0,1 or 0-3.",
        ),
        (
            {"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "0,,1"},
            "DISCORD_SHARD_IDS must list shards, not '0,,1'; use shard numbers such as 0,1 or 0-3.",
        ),
        (
            {"DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "0-"},
            "DISCORD_SHARD_IDS must list shards, not '0-'; use shard numbers such as 0,1 or 0-3.",
        ),
    ],
)
def test_each_bad_shard_setting_is_one_clear_line(env: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert caught.value.problems == [line]


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'LOUD'."),
        (
            {"DEFAULT_RESPONSE_MODE": "Both"},
            "DEFAULT_RESPONSE_MODE must be text_image or image_only, not 'both'.",
        ),
        (
            {"DAILY_SPEND_CAP_USD": "$five"},
            "DAILY_SPEND_CAP_USD must be an amount in US dollars such as 5 or 12.50, not 'five'.",
        ),
        ({"DAILY_SPEND_CAP_USD": "$0"}, "DAILY_SPEND_CAP_USD must be greater than 0, not 0."),
        (
            {"GEMINI_TIMEOUT_SECONDS": "soon"},
            "GEMINI_TIMEOUT_SECONDS must be a number of seconds, not 'soon'.",
        ),
        ({"GEMINI_MAX_ATTEMPTS": "0"}, "GEMINI_MAX_ATTEMPTS must be at least 1, not 0."),
        ({"MAX_ATTACHMENT_MB": "0"}, "MAX_ATTACHMENT_MB must be at least 1, not 0."),
        ({"MAX_INPUT_IMAGE_SIDE": "100"}, "MAX_INPUT_IMAGE_SIDE must be at least 256, not 100."),
        ({"MAX_PROMPT_CHARS": "0"}, "MAX_PROMPT_CHARS must be at least 1, not 0."),
        ({"MAX_CONCURRENT_GENERATIONS": "0"}, "MAX_CONCURRENT_GENERATIONS must be at least 1, not 0."),
        ({"USER_IMAGES_PER_DAY": "-3"}, "USER_IMAGES_PER_DAY must be at least 0, not -3."),
        ({"TURN_ORDER_SETTLE_MS": "0.5"}, "TURN_ORDER_SETTLE_MS must be a whole number, not '0.5'."),
        ({"PROCESS_LEASE_S": "0"}, "PROCESS_LEASE_S must be at least 1, not 0."),
        ({"DATABASE_OUTAGE_S": "0"}, "DATABASE_OUTAGE_S must be at least 1, not 0."),
        ({"DATABASE_POOL_SIZE": "1"}, "DATABASE_POOL_SIZE must be at least 2, not 1."),
        ({"DATABASE_POOL_SIZE": "5000"}, "DATABASE_POOL_SIZE must be between 2 and 1000, not 5000."),
        ({"PORT": "70000"}, "PORT must be between 0 and 65535, not 70000."),
        ({"PORT": "-1"}, "PORT must be at least 0, not -1."),
        ({"REFUSE_SILENTLY": "Perhaps"}, "REFUSE_SILENTLY must be true or false, not 'perhaps'."),
        (
            {"ADMIN_USERS": "discord:1, alice, irc:2"},
            "ADMIN_USERS entries must look like discord:123456 or slack:U012ABC, not alice, irc:2.",
        ),
        ({"SLACK_API_URL": "slack.com"}, "SLACK_API_URL must be an http(s) URL, not 'slack.com'."),
        ({"DISCORD_API_URL": "ftp://x"}, "DISCORD_API_URL must be an http(s) URL, not 'ftp://x'."),
        (
            {"PUBLIC_URL": "bot.example.com"},
            "PUBLIC_URL must be an http(s) URL such as https://bot.example.com, not 'bot.example.com'.",
        ),
        (
            {"PUBLIC_URL": "wss://bot.example.com"},
            "PUBLIC_URL must be an http(s) URL such as https://bot.example.com, not 'wss://bot.example.com'.",
        ),
        (
            {"PUBLIC_URL": "https://bot.example.com/?a=1"},
            "PUBLIC_URL must be a plain address without ?query, #fragment or user, "
            "not 'https://bot.example.com/?a=1'.",
        ),
        (
            {"DEFAULT_IMAGE_SIZE": "3k"},
            "DEFAULT_IMAGE_SIZE '3K' is not supported by gemini-3.1-flash-image; use one of 512, 1K, 2K, 4K.",
        ),
    ],
)
def test_each_bad_value_is_one_line_naming_its_variable(env: dict[str, str], line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert caught.value.problems == [line]


def test_a_bad_group_does_not_hide_the_checks_across_groups() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"DEFAULT_RESPONSE_MODE": "x", "DEFAULT_ASPECT_RATIO": "7:5", "LOG_LEVEL": "x"})
    assert [p.split()[0] for p in caught.value.problems] == [
        "DEFAULT_RESPONSE_MODE",
        "DEFAULT_ASPECT_RATIO",
        "LOG_LEVEL",
    ]


def test_pydantics_own_errors_also_become_one_line_naming_the_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        HttpSettings(PORT=[80])  # not a string from the environment, nor a number
    assert lines_of(caught.value) == ["PORT is not valid: Input should be a valid integer."]


@pytest.mark.parametrize(
    ("value", "link"),
    [
        ("https://bot.example.com", "https://bot.example.com/edit/abc.def"),
        ("https://bot.example.com/", "https://bot.example.com/edit/abc.def"),
        ("http://10.0.0.5:3000/nano//", "http://10.0.0.5:3000/nano/edit/abc.def"),
    ],
)
def test_public_url_makes_editor_links_without_doubled_slashes(value: str, link: str) -> None:
    assert load_config({"PUBLIC_URL": value}).http.editor_link("abc.def") == link


def test_without_public_url_there_is_no_editor() -> None:
    http = load_config({}).http
    assert http.public_url is None
    assert http.editor_link("abc.def") is None
