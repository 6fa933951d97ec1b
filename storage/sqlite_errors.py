"""Which SQLite failures mean "cannot write right now" (locked, disk full, read-only mount),
translated into ``storage.errors.StoreUnavailable`` so the core can hold its work and retry."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from storage.errors import StoreUnavailable

# Primary result codes (the low byte of an extended code): each leaves the failed transaction
# rolled back and may clear without a restart, once the other writer lets go, space is freed or
# the file system is writable again.
_TRANSIENT_CODES = {
    sqlite3.SQLITE_BUSY: "the database file is locked by another program",
    sqlite3.SQLITE_LOCKED: "the database file is locked",
    sqlite3.SQLITE_FULL: "the disk holding the database is full",
    sqlite3.SQLITE_READONLY: "the database file cannot be written (read-only)",
    sqlite3.SQLITE_IOERR: "the disk holding the database failed a read or write",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
}


def transient_reason(exc: BaseException) -> str | None:
    """Why ``exc`` may clear by itself, or None when it is a bug or a damaged file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.OperationalError) or code is None:
        return None
    return _TRANSIENT_CODES.get(code & 0xFF)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise ``StoreUnavailable`` for a failure that may clear by itself; anything else passes
    through unchanged."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        reason = transient_reason(exc)
        if reason is None:
            raise
        raise StoreUnavailable(f"SQLite cannot be used right now: {reason}") from exc
