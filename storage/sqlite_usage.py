"""The usage ledger's queries on SQLite (sums over usage_log, which outlives forgetting)."""

from __future__ import annotations

from typing import Any

import aiosqlite

from storage.records import Usage


def _usage_filter(since: float, **equal: str | None) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause over usage_log (alias u) for a time window and optional exact matches."""
    clauses = ["u.created_at >= ?"]
    params: list[Any] = [since]
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"u.{column} = ?")
            params.append(value)
    return " AND ".join(clauses), tuple(params)


async def usage_since(
    db: aiosqlite.Connection, since: float, *, author_id: str | None, platform: str | None
) -> Usage:
    where, params = _usage_filter(since, author_id=author_id, platform=platform)
    totals = next(
        iter(
            await db.execute_fetchall(
                "SELECT COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
                "COALESCE(SUM(output_tokens), 0) AS output_tokens, "
                "COALESCE(SUM(thought_tokens), 0) AS thought_tokens, "
                "COALESCE(SUM(total_tokens), 0) AS total_tokens, "
                "COALESCE(SUM(images_generated), 0) AS images_generated, "
                "COALESCE(SUM(cost_usd), 0) AS cost_usd "
                f"FROM usage_log AS u WHERE {where}",
                params,
            )
        )
    )
    by_modality: dict[str, dict[str, int]] = {}
    for column in ("prompt_by_modality", "output_by_modality"):
        rows = await db.execute_fetchall(
            f"SELECT j.key, SUM(j.value) FROM usage_log AS u, json_each(u.{column}) AS j "
            f"WHERE {where} GROUP BY j.key ORDER BY j.key",
            params,
        )
        by_modality[column] = {row[0]: int(row[1]) for row in rows}
    return Usage(
        prompt_tokens=totals["prompt_tokens"],
        output_tokens=totals["output_tokens"],
        thought_tokens=totals["thought_tokens"],
        total_tokens=totals["total_tokens"],
        prompt_by_modality=by_modality["prompt_by_modality"],
        output_by_modality=by_modality["output_by_modality"],
        images_generated=totals["images_generated"],
        cost_usd=float(totals["cost_usd"]),
    )


async def count_images(
    db: aiosqlite.Connection,
    since: float,
    *,
    author_id: str | None,
    platform: str | None,
    workspace: str | None,
    channel: str | None,
) -> tuple[int, float | None]:
    where, params = _usage_filter(
        since, author_id=author_id, platform=platform, workspace=workspace, channel=channel
    )
    rows = await db.execute_fetchall(
        "SELECT COALESCE(SUM(images_generated), 0), "
        "MIN(CASE WHEN images_generated > 0 THEN created_at END) "
        f"FROM usage_log AS u WHERE {where}",
        params,
    )
    count, oldest = next(iter(rows))
    return int(count), oldest


async def cost_since(db: aiosqlite.Connection, since: float) -> float:
    rows = await db.execute_fetchall(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_log WHERE created_at >= ?", (since,)
    )
    return float(next(iter(rows))[0])
