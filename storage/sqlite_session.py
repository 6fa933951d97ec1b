"""Running the shared statements on aiosqlite: ``$n`` becomes SQLite's ``?n``, lists become chunks."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from storage.sql_session import VALUES, Dialect, Row

SQLITE = Dialect(
    name="sqlite",
    locks_rows=False,
    for_update="",
    for_key_share="",
    # DO NOTHING: an update would rewrite the image bytes for nothing.
    blob_conflict="DO NOTHING",
    json_entries="json_each({column})",
    json_number="j.value",
    json_rows="json_group_array(json_array({columns}))",
)

# Well under SQLite's limit on bound parameters in one statement.
CHUNK = 500


@functools.lru_cache(maxsize=512)
def to_sqlite(sql: str) -> str:
    """``$n`` placeholders as SQLite's numbered ``?n`` (the shared statements hold no ``$`` text)."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _in_list(sql: str, count: int) -> str:
    return to_sqlite(sql.replace(VALUES, "IN (" + ", ".join(f"${n}" for n in range(1, count + 1)) + ")"))


class SqliteSession:
    """``storage.sql_session.Session`` on one aiosqlite connection."""

    dialect = SQLITE

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, *params: Any) -> list[Row]:
        return list(await self._db.execute_fetchall(to_sqlite(sql), params))

    async def fetchrow(self, sql: str, *params: Any) -> Row | None:
        rows = await self.fetch(sql, *params)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *params: Any) -> Any:
        row = await self.fetchrow(sql, *params)
        return None if row is None else row[0]

    async def execute(self, sql: str, *params: Any) -> None:
        await self._db.execute(to_sqlite(sql), params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(to_sqlite(sql), rows)

    async def fetch_in(self, sql: str, values: Sequence[str]) -> list[Row]:
        found: list[Row] = []
        for chunk in chunks(values):
            found += await self._db.execute_fetchall(_in_list(sql, len(chunk)), chunk)
        return found

    async def execute_in(self, sql: str, values: Sequence[str]) -> None:
        for chunk in chunks(values):
            await self._db.execute(_in_list(sql, len(chunk)), chunk)
