"""Copies a SQLite database into an empty PostgreSQL one, row for row (``python -m bot migrate-db``)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import asyncpg

from storage.errors import StoreError
from storage.migrations import LATEST_VERSION
from storage.postgres_store import PostgresStore

# Parents before children, so every foreign key holds as rows arrive. Columns are the same
# on both sides; ids are kept, so buttons and reply-to-an-image keep pointing at their turns.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "conversations",
        ("id", "platform", "workspace", "channel", "thread", "head_turn_id", "created_at", "updated_at"),
    ),
    (
        "turns",
        (
            "id", "conversation_id", "parent_id", "user_content", "model_content", "model", "author_id",
            "created_at", "prompt_tokens", "output_tokens", "thought_tokens", "total_tokens",
            "images_generated", "prompt_by_modality", "output_by_modality", "cost_usd",
        ),
    ),
    ("blobs", ("sha256", "mime_type", "size", "data")),
    ("turn_blobs", ("turn_id", "sha256")),
    ("settings", ("scope", "name", "value")),
    (
        "processed_messages",
        ("platform", "channel", "message_id", "claimed_at", "workspace", "thread", "finished_at"),
    ),
    ("posted_messages", ("platform", "channel", "message_id", "turn_id")),
    (
        "usage_log",
        (
            "id", "turn_id", "author_id", "model", "created_at", "prompt_tokens", "output_tokens",
            "thought_tokens", "total_tokens", "images_generated", "prompt_by_modality",
            "output_by_modality", "platform", "workspace", "channel", "cost_usd",
        ),
    ),
)  # fmt: skip
_IDENTITIES = ("conversations", "turns", "usage_log")
# Rows per COPY batch: bounds memory when blobs are large.
_BATCH = 200


class TargetNotEmpty(StoreError):
    """The PostgreSQL database already holds bot data."""


@dataclass(frozen=True, slots=True)
class CopyReport:
    counts: dict[str, int]

    def summary(self) -> str:
        c = self.counts
        return (
            f"{c['conversations']} conversations, {c['turns']} turns, {c['blobs']} images, "
            f"{c['settings']} settings, {c['processed_messages']} claimed messages, "
            f"{c['posted_messages']} posted messages and {c['usage_log']} usage records"
        )


def _read_only_uri(path: Path) -> str | None:
    return f"{path.resolve().as_uri()}?mode=ro" if path.is_file() else None


async def _open_source(path: Path) -> aiosqlite.Connection:
    """The SQLite file, read-only: nothing in it (or next to it) is changed."""
    uri = await asyncio.to_thread(_read_only_uri, path)
    if uri is None:
        raise StoreError(f"There is no SQLite database at {path}; nothing to migrate.")
    source = await aiosqlite.connect(uri, uri=True)
    try:
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
    async with source.execute(f"SELECT {', '.join(columns)} FROM {table}{order}") as cursor:
        while rows := await cursor.fetchmany(_BATCH):
            await conn.copy_records_to_table(table, records=[tuple(r) for r in rows], columns=list(columns))
            copied += len(rows)
    return copied


async def _advance_identities(source: aiosqlite.Connection, conn: asyncpg.Connection) -> None:
    """Start each id sequence after every id SQLite ever handed out, including forgotten turns'
    (kept in sqlite_sequence), so no id is used twice."""
    used = dict(await source.execute_fetchall("SELECT name, seq FROM sqlite_sequence"))
    for table in _IDENTITIES:
        highest = max(
            int(used.get(table, 0)), int(await conn.fetchval(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
        )
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), $1, false)", highest + 1)


async def copy_sqlite_to_postgres(path: Path, url: str) -> CopyReport:
    """Copy everything from the SQLite file at ``path`` into the (empty) database at ``url`` in
    one transaction: either all of it arrives or nothing does. The source is only read."""
    source = await _open_source(path)
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
        finally:
            await conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"Could not read {path}: {exc}") from exc
    finally:
        await source.close()
    return CopyReport(counts)
