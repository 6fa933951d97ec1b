"""The seam between the shared queries and a driver: a ``Session`` runs statements written once, in
PostgreSQL's ``$n`` style, on one connection; a ``Dialect`` names what the two databases spell apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Rows are read by position or by column name: sqlite3.Row and asyncpg.Record both allow it.
Row = Any

# Where a statement compares a column with a list of values (``fetch_in``, ``execute_in``).
VALUES = "{values}"


@dataclass(frozen=True, slots=True)
class Dialect:
    """What the shared queries spell differently on each database."""

    name: str
    # Whether rows must be locked to serialise writers (PostgreSQL); SQLite has one writer anyway.
    locks_rows: bool
    # Appended to a SELECT that reads rows a write then depends on.
    for_update: str
    for_key_share: str
    # What an insert of an already stored blob does.
    blob_conflict: str
    # The key/value pairs of a JSON object column ({column}) and how to sum a value.
    json_entries: str
    json_number: str
    # Rows of several columns ({columns}) gathered into one JSON array of arrays, so a statement
    # can carry them beside its own result (NULL or "[]" for none).
    json_rows: str


class Session(Protocol):
    """One connection's statements; inside a transaction when the store opened one."""

    dialect: Dialect

    async def fetch(self, sql: str, *params: Any) -> Sequence[Row]: ...

    async def fetchrow(self, sql: str, *params: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *params: Any) -> Any: ...

    async def execute(self, sql: str, *params: Any) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch_in(self, sql: str, values: Sequence[str]) -> list[Row]:
        """Rows of ``sql`` whose ``{values}`` is ``= ANY`` / ``IN`` the given texts (the only
        parameter); none for no values."""
        ...

    async def execute_in(self, sql: str, values: Sequence[str]) -> None:
        """``execute`` with ``{values}`` as in ``fetch_in``; nothing runs for no values."""
        ...
