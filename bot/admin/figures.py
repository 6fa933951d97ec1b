"""What the dashboard shows, gathered in one place from the database (the ledger, the turn log,
the leases, the conversations) and this process's health checks; days in the operator's zone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.limits.quotas import HOUR_S, LimitPolicy, start_of_day
from storage.protocol import Store, UsageQuery
from storage.reports import DayLatency, DayUsage, OutcomeCount, ProcessSeen, RecentConversation, Spender

DAYS = 30
TOP = 10
RECENT = 20
# A process gone (its lease lapsed) is listed this long after its last renewal, then left out: its
# row stays in the database, but a deployment that crashed often would list them all.
GONE_SHOWN_S = 24 * 3600.0
# Outcomes that are neither refusals nor failures: turns that answered.
ANSWERED = frozenset({"image", "text_only"})


@dataclass(frozen=True, slots=True)
class Limited:
    """What a person or a channel made, and how much of its limits that uses (0 = no limit)."""

    who: Spender
    today: int
    day_limit: int
    last_hour: int = 0
    hour_limit: int = 0


@dataclass(frozen=True, slots=True)
class Figures:
    now: float
    zone: ZoneInfo
    # Midnight of each of the last DAYS days, then the next midnight.
    bounds: list[float]
    usage: list[DayUsage]
    latency: list[DayLatency]
    outcomes: list[OutcomeCount]
    people: list[Limited]
    channels: list[Limited]
    spent_today: float
    spend_cap: float | None
    processes: list[ProcessSeen]
    lease_s: float
    parts: Mapping[str, bool]
    conversations: list[RecentConversation]

    def day_label(self, day: int) -> str:
        return datetime.fromtimestamp(self.bounds[day], self.zone).strftime("%b %d")

    def when(self, moment: float) -> str:
        return datetime.fromtimestamp(moment, self.zone).strftime("%Y-%m-%d %H:%M %Z")


def day_bounds(now: float, zone: ZoneInfo, days: int = DAYS) -> list[float]:
    """The local midnights starting each of the last ``days`` days (today last), then tomorrow's."""
    today = datetime.fromtimestamp(now, zone).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=n), time(0), tzinfo=zone).timestamp() for n in range(days + 1)
    ]


def month_start(now: float, zone: ZoneInfo) -> float:
    local = datetime.fromtimestamp(now, zone)
    return datetime.combine(local.date().replace(day=1), time(0), tzinfo=zone).timestamp()


async def gather(
    store: Store,
    policy: LimitPolicy,
    zone: ZoneInfo,
    now: float,
    parts: Callable[[], Awaitable[Mapping[str, bool]]],
    lease_s: float,
) -> Figures:
    """Every figure of the page, read now."""
    bounds = day_bounds(now, zone)
    month = month_start(now, zone)
    people = await store.top_people(month, TOP)
    channels = await store.top_channels(month, TOP)
    return Figures(
        now=now,
        zone=zone,
        bounds=bounds,
        usage=await store.usage_by_day(bounds),
        latency=await store.latency_by_day(bounds),
        outcomes=[o for o in await store.outcome_counts(bounds[0]) if o.outcome not in ANSWERED],
        people=await _people_limits(store, policy, people, now),
        channels=await _channel_limits(store, policy, channels, now),
        spent_today=await store.cost_since(start_of_day(now)),
        spend_cap=policy.daily_spend_usd,
        processes=[p for p in await store.processes() if now - p.seen_at <= max(GONE_SHOWN_S, lease_s)],
        lease_s=lease_s,
        parts=await parts(),
        conversations=await store.recent_conversations(RECENT),
    )


async def _people_limits(
    store: Store, policy: LimitPolicy, people: list[Spender], now: float
) -> list[Limited]:
    """Each person's images today and in the last hour, as the limits count them (UTC days)."""
    day = start_of_day(now)
    queries = [
        query
        for p in people
        for query in (
            UsageQuery(day, p.author_id, p.platform),
            UsageQuery(now - HOUR_S, p.author_id, p.platform),
        )
    ]
    counts = await store.usage_counts(queries)
    return [
        Limited(p, counts[2 * n].images, policy.user_per_day, counts[2 * n + 1].images, policy.user_per_hour)
        for n, p in enumerate(people)
    ]


async def _channel_limits(
    store: Store, policy: LimitPolicy, channels: list[Spender], now: float
) -> list[Limited]:
    day = start_of_day(now)
    queries = [
        UsageQuery(day, platform=c.platform, workspace=c.workspace, channel=c.channel) for c in channels
    ]
    counts = await store.usage_counts(queries)
    return [
        Limited(c, count.images, policy.channel_per_day) for c, count in zip(channels, counts, strict=True)
    ]
