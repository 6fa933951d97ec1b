"""The usage ledger's queries on PostgreSQL (sums over usage_log, which outlives forgetting)."""

from __future__ import annotations

from typing import Any

import asyncpg

from storage.records import Usage


def _usage_filter(since: float, **equal: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause over usage_log (alias u) for a time window and optional exact matches."""
    clauses = ["u.created_at >= $1"]
    params: list[Any] = [since]
    for column, value in equal.items():
        if value is not None:
            params.append(value)
            clauses.append(f"u.{column} = ${len(params)}")
    return " AND ".join(clauses), params


async def usage_since(
    conn: asyncpg.Connection, since: float, *, author_id: str | None, platform: str | None
) -> Usage:
    where, params = _usage_filter(since, author_id=author_id, platform=platform)
    totals = await conn.fetchrow(
        "SELECT COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
        "COALESCE(SUM(output_tokens), 0) AS output_tokens, "
        "COALESCE(SUM(thought_tokens), 0) AS thought_tokens, "
        "COALESCE(SUM(total_tokens), 0) AS total_tokens, "
        "COALESCE(SUM(images_generated), 0) AS images_generated, "
        "COALESCE(SUM(cost_usd), 0) AS cost_usd "
        f"FROM usage_log AS u WHERE {where}",
        *params,
    )
    by_modality: dict[str, dict[str, int]] = {}
    for column in ("prompt_by_modality", "output_by_modality"):
        # The maps are stored as text (like the records); cast to sum them by key.
        rows = await conn.fetch(
            f"SELECT j.key, SUM(j.value::bigint) FROM usage_log AS u, "
            f"jsonb_each_text(u.{column}::jsonb) AS j WHERE {where} GROUP BY j.key ORDER BY j.key",
            *params,
        )
        by_modality[column] = {row[0]: int(row[1]) for row in rows}
    return Usage(
        prompt_tokens=int(totals["prompt_tokens"]),
        output_tokens=int(totals["output_tokens"]),
        thought_tokens=int(totals["thought_tokens"]),
        total_tokens=int(totals["total_tokens"]),
        prompt_by_modality=by_modality["prompt_by_modality"],
        output_by_modality=by_modality["output_by_modality"],
        images_generated=int(totals["images_generated"]),
        cost_usd=float(totals["cost_usd"]),
    )


async def count_images(
    conn: asyncpg.Connection,
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
    row = await conn.fetchrow(
        "SELECT COALESCE(SUM(images_generated), 0), "
        "MIN(CASE WHEN images_generated > 0 THEN created_at END) "
        f"FROM usage_log AS u WHERE {where}",
        *params,
    )
    return int(row[0]), row[1]


async def cost_since(conn: asyncpg.Connection, since: float) -> float:
    total = await conn.fetchval(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_log WHERE created_at >= $1", since
    )
    return float(total)
