"""Who may use the bot where: per-platform allow-lists, admins, and one polite refusal."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Config
from bot.vocabulary import Author, ConversationKey

REFUSAL_MESSAGE = (
    "Sorry, this bot isn't enabled for you here; ask whoever runs it to add you or this channel."
)


@dataclass(frozen=True, slots=True)
class AllowList:
    """Empty sets allow everyone at that level."""

    workspaces: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    def admits(self, key: ConversationKey, author: Author) -> bool:
        return (
            (not self.workspaces or key.workspace in self.workspaces)
            and (not self.channels or key.channel in self.channels)
            and (not self.users or author.id in self.users)
        )


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """Whether a turn may run; when not, the message to show (None = stay silent)."""

    allowed: bool
    message: str | None = None


@dataclass(slots=True)
class AccessPolicy:
    """Allow-lists per platform (the console is always allowed), admins who bypass limits, and
    a memory of who was already refused so a refused person is told once, not on every message."""

    lists: dict[str, AllowList]
    admins: frozenset[str] = frozenset()
    silent: bool = False
    _refused: set[tuple[str, str, str]] = field(default_factory=set)

    @classmethod
    def from_config(cls, config: Config) -> AccessPolicy:
        return cls(
            lists={
                "discord": AllowList(
                    config.discord_allowed_guilds,
                    config.discord_allowed_channels,
                    config.discord_allowed_users,
                ),
                "slack": AllowList(
                    config.slack_allowed_teams, config.slack_allowed_channels, config.slack_allowed_users
                ),
            },
            admins=config.admin_users,
            silent=config.refuse_silently,
        )

    def is_admin(self, platform: str, user_id: str) -> bool:
        return f"{platform}:{user_id}" in self.admins

    def check(self, key: ConversationKey, author: Author) -> AccessDecision:
        allow = self.lists.get(key.platform)
        if allow is None or self.is_admin(key.platform, author.id) or allow.admits(key, author):
            return AccessDecision(True)
        seen = (key.platform, key.channel, author.id)
        if self.silent or seen in self._refused:
            return AccessDecision(False)
        # Bounded: a flood of strangers must not grow memory without limit.
        if len(self._refused) > 10_000:
            self._refused.clear()
        self._refused.add(seen)
        return AccessDecision(False, REFUSAL_MESSAGE)
