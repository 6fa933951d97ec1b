"""Opening an SQLite database file: permissions, pragmas, and migrating its schema."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StoreError
from storage.migrations import Migration

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_SIDE_FILES = ("-wal", "-shm", "-journal")


def newer_schema(version: int) -> StoreError:
    return StoreError(
        f"The database was written by a newer version of the bot (schema {version}); upgrade the bot."
    )


def prepare_file(path: Path) -> None:
    """Create the parent directory (0700) and the database file (0600) if they are missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def match_side_file_modes(path: Path) -> None:
    """Give -wal/-shm/-journal files the database file's permissions (SQLite does this when it
    creates them; this also covers files left behind by another program)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(side.stat().st_mode) != mode:
                os.chmod(side, mode)
        except FileNotFoundError:
            continue


async def pragma(db: aiosqlite.Connection, sql: str) -> Any:
    rows = await db.execute_fetchall(sql)
    return next(iter(rows))[0]


async def user_version(db: aiosqlite.Connection) -> int:
    return int(await pragma(db, "PRAGMA user_version"))


async def rollback(db: aiosqlite.Connection) -> None:
    # Shielded so a cancelled caller still leaves the connection outside a transaction;
    # aiosqlite runs statements in order, so the next BEGIN queues behind this ROLLBACK.
    # OperationalError: SQLite already rolled back (e.g. after SQLITE_FULL).
    with contextlib.suppress(sqlite3.OperationalError):
        await asyncio.shield(db.execute("ROLLBACK"))


async def connect(path: Path, migrations: Sequence[Migration]) -> aiosqlite.Connection:
    """Open the file in WAL mode with foreign keys and secure delete, migrated to the latest."""
    await asyncio.to_thread(prepare_file, path)
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Refuse a newer schema before changing anything in the file.
        version = await user_version(db)
        if version > migrations[-1].version:
            raise newer_schema(version)
        mode = await pragma(db, "PRAGMA journal_mode = WAL")
        if str(mode).lower() != "wal":
            raise StoreError(f"Could not switch {path} to WAL mode (got {mode!r}).")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA secure_delete = ON")
        await migrate(db, path, migrations)
        await asyncio.to_thread(match_side_file_modes, path)
    except BaseException:
        await db.close()
        raise
    return db


async def migrate(db: aiosqlite.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    """Apply every step newer than the file's ``user_version``, one transaction each."""
    for migration in migrations:
        try:
            await db.execute("BEGIN IMMEDIATE")
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = await user_version(db)
            if current > migrations[-1].version:
                raise newer_schema(current)
            if current >= migration.version:
                await db.execute("ROLLBACK")
                continue
            if current != migration.version - 1:
                raise StoreError(
                    f"Cannot migrate {path} from schema {current} with step {migration.version}."
                )
            for statement in migration.statements:
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {int(migration.version)}")
            await db.execute("COMMIT")
        except BaseException:
            await rollback(db)
            raise
        log.info("Migrated %s to schema %d: %s", path, migration.version, migration.description)
