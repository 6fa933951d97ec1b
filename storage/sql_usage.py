"""The usage ledger's queries (sums over usage_log, which outlives forgetting), for both databases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage.protocol import UsageCount, UsageQuery
from storage.records import Usage
from storage.sql_session import Session

_TOTALS = (
    "SELECT COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
    "COALESCE(SUM(output_tokens), 0) AS output_tokens, "
    "COALESCE(SUM(thought_tokens), 0) AS thought_tokens, "
    "COALESCE(SUM(total_tokens), 0) AS total_tokens, "
    "COALESCE(SUM(images_generated), 0) AS images_generated, "
    "COALESCE(SUM(cost_usd), 0) AS cost_usd "
)


def _usage_filter(
    since: float, params: list[Any] | None = None, **equal: str | None
) -> tuple[str, list[Any]]:
    """A WHERE clause over usage_log (alias u) for a time window and optional exact matches;
    its parameters are appended to ``params`` (numbered after those already there)."""
    params = [] if params is None else params
    params.append(since)
    clauses = [f"u.created_at >= ${len(params)}"]
    for column, value in equal.items():
        if value is not None:
            params.append(value)
            clauses.append(f"u.{column} = ${len(params)}")
    return " AND ".join(clauses), params


async def _by_modality(session: Session, column: str, where: str, params: list[Any]) -> dict[str, int]:
    dialect = session.dialect
    entries = dialect.json_entries.format(column=f"u.{column}")
    rows = await session.fetch(
        f"SELECT j.key, SUM({dialect.json_number}) FROM usage_log AS u, {entries} AS j "
        f"WHERE {where} GROUP BY j.key ORDER BY j.key",
        *params,
    )
    return {row[0]: int(row[1]) for row in rows}


async def usage_since(
    session: Session, since: float, *, author_id: str | None, platform: str | None
) -> Usage:
    where, params = _usage_filter(since, author_id=author_id, platform=platform)
    totals = await session.fetchrow(f"{_TOTALS} FROM usage_log AS u WHERE {where}", *params)
    assert totals is not None  # an aggregate or an upsert's RETURNING: one row
    return Usage(
        prompt_tokens=int(totals["prompt_tokens"]),
        output_tokens=int(totals["output_tokens"]),
        thought_tokens=int(totals["thought_tokens"]),
        total_tokens=int(totals["total_tokens"]),
        prompt_by_modality=await _by_modality(session, "prompt_by_modality", where, params),
        output_by_modality=await _by_modality(session, "output_by_modality", where, params),
        images_generated=int(totals["images_generated"]),
        cost_usd=float(totals["cost_usd"]),
    )


async def count_images(
    session: Session,
    since: float,
    *,
    author_id: str | None = None,
    platform: str | None = None,
    workspace: str | None = None,
    channel: str | None = None,
) -> tuple[int, float | None]:
    where, params = _usage_filter(
        since, author_id=author_id, platform=platform, workspace=workspace, channel=channel
    )
    row = await session.fetchrow(
        "SELECT COALESCE(SUM(images_generated), 0), "
        "MIN(CASE WHEN images_generated > 0 THEN created_at END) "
        f"FROM usage_log AS u WHERE {where}",
        *params,
    )
    assert row is not None  # an aggregate or an upsert's RETURNING: one row
    return int(row[0]), row[1]


async def cost_since(session: Session, since: float) -> float:
    total = await session.fetchval(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_log WHERE created_at >= $1", since
    )
    return float(total)


async def usage_counts(session: Session, queries: Sequence[UsageQuery]) -> list[UsageCount]:
    """Each query's images, oldest image turn and cost, as columns of one aggregate over the rows
    any of them matches."""
    if not queries:
        return []
    params: list[Any] = []
    columns: list[str] = []
    matches: list[str] = []
    for q in queries:
        match, _ = _usage_filter(
            q.since,
            params,
            author_id=q.author_id,
            platform=q.platform,
            workspace=q.workspace,
            channel=q.channel,
        )
        matches.append(f"({match})")
        columns += [
            f"COALESCE(SUM(CASE WHEN {match} THEN u.images_generated END), 0)",
            f"MIN(CASE WHEN {match} AND u.images_generated > 0 THEN u.created_at END)",
            f"COALESCE(SUM(CASE WHEN {match} THEN u.cost_usd END), 0)",
        ]
    row = await session.fetchrow(
        f"SELECT {', '.join(columns)} FROM usage_log AS u WHERE {' OR '.join(matches)}", *params
    )
    assert row is not None  # an aggregate: one row
    return [UsageCount(int(row[3 * i]), row[3 * i + 1], float(row[3 * i + 2])) for i in range(len(queries))]
