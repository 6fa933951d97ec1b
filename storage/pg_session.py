"""Running the shared statements on asyncpg: ``$n`` is native, a list is one text array."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from storage.sql_session import VALUES, Dialect, Row

POSTGRES = Dialect(
    name="postgresql",
    locks_rows=True,
    for_update=" FOR UPDATE",
    for_key_share=" FOR KEY SHARE",
    # DO UPDATE, not DO NOTHING: it locks an existing row (or, if a forget deleted it meanwhile,
    # inserts it again), so the blob is there when the turn commits.
    blob_conflict="DO UPDATE SET size = EXCLUDED.size",
    # The maps are stored as text (like the records); cast to sum them by key.
    json_entries="jsonb_each_text({column}::jsonb)",
    json_number="j.value::bigint",
    json_rows="json_agg(json_build_array({columns}))::text",
)

_ANY = "= ANY($1::text[])"
# asyncpg's executemany is slow for large values: storing a 1.5 MB image took 2.2 ms against
# 0.46 ms with execute when it was stored already, and 7.0 against 6.3 ms when new (four new
# ones: 26 against 23 ms). Rows carrying a value this big, or a lone row, go one by one (the
# images are stored inside the turn's transaction, so several still land together or not at all).
_LARGE_VALUE = 64 * 1024


class PgSession:
    """``storage.sql_session.Session`` on one asyncpg connection."""

    dialect = POSTGRES

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return list(await self._conn.fetch(sql, *params))

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        return await self._conn.fetchrow(sql, *params)

    async def fetchval(self, sql: str, *params: Any) -> Any:
        return await self._conn.fetchval(sql, *params)

    async def execute(self, sql: str, *params: Any) -> None:
        await self._conn.execute(sql, *params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if len(rows) == 1 or any(_large(value) for row in rows for value in row):
            for row in rows:
                await self._conn.execute(sql, *row)
        else:
            await self._conn.executemany(sql, rows)

    async def fetch_in(self, sql: str, values: Sequence[str]) -> list[Row]:
        if not values:
            return []
        return list(await self._conn.fetch(sql.replace(VALUES, _ANY), list(values)))

    async def execute_in(self, sql: str, values: Sequence[str]) -> None:
        if values:
            await self._conn.execute(sql.replace(VALUES, _ANY), list(values))


def _large(value: Any) -> bool:
    return isinstance(value, bytes | bytearray | memoryview) and len(value) >= _LARGE_VALUE
