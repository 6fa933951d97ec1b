"""Settings groups of the platforms: Discord, Slack, and who may use the bot on them."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import SecretStr, model_validator

from bot.config import parsers as p
from bot.config.group import SettingsGroup, setting
from bot.config.problems import line

DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"


class DiscordSettings(SettingsGroup):
    """The Discord adapter (enabled by its token), its endpoint, commands, intents and shards."""

    token: SecretStr | None = setting("DISCORD_TOKEN", None)
    api_url: Annotated[str, p.http_url()] = setting("DISCORD_API_URL", DEFAULT_DISCORD_API_URL)
    # Guilds where slash commands are registered per guild (instant); empty = global commands.
    guild_ids: Annotated[tuple[int, ...], p.numeric_ids()] = setting("DISCORD_GUILD_ID", ())
    # False = run without the privileged message-content intent; then a mention is needed in
    # threads too.
    message_content: Annotated[bool, p.boolean()] = setting("DISCORD_MESSAGE_CONTENT", True)
    # None = every shard, the count from GET /gateway/bot; ids need a count.
    shard_count: Annotated[int | None, p.shard_count()] = setting("DISCORD_SHARD_COUNT", None)
    shard_ids: Annotated[tuple[int, ...] | None, p.shard_ids()] = setting("DISCORD_SHARD_IDS", None)

    @property
    def enabled(self) -> bool:
        return self.token is not None

    @model_validator(mode="after")
    def _shards_exist(self) -> Self:
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise line(
                "DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not; set the total number of shards too."
            )
        outside = [i for i in self.shard_ids if i >= self.shard_count]
        if outside:
            raise line(
                f"DISCORD_SHARD_IDS names shard {outside[0]}, but with DISCORD_SHARD_COUNT="
                f"{self.shard_count} shards are numbered 0 to {self.shard_count - 1}."
            )
        return self


class SlackSettings(SettingsGroup):
    """The Slack adapter (enabled by its bot token): Socket Mode or HTTP mode, and its endpoint."""

    bot_token: SecretStr | None = setting("SLACK_BOT_TOKEN", None)
    app_token: SecretStr | None = setting("SLACK_APP_TOKEN", None)
    signing_secret: SecretStr | None = setting("SLACK_SIGNING_SECRET", None)
    api_url: Annotated[str, p.http_url()] = setting("SLACK_API_URL", DEFAULT_SLACK_API_URL)

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @model_validator(mode="after")
    def _has_a_mode(self) -> Self:
        if self.enabled and self.app_token is None and self.signing_secret is None:
            raise line(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
                "SLACK_SIGNING_SECRET (HTTP mode) is; set one of them."
            )
        return self


class AccessSettings(SettingsGroup):
    """Who may use the bot: allow-lists (empty = everyone), admins, and how outsiders are told."""

    # Users are platform ids; admins are "platform:id".
    discord_guilds: Annotated[frozenset[str], p.names()] = setting("DISCORD_ALLOWED_GUILDS", frozenset())
    discord_channels: Annotated[frozenset[str], p.names()] = setting("DISCORD_ALLOWED_CHANNELS", frozenset())
    discord_users: Annotated[frozenset[str], p.names()] = setting("DISCORD_ALLOWED_USERS", frozenset())
    slack_teams: Annotated[frozenset[str], p.names()] = setting("SLACK_ALLOWED_TEAMS", frozenset())
    slack_channels: Annotated[frozenset[str], p.names()] = setting("SLACK_ALLOWED_CHANNELS", frozenset())
    slack_users: Annotated[frozenset[str], p.names()] = setting("SLACK_ALLOWED_USERS", frozenset())
    admins: Annotated[frozenset[str], p.admins()] = setting("ADMIN_USERS", frozenset())
    refuse_silently: Annotated[bool, p.boolean()] = setting("REFUSE_SILENTLY", False)
