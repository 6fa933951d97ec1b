"""Records the store keeps and the core speaks in: conversation keys, setting scopes, posting
positions and billed usage (the core re-exports them from ``bot.vocabulary``)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Identifies one conversation: a Discord thread, a Slack thread, a console session.

    Discord: the thread id equals the id of the message it was started from, so the key is
    known before the thread exists. Slack: ``thread`` is the root message ``ts``.
    """

    platform: str
    workspace: str
    channel: str
    thread: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"


class ScopeLevel(StrEnum):
    """How wide a stored setting applies; narrower wins (thread > channel > global)."""

    THREAD = "thread"
    CHANNEL = "channel"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class SettingScope:
    """Where a setting is stored: one thread, one channel, or everywhere."""

    level: ScopeLevel
    platform: str = ""
    workspace: str = ""
    channel: str = ""
    thread: str = ""

    @classmethod
    def for_thread(cls, key: ConversationKey) -> SettingScope:
        return cls(ScopeLevel.THREAD, key.platform, key.workspace, key.channel, key.thread)

    @classmethod
    def for_channel(cls, key: ConversationKey) -> SettingScope:
        return cls(ScopeLevel.CHANNEL, key.platform, key.workspace, key.channel)

    @classmethod
    def everywhere(cls) -> SettingScope:
        return cls(ScopeLevel.GLOBAL)

    def as_text(self) -> str:
        """A stable, unambiguous string form used as a storage key."""
        if self.level is ScopeLevel.GLOBAL:
            return "global"
        parts = [self.level.value, self.platform, self.workspace, self.channel]
        if self.level is ScopeLevel.THREAD:
            parts.append(self.thread)
        return "|".join(parts)

    @staticmethod
    def inside_workspace(platform: str, workspace: str) -> tuple[str, ...]:
        """How ``as_text`` of every scope inside one workspace begins (one prefix per level)."""
        return tuple(
            f"{level.value}|{platform}|{workspace}|" for level in ScopeLevel if level is not ScopeLevel.GLOBAL
        )


_SLACK_TS = re.compile(r"([0-9]{1,12})\.([0-9]{1,6})", re.ASCII)
# Discord snowflakes carry milliseconds since 2015-01-01 in their top 42 bits.
DISCORD_EPOCH_MS = 1_420_070_400_000


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a message sits in its conversation's order: when the platform says it was posted
    (microseconds since the Unix epoch) and a tie-break among messages of the same instant."""

    posted_us: int
    tiebreak: int = 0
    # Whether an earlier message may still be in transit when this one arrives, so the turn
    # waits a moment after its posting time for stragglers (see bot.turns.order): true for
    # platform stamps (Slack retries, replicas and Socket Mode connections deliver in any order;
    # Discord resumes and rolling deploys replay), false for a stamp taken on arrival.
    settle: bool = field(default=False, compare=False)

    @property
    def posted_at(self) -> float:
        return self.posted_us / 1_000_000

    @classmethod
    def now(cls, clock: Callable[[], float] = time.time) -> Position:
        return cls(int(clock() * 1_000_000))

    @classmethod
    def from_slack_ts(cls, ts: str) -> Position:
        """A Slack ``ts`` ("1700000000.000100", unique per channel); now if it is malformed."""
        match = _SLACK_TS.fullmatch(ts)
        if match is None:
            return cls.now()
        seconds, fraction = match.groups()
        return cls(int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")), settle=True)

    @classmethod
    def from_snowflake(cls, snowflake: int) -> Position:
        """A Discord id: its timestamp, then its worker/process/increment bits as the tie-break."""
        if not 0 < snowflake < 2**63:
            return cls.now()
        return cls(((snowflake >> 22) + DISCORD_EPOCH_MS) * 1000, snowflake & 0x3FFFFF, settle=True)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the model billed for one turn, by modality where the API reports it."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thought_tokens: int = 0
    total_tokens: int = 0
    prompt_by_modality: dict[str, int] = field(default_factory=dict)
    output_by_modality: dict[str, int] = field(default_factory=dict)
    images_generated: int = 0
    # Estimated from the model's list prices when the turn was recorded.
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """How the work a used link started ended: ``outcome`` a word, ``message`` one sentence,
    and the stored result image (its blob's digest and type), if any."""

    outcome: str
    message: str
    result_sha256: str | None = None
    result_mime: str | None = None


@dataclass(frozen=True, slots=True)
class Pin:
    """A named image of one workspace's reference board (``name`` as the bot spells it)."""

    platform: str
    workspace: str
    name: str
    sha256: str
    mime_type: str
    pinned_by: str
    created_at: float


@dataclass(frozen=True, slots=True)
class WorkspaceForgotten:
    """What forgetting a whole workspace deleted: its conversations (and their turns), the images
    nothing else held, its settings and its pins. The usage ledger is kept."""

    conversations: int = 0
    turns: int = 0
    images: int = 0
    settings: int = 0
    pins: int = 0
    # Ids of the interactions Google keeps for the deleted conversations' model records
    # (GEMINI_API=interactions; every branch), for the caller to delete there too.
    interactions: tuple[str, ...] = ()

    def __add__(self, other: WorkspaceForgotten) -> WorkspaceForgotten:
        return WorkspaceForgotten(
            *(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True))
        )

    @property
    def anything(self) -> bool:
        return any(dataclasses.astuple(self))
