"""Per-user, per-channel and per-workspace image limits and a daily spend cap, from recorded usage."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import Config
from bot.entry.platforms import PLATFORMS
from bot.ports import Ledger, Reservations, UsageCounts
from bot.text import messages
from bot.vocabulary import Author, ConversationKey
from storage.patience import Patience
from storage.protocol import Store, UsageCount, UsageQuery

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """0 (or None for money) turns a limit off."""

    user_per_hour: int = 60
    user_per_day: int = 200
    channel_per_day: int = 0
    workspace_per_day: int = 0
    daily_spend_usd: float | None = None

    @classmethod
    def from_config(cls, config: Config) -> LimitPolicy:
        return cls(
            config.limits.user_images_per_hour,
            config.limits.user_images_per_day,
            config.limits.channel_images_per_day,
            config.limits.workspace_images_per_day,
            config.limits.daily_spend_cap_usd,
        )


def start_of_day(now: float) -> float:
    """Midnight UTC of the day ``now`` falls in: daily limits reset then."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _until_midnight(now: float) -> str:
    remaining = start_of_day(now) + 86400 - now
    return f"it resets at midnight UTC (in {_duration(remaining)})"


def _duration(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class InProcessReservations:
    """Counts in memory, one check at a time in this process."""

    def __init__(self) -> None:
        self._pending: Counter[tuple[str, ...]] = Counter()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def checking(self, usage: UsageCounts) -> AsyncIterator[_InProcessLedger]:
        async with self._lock:
            yield _InProcessLedger(self._pending, usage)

    async def release(self, token: object) -> None:
        scopes = token if isinstance(token, tuple) else ()
        self._pending.subtract(scopes)
        for scope in scopes:
            if self._pending[scope] <= 0:
                del self._pending[scope]


class _InProcessLedger:
    def __init__(self, pending: Counter[tuple[str, ...]], usage: UsageCounts) -> None:
        self._pending = pending
        self.usage_counts = usage.usage_counts

    async def pending(self, scope: tuple[str, ...]) -> int:
        return self._pending[scope]

    async def reserve(self, scopes: Sequence[tuple[str, ...]]) -> object:
        self._pending.update(scopes)
        return tuple(scopes)


class RateLimiter:
    """Decides whether a turn may generate, counting recorded usage plus turns still in flight
    (so ten messages sent at once cannot all slip under a limit of one)."""

    def __init__(
        self,
        policy: LimitPolicy,
        usage: Store,
        clock: Callable[[], float] = time.time,
        reservations: Reservations | None = None,
        patience: Patience | None = None,
    ) -> None:
        self._policy = policy
        self._usage = usage
        self._clock = clock
        self._reservations = reservations or InProcessReservations()
        self._patience = patience if patience is not None else Patience(0.0)

    @staticmethod
    def _scopes(key: ConversationKey, author: Author) -> tuple[tuple[str, ...], ...]:
        return (
            ("user", key.platform, author.id),
            ("channel", key.platform, key.workspace, key.channel),
            ("workspace", key.platform, key.workspace),
        )

    @asynccontextmanager
    async def admit(
        self, key: ConversationKey, author: Author, *, admin: bool = False, images: int = 1
    ) -> AsyncIterator[str | None]:
        """Yield None when the turn may run (it then counts as in flight until the block ends),
        or one sentence naming the limit it hit and when that resets.

        Checks run one at a time and an admitted turn counts at once, so concurrent turns
        cannot all pass a check that only some of them should. A turn of ``images`` takes needs
        room for all of them and counts as that many until it ends.
        """
        scopes = self._scopes(key, author)

        async def check() -> tuple[str | None, object]:
            # Retried whole when the database goes away mid-check: the transaction rolled back.
            async with self._reservations.checking(self._usage) as ledger:
                refusal = await self._refusal(key, author, admin=admin, ledger=ledger, images=images)
                token = None if refusal is not None else await ledger.reserve(scopes * max(1, images))
            return refusal, token

        refusal, token = await self._patience.call(check)
        try:
            yield refusal
        finally:
            if refusal is None:
                await self._reservations.release(token)

    async def _refusal(
        self, key: ConversationKey, author: Author, *, admin: bool, ledger: Ledger, images: int = 1
    ) -> str | None:
        """None when the turn may run; otherwise one sentence naming the limit and its reset.
        Every limit's recorded usage is counted in one query, then compared in order."""
        policy = self._policy
        now = self._clock()
        day = start_of_day(now)
        # The spend cap counts recorded turns only, so turns in flight when it is reached can
        # overshoot it by at most MAX_CONCURRENT_GENERATIONS images.
        spend = (UsageQuery(day),) if policy.daily_spend_usd is not None else ()
        limits = () if admin else self._limits(key, author, now, day)
        counted = await ledger.usage_counts([*spend, *(query for _, query, _, _ in limits)])
        if policy.daily_spend_usd is not None and counted[0].cost_usd >= policy.daily_spend_usd:
            return messages.spend_cap_reached(policy.daily_spend_usd, _until_midnight(now))
        pending: dict[tuple[str, ...], int] = {}  # the hourly and daily limits share a scope
        for (limit, _, scope, reached), count in zip(limits, counted[len(spend) :], strict=True):
            if scope not in pending:
                pending[scope] = await ledger.pending(scope)
            if count.images + pending[scope] + images > limit:
                return reached(count)
        return None

    def _limits(
        self, key: ConversationKey, author: Author, now: float, day: float
    ) -> list[tuple[int, UsageQuery, tuple[str, ...], Callable[[UsageCount], str]]]:
        """The limits that are on: (limit, what counts, in-flight scope, how to say it was reached)."""
        policy = self._policy
        user_scope, channel_scope, workspace_scope = self._scopes(key, author)
        midnight = _until_midnight(now)

        def hourly(count: UsageCount) -> str:
            wait = (count.oldest + HOUR_S - now) if count.oldest is not None else HOUR_S
            return messages.hourly_limit(policy.user_per_hour, _duration(wait))

        def daily(sentence: str) -> Callable[[UsageCount], str]:
            return lambda _count: sentence

        where = PLATFORMS[key.platform].workspace_word if key.platform in PLATFORMS else "workspace"
        limits = [
            (policy.user_per_hour, UsageQuery(now - HOUR_S, author.id, key.platform), user_scope, hourly),
            (
                policy.user_per_day,
                UsageQuery(day, author.id, key.platform),
                user_scope,
                daily(messages.person_daily_limit(policy.user_per_day, midnight)),
            ),
            (
                policy.channel_per_day,
                UsageQuery(day, platform=key.platform, workspace=key.workspace, channel=key.channel),
                channel_scope,
                daily(messages.channel_daily_limit(policy.channel_per_day, midnight)),
            ),
            (
                policy.workspace_per_day,
                UsageQuery(day, platform=key.platform, workspace=key.workspace),
                workspace_scope,
                daily(messages.workspace_daily_limit(where, policy.workspace_per_day, midnight)),
            ),
        ]
        return [limit for limit in limits if limit[0]]


def month_start(now: float) -> float:
    """The first instant of the UTC month ``now`` falls in."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
