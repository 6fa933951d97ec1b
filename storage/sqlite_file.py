"""Opening an SQLite database file: the one-process lock, permissions, pragmas, and migrating its schema."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from storage.errors import StoreError
from storage.migrations import Migration

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_SIDE_FILES = ("-wal", "-shm", "-journal", ".lock")


class DatabaseInUse(StoreError):
    """Another process holds the SQLite file: a bot, or ``migrate-db`` copying it."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"Another bot process (pid {pid})" if pid else "Another bot process"
        super().__init__(
            f"{who} is using the database; SQLite is for one process at a time "
            "(several processes need PostgreSQL)."
        )
        self.path = path
        self.pid = pid


@dataclass(frozen=True, slots=True)
class FileHold:
    """The open lock file; the lock lasts until ``release`` or until the process ends."""

    fd: int
    path: Path


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _open_lock_file(lock: Path) -> int:
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except PermissionError:
        # Someone else's lock file we may only read (flock works on a read-only descriptor).
        return os.open(lock, os.O_RDONLY | os.O_CLOEXEC)


def _holder(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else None


def hold_file(path: Path) -> FileHold:
    """Take the database's one-process lock: an exclusive ``flock`` on ``<name>.lock`` next to it,
    which the OS drops when the process ends however it ends. Raises ``DatabaseInUse`` at once
    if another process (or another open store in this one) holds it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = lock_path(path)
    fd = _open_lock_file(lock)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(path, _holder(fd)) from None
        with contextlib.suppress(OSError):  # a read-only lock file: the holder stays unnamed
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return FileHold(fd, lock)


def release(hold: FileHold) -> None:
    """Give the lock up. The file stays: removing it could let two processes lock two files."""
    with contextlib.suppress(OSError):
        os.ftruncate(hold.fd, 0)
    os.close(hold.fd)


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
    """Give -wal/-shm/-journal/.lock files the database file's permissions (SQLite does this when it
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
