"""The SQLite store: one aiosqlite connection in WAL mode, serialised by an asyncio lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from storage import sqlite_file
from storage.blob_cache import BlobCache
from storage.errors import StoreError
from storage.migrations import MIGRATIONS
from storage.records import ConversationKey
from storage.sql_store import Clock, SqlStore, handed_over
from storage.sqlite_errors import translated
from storage.sqlite_session import SqliteSession

log = logging.getLogger(__name__)


class SqliteStore(SqlStore):
    """``storage.protocol.Store`` on one SQLite file.

    All statements go through one aiosqlite connection; an asyncio lock around every
    operation keeps coroutines from interleaving (a reader never sees another coroutine's
    uncommitted writes). Writes use ``BEGIN IMMEDIATE`` so other processes wait via
    ``busy_timeout`` instead of failing mid-transaction.
    """

    def __init__(self, path: Path, *, clock: Clock = time.time, blob_cache: BlobCache | None = None) -> None:
        super().__init__(clock, blob_cache)
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._opened_at = 0.0
        self._hold: sqlite_file.FileHold | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            raise StoreError("The store is already open.")
        # Before connecting: a second process must not even migrate the file.
        hold = await asyncio.to_thread(sqlite_file.hold_file, self.path)
        try:
            self._db = await sqlite_file.connect(self.path, MIGRATIONS)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(sqlite_file.release, hold))
            raise
        self._hold = hold
        self._opened_at = self._clock()

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            hold, self._hold = self._hold, None
            try:
                if db is not None:
                    await db.close()
            finally:
                if hold is not None:
                    await asyncio.shield(asyncio.to_thread(sqlite_file.release, hold))

    async def schema_version(self) -> int:
        async with self._connected() as db:
            return await sqlite_file.user_version(db)

    async def ping(self) -> None:
        try:
            async with self._connected() as db:
                await db.execute_fetchall("SELECT 1")
        except (sqlite3.Error, ValueError) as exc:  # aiosqlite raises ValueError once closed
            raise StoreError(f"The SQLite database does not answer: {exc}") from exc

    # -- extras beyond the protocol ---------------------------------------------------------

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate the WAL to zero bytes."""
        async with self._connected() as db:
            await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``; ["ok"] when sound."""
        async with self._connected() as db:
            integrity = [str(row[0]) for row in await db.execute_fetchall("PRAGMA integrity_check")]
            foreign = await db.execute_fetchall("PRAGMA foreign_key_check")
        problems = [p for p in integrity if p != "ok"]
        problems += [f"foreign key violation: {tuple(row)}" for row in foreign]
        return problems or ["ok"]

    # -- what only one process on one file does ---------------------------------------------

    async def take_interrupted(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        # One process uses a SQLite file, so a claim left unfinished before this store opened
        # belongs to a process that is gone; claims made since are this process's own. Taking
        # one re-stamps it as this process's (it stays unfinished until the person is told).
        async with self._transaction() as session:
            rows = await session.fetch(
                "UPDATE processed_messages SET claimed_at = $1 WHERE platform = $2 "
                "AND finished_at IS NULL AND claimed_at > $3 AND claimed_at < $4 "
                "RETURNING workspace, channel, thread, message_id, claimed_at",
                max(self._clock(), self._opened_at),
                platform,
                claimed_after,
                self._opened_at,
            )
        return handed_over(platform, rows)

    async def _after_forget(self) -> None:
        # secure_delete zeroes the freed pages, but the WAL still holds the frames that wrote
        # the image in the first place: move everything into the main file and truncate it.
        await self.checkpoint()

    # -- connections ------------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("The store is not open.")
        return self._db

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection outside any transaction (autocommit statements)."""
        async with self._lock:
            with translated():
                yield self._connection()

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[SqliteSession]:
        async with self._connected() as db:
            yield SqliteSession(db)

    def _write(self) -> contextlib.AbstractAsyncContextManager[SqliteSession]:
        return self._transaction()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[SqliteSession]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
        async with self._lock:
            db = self._connection()
            with translated():
                try:
                    # Inside the try: a cancel while BEGIN runs must not leave a transaction open.
                    await db.execute("BEGIN IMMEDIATE")
                    yield SqliteSession(db)
                    await db.execute("COMMIT")
                except BaseException:
                    await sqlite_file.rollback(db)
                    raise
