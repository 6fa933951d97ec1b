"""The queries behind the operators' dashboard (``storage.protocol.Reports``), shared by both drivers.

Days are the intervals between bounds the caller gives (its midnights in the operator's time zone),
so a day is summed in the database exactly as the ledger holds it, whatever the zone."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from storage.content import blob_refs
from storage.records import ConversationKey
from storage.reports import (
    DayLatency,
    DayUsage,
    OutcomeCount,
    ProcessSeen,
    RecentConversation,
    Spender,
    TurnRecord,
)
from storage.schema import TURN_LOG
from storage.sql_session import Session

# Turns that ran to an answer: what latency is measured over.
ANSWERED = ("image", "text_only")


def _day_of(bounds: Sequence[float], column: str = "created_at") -> tuple[str, str, list[Any]]:
    """SQL naming the interval of ``bounds`` a row's ``column`` falls in, a WHERE clause keeping
    rows inside them, and the parameters ($1 the first bound, $n the last)."""
    if len(bounds) < 2 or list(bounds) != sorted(bounds):
        raise ValueError("bounds must be at least two instants in order")
    params = [float(b) for b in bounds]
    cases = " ".join(f"WHEN {column} < ${n + 2} THEN {n}" for n in range(len(bounds) - 1))
    where = f"{column} >= $1 AND {column} < ${len(bounds)}"
    return f"CASE {cases} END", where, params


class ReportQueries:
    """A mixin for ``storage.sql_store.SqlStore``: the dashboard's reads and the turn log."""

    _clock: Callable[[], float]

    def _read(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    def _write(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    async def record_turns(self, records: Sequence[TurnRecord]) -> None:
        if not records:
            return
        rows = [(r.created_at, r.platform, r.kind, r.outcome, r.reason, r.latency_s) for r in records]
        async with self._write() as session:
            await session.executemany(TURN_LOG.insert(), rows)

    async def usage_by_day(self, bounds: Sequence[float]) -> list[DayUsage]:
        day, where, params = _day_of(bounds)
        async with self._read() as session:
            rows = await session.fetch(
                f"SELECT {day} AS day, model, platform, COALESCE(SUM(images_generated), 0), "
                f"COALESCE(SUM(cost_usd), 0) FROM usage_log WHERE {where} "
                "GROUP BY 1, model, platform ORDER BY 1, model, platform",
                *params,
            )
        return [DayUsage(int(r[0]), r[1], r[2], int(r[3]), float(r[4])) for r in rows]

    async def latency_by_day(self, bounds: Sequence[float]) -> list[DayLatency]:
        day, where, params = _day_of(bounds)
        answered = ", ".join(f"'{word}'" for word in ANSWERED)
        # Nearest rank: the ceil(p * n / 100)-th fastest turn of the day.
        sql = (
            f"WITH t AS (SELECT {day} AS day, latency_s FROM turn_log "
            f"WHERE {where} AND outcome IN ({answered})), "
            "r AS (SELECT day, latency_s, "
            "ROW_NUMBER() OVER (PARTITION BY day ORDER BY latency_s) AS rn, "
            "COUNT(*) OVER (PARTITION BY day) AS n FROM t) "
            "SELECT day, n, MIN(CASE WHEN rn = (n * 50 + 99) / 100 THEN latency_s END), "
            "MIN(CASE WHEN rn = (n * 95 + 99) / 100 THEN latency_s END) "
            "FROM r GROUP BY day, n ORDER BY day"
        )
        async with self._read() as session:
            rows = await session.fetch(sql, *params)
        return [DayLatency(int(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in rows]

    async def outcome_counts(self, since: float) -> list[OutcomeCount]:
        async with self._read() as session:
            rows = await session.fetch(
                "SELECT outcome, reason, COUNT(*) FROM turn_log WHERE created_at >= $1 "
                "GROUP BY outcome, reason ORDER BY COUNT(*) DESC, outcome, reason",
                since,
            )
        return [OutcomeCount(r[0], r[1], int(r[2])) for r in rows]

    async def top_people(self, since: float, limit: int = 10) -> list[Spender]:
        async with self._read() as session:
            rows = await session.fetch(
                "SELECT platform, author_id, SUM(images_generated), SUM(cost_usd) FROM usage_log "
                "WHERE created_at >= $1 GROUP BY platform, author_id "
                "ORDER BY SUM(cost_usd) DESC, SUM(images_generated) DESC, platform, author_id LIMIT $2",
                since,
                limit,
            )
        return [Spender(r[0], "", "", r[1], int(r[2]), float(r[3])) for r in rows]

    async def top_channels(self, since: float, limit: int = 10) -> list[Spender]:
        async with self._read() as session:
            rows = await session.fetch(
                "SELECT platform, workspace, channel, SUM(images_generated), SUM(cost_usd) "
                "FROM usage_log WHERE created_at >= $1 GROUP BY platform, workspace, channel "
                "ORDER BY SUM(cost_usd) DESC, SUM(images_generated) DESC, platform, workspace, channel "
                "LIMIT $2",
                since,
                limit,
            )
        return [Spender(r[0], r[1], r[2], "", int(r[3]), float(r[4])) for r in rows]

    async def processes(self) -> list[ProcessSeen]:
        """No leases on SQLite: one process has the file (PostgreSQL reads its leases)."""
        return []

    def report_platforms(self, states: Mapping[str, str]) -> None:
        """No leases on SQLite: the dashboard shows the one process's own health checks."""

    async def recent_conversations(self, limit: int = 20) -> list[RecentConversation]:
        async with self._read() as session:
            rows = await session.fetch(
                "SELECT c.platform, c.workspace, c.channel, c.thread, c.updated_at, t.model_content, "
                "(SELECT COUNT(*) FROM turns AS n WHERE n.conversation_id = c.id) "
                "FROM conversations AS c LEFT JOIN turns AS t ON t.id = c.head_turn_id "
                "WHERE c.head_turn_id IS NOT NULL ORDER BY c.updated_at DESC, c.id DESC LIMIT $1",
                limit,
            )
        return [
            RecentConversation(ConversationKey(r[0], r[1], r[2], r[3]), int(r[6]), float(r[4]), _latest(r[5]))
            for r in rows
        ]


def _latest(model_content: str | None) -> str | None:
    """The last image the model answered with, as a blob hash."""
    if not model_content:
        return None
    refs = list(blob_refs(json.loads(model_content)))
    return refs[-1] if refs else None
