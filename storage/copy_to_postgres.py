"""Copies a SQLite database into an empty PostgreSQL one, row for row (``python -m bot migrate-db``)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import asyncpg

from storage import schema, sqlite_file
from storage.errors import StoreError
from storage.migrations import LATEST_VERSION
from storage.postgres_store import PostgresStore

# Parents before children, so every foreign key holds as rows arrive. Columns are the same
# on both sides; ids are kept, so buttons and reply-to-an-image keep pointing at their turns.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = tuple((table.name, table.names) for table in schema.TABLES)
# What a column is read as, where that differs from the column. A claim left unfinished is a
# turn cut off by the last stop that nobody was told about; unfinished in PostgreSQL, the new
# deployment would announce it as cut off, so it arrives finished (at the moment it was claimed).
_READ_AS: dict[tuple[str, str], str] = {
    ("processed_messages", "finished_at"): "COALESCE(finished_at, claimed_at)",
}
_IDENTITIES = ("conversations", "turns", "usage_log")
# Rows per COPY batch: bounds memory when blobs are large.
_BATCH = 200


class TargetNotEmpty(StoreError):
    """The PostgreSQL database already holds bot data."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    counts: dict[str, int]
    # Claimed messages whose turns the last stop cut off, copied as finished.
    cut_off: int = 0

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['conversations']} conversations, {c['turns']} turns, {c['blobs']} images, "
            f"{c['settings']} settings, {c['processed_messages']} claimed messages{self._cut_off()}, "
            f"{c['posted_messages']} posted messages and {c['usage_log']} usage records"
        )

    def _cut_off(self) -> str:
        if not self.cut_off:
            return ""
        copied = "it is" if self.cut_off == 1 else "they are"
        return (
            f" ({self.cut_off} of them cut off by the last stop and never answered; "
            f"{copied} copied as finished, so nobody is told)"
        )


def _read_only_uri(path: Path) -> str | None:
    return f"{path.resolve().as_uri()}?mode=ro" if path.is_file() else None


async def _open_source(path: Path, uri: str) -> aiosqlite.Connection:
    """The SQLite file, read-only (nothing in it is changed), inside one read transaction: every
    read that follows sees the same snapshot, whatever anyone writes meanwhile."""
    source = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        await source.execute("BEGIN")
        version = next(iter(await source.execute_fetchall("PRAGMA user_version")))[0]
    except BaseException:
        await source.close()
        raise
    if version != LATEST_VERSION:
        await source.close()
        raise StoreError(
            f"{path} is at schema {version}, not {LATEST_VERSION}; start this version of the bot on it "
            "once (it upgrades the file), then migrate."
        )
    return source


async def _require_empty(conn: asyncpg.Connection) -> None:
    for table, _ in TABLES:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise TargetNotEmpty(
                f"The PostgreSQL database already holds bot data ({table} is not empty); "
                "migrate into an empty database."
            )


async def _copy_table(
    source: aiosqlite.Connection, conn: asyncpg.Connection, table: str, columns: tuple[str, ...]
) -> int:
    copied = 0
    # Id order: a parent turn (a lower id) arrives before the turns that continue it.
    order = " ORDER BY id" if "id" in columns else ""
    read = ", ".join(_READ_AS.get((table, column), column) for column in columns)
    async with source.execute(f"SELECT {read} FROM {table}{order}") as cursor:
        while records := [tuple(row) for row in await cursor.fetchmany(_BATCH)]:
            await conn.copy_records_to_table(table, records=records, columns=list(columns))
            copied += len(records)
    return copied


async def _advance_identities(source: aiosqlite.Connection, conn: asyncpg.Connection) -> None:
    """Start each id sequence after every id SQLite ever handed out, including forgotten turns'
    (kept in sqlite_sequence), so no id is used twice."""
    used: dict[str, int] = {
        row[0]: row[1] for row in await source.execute_fetchall("SELECT name, seq FROM sqlite_sequence")
    }
    for table in _IDENTITIES:
        highest = max(
            int(used.get(table, 0)), int(await conn.fetchval(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
        )
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), $1, false)", highest + 1)


async def _cut_off_claims(source: aiosqlite.Connection) -> int:
    rows = await source.execute_fetchall("SELECT COUNT(*) FROM processed_messages WHERE finished_at IS NULL")
    return int(next(iter(rows))[0])


async def copy_sqlite_to_postgres(path: Path, url: str) -> CopyReport:
    """Copy everything from the SQLite file at ``path`` into the (empty) database at ``url`` in
    one transaction: either all of it arrives or nothing does. The source is only read, under
    the file's one-process lock (``DatabaseInUse`` while a bot holds it; no bot starts on it
    until the copy is done)."""
    uri = await asyncio.to_thread(_read_only_uri, path)
    if uri is None:
        raise StoreError(f"There is no SQLite database at {path}; nothing to migrate.")
    hold = await asyncio.to_thread(sqlite_file.hold_file, path)
    try:
        return await _copy_held(path, uri, url)
    finally:
        await asyncio.shield(asyncio.to_thread(sqlite_file.release, hold))


async def _copy_held(path: Path, uri: str, url: str) -> CopyReport:
    source = await _open_source(path, uri)
    try:
        target = PostgresStore(url)
        await target.open()  # creates the schema
        await target.close()
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await _require_empty(conn)
                counts = {table: await _copy_table(source, conn, table, cols) for table, cols in TABLES}
                await _advance_identities(source, conn)
                cut_off = await _cut_off_claims(source)
        finally:
            await conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"Could not read {path}: {exc}") from exc
    finally:
        await source.close()
    return CopyReport(counts, cut_off)
