"""Who may use the bot where: per-platform allow-lists, admins, and one polite refusal."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import TTLCache

from bot.config import Config
from bot.entry.platforms import PLATFORMS
from bot.text import messages
from bot.vocabulary import Author, ConversationKey

REFUSAL_MESSAGE = messages.NOT_ENABLED
# A refused person is told again in that channel after this long (they may have been added
# since, or forgotten); within it, they are not told on every message.
REFUSAL_MEMORY_S = 3600.0
# Who was told, at most this many at once: past it the least recently told is forgotten first
# (a flood of strangers cannot grow memory, nor make everyone else be told again).
REFUSAL_MEMORY_SIZE = 10_000


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
    """Allow-lists per platform (the console's is open), admins who bypass limits, and a memory
    of who was already refused so a refused person is told once, not on every message. A
    platform without an allow-list here is unknown: everyone on it is refused, admins too."""

    lists: dict[str, AllowList]
    admins: frozenset[str] = frozenset()
    silent: bool = False
    memory_s: float = REFUSAL_MEMORY_S
    memory_size: int = REFUSAL_MEMORY_SIZE
    clock: Callable[[], float] = time.monotonic
    _refused: TTLCache[tuple[str, str, str], bool] = field(init=False)

    def __post_init__(self) -> None:
        self._refused = TTLCache(self.memory_size, self.memory_s, timer=self.clock)

    @classmethod
    def from_config(cls, config: Config) -> AccessPolicy:
        """An allow-list for every platform of the registry, and for no other."""
        return cls(
            lists={name: AllowList(*platform.allowed(config)) for name, platform in PLATFORMS.items()},
            admins=config.access.admins,
            silent=config.access.refuse_silently,
        )

    def is_admin(self, platform: str, user_id: str) -> bool:
        return f"{platform}:{user_id}" in self.admins

    def check(self, key: ConversationKey, author: Author) -> AccessDecision:
        allow = self.lists.get(key.platform)
        if allow is not None and (self.is_admin(key.platform, author.id) or allow.admits(key, author)):
            return AccessDecision(True)
        seen = (key.platform, key.channel, author.id)
        if self.silent or seen in self._refused:
            return AccessDecision(False)
        self._refused[seen] = True
        return AccessDecision(False, REFUSAL_MESSAGE)
