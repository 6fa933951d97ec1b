"""Which PostgreSQL failures mean "away for now" (restart, failover, connection spike), translated
into ``storage.errors.StoreUnavailable`` so the core can hold its work and retry."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg

from storage.errors import StoreUnavailable

# Each of these leaves nothing written (a transaction that failed rolled back) and may clear by
# itself: the server restarting (57P01 admin shutdown, 57P03 starting up), a dropped or refused
# connection (08xxx, OSError), too many connections or a full disk (53xxx), a failover that
# left this connection on a standby that has become read-only (25006), a deadlock or
# serialization victim (40xxx). asyncpg raises InterfaceError when a pooled connection was
# closed under it, and InternalClientError ("cannot switch to state ...; another operation is
# in progress") for a connection the server dropped mid-operation; the pool discards it. A
# statement cancelled by statement_timeout (57014) is an operator intervention too: try again.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.TransactionRollbackError,
)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise ``StoreUnavailable`` for a failure that may clear by itself; anything else (a bug,
    a constraint) passes through unchanged."""
    try:
        yield
    except StoreUnavailable:
        raise
    except TRANSIENT as exc:
        raise StoreUnavailable(f"PostgreSQL is unavailable: {type(exc).__name__}") from exc
