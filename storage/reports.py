"""What the operators' dashboard reads from the database (``storage.protocol.Reports``): the ledger
by day, model and platform, who spent most, how turns ended and how long they took, the processes
sharing the database and the latest conversations. Whole-deployment figures, so every process
shows the same page."""

from __future__ import annotations

from dataclasses import dataclass

from storage.records import ConversationKey


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """How one turn ended (a fixed word, and a more precise one) and how long it took."""

    created_at: float
    platform: str
    kind: str
    outcome: str
    reason: str
    latency_s: float


@dataclass(frozen=True, slots=True)
class DayUsage:
    """Images and estimated US dollars of one model on one platform in one day (``day``: the
    index of the interval between the bounds the query was given)."""

    day: int
    model: str
    platform: str
    images: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class DayLatency:
    """How long the turns that answered took on one day: their count and the nearest-rank p50 and p95."""

    day: int
    turns: int
    p50_s: float
    p95_s: float


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    """How many turns ended with ``outcome`` for ``reason``."""

    outcome: str
    reason: str
    turns: int


@dataclass(frozen=True, slots=True)
class Spender:
    """One person (``author_id``; no place) or one channel (no person) and what they made."""

    platform: str
    workspace: str
    channel: str
    author_id: str
    images: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class ProcessSeen:
    """A process sharing the database, from its lease: when it started and last renewed, and
    its platforms' connection states as of that renewal (name, fixed word), by name."""

    id: str
    started_at: float
    seen_at: float
    # Whether it is the process that asked.
    this: bool = False
    platforms: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RecentConversation:
    """A conversation, when it was last touched, and its latest image (a blob hash) if any."""

    key: ConversationKey
    turn_count: int
    updated_at: float
    image: str | None
