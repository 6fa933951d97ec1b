"""The PostgreSQL store: a pool of asyncpg connections shared by any number of bot processes.

asyncpg rather than psycopg 3: it is asyncio-native (no thread or sync core underneath), speaks
the binary protocol (image bytes travel as raw bytea, not hex text), and has a built-in
connection pool, so the bot needs no extra pool package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg

from storage.blob_cache import BlobCache
from storage.errors import StoreError, StoreUnavailable
from storage.pg_errors import translated
from storage.pg_migrations import PG_MIGRATIONS, migrate, schema_version
from storage.pg_processes import DEFAULT_LEASE_S, LIVE_OWNERS, ProcessLease, server_up_a_lease
from storage.pg_session import PgSession
from storage.records import ConversationKey
from storage.reports import ProcessSeen
from storage.sql_store import Clock, SqlStore, handed_over

log = logging.getLogger(__name__)

IDLE_CONNECTION_S = 30.0


async def keep_session(_conn: asyncpg.Connection) -> None:
    """A pooled connection's reset: nothing beyond what asyncpg always does (roll back an open
    transaction, drop listener callbacks). Its default reset query (unlock advisory locks, close
    cursors, UNLISTEN, RESET ALL) is a round trip at every release, several per turn, for
    session state the bot never leaves behind: its locks are transaction-scoped, its cursors
    live inside transactions, and it neither listens nor sets session variables."""


class PostgresStore(SqlStore):
    """``storage.protocol.Store`` on a PostgreSQL database (``postgresql://`` or ``postgres://``).

    Every write is one transaction at READ COMMITTED; rows that decide a race are locked:
    the conversation row (upserted first) serialises appends to one conversation across
    processes, and blobs are locked before forget deletes them and while a turn references
    them, so neither side sees the other half done.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = time.time,
        max_connections: int = 10,
        lease_s: float = DEFAULT_LEASE_S,
        blob_cache: BlobCache | None = None,
    ) -> None:
        super().__init__(clock, blob_cache)
        self.url = url
        self._max_connections = max_connections
        self._lease_s = lease_s
        self._pool: asyncpg.Pool | None = None
        self._arrivals: asyncpg.Pool | None = None
        self._lease: ProcessLease | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The connection pool, for the coordination that lives next to the store."""
        return self._connections()

    @property
    def arrivals_pool(self) -> asyncpg.Pool:
        """One connection of its own for queueing arriving turns (storage.pg_coordination), so
        a burst's places are never stuck behind the main pool's traffic."""
        if self._arrivals is None:
            raise StoreError("The store is not open.")
        return self._arrivals

    @property
    def lease(self) -> ProcessLease:
        """This process's lease: its id owns claims, queued turns and reservations."""
        if self._lease is None:
            raise StoreError("The store is not open.")
        return self._lease

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            raise StoreError("The store is already open.")
        try:
            # Connections a burst opened go back to the server after a short idle spell: where
            # processes share a connection limit, one's idle connections would starve another.
            pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._max_connections,
                max_inactive_connection_lifetime=IDLE_CONNECTION_S,
                reset=keep_session,
            )
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise StoreError(f"Could not connect to PostgreSQL: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn, PG_MIGRATIONS)
            arrivals = await asyncpg.create_pool(self.url, min_size=1, max_size=1, reset=keep_session)
        except BaseException:
            await pool.close()
            raise
        try:
            lease = ProcessLease(pool, self._lease_s)
            await lease.start()
        except BaseException:
            await asyncio.gather(pool.close(), arrivals.close())
            raise
        self._pool, self._arrivals, self._lease = pool, arrivals, lease

    async def close(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        arrivals, self._arrivals = self._arrivals, None
        if arrivals is not None:
            await arrivals.close()

    async def schema_version(self) -> int:
        async with self._connected() as conn:
            return await schema_version(conn)

    async def ping(self) -> None:
        # No time limit here: bot.health bounds the whole check. A query cut off on a silent
        # connection still holds it until asyncpg gives up on it, so a limit here would not
        # make this return sooner.
        try:
            async with self._connected() as conn:
                await conn.fetchval("SELECT 1")
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"PostgreSQL does not answer: {type(exc.__cause__).__name__}") from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL does not answer: {type(exc).__name__}") from exc

    # -- what several processes sharing the database need --------------------------------

    def _claim_extras(self) -> dict[str, Any]:
        return {"owner": self.lease.id}

    async def take_interrupted(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        # One UPDATE hands them to this process and returns them, so each is taken by one
        # process at a time; claims of a live process (a rolling deploy's other half) are its
        # own business. They stay unfinished until the person is told: if this process dies
        # first, they are a dead process's again and someone else takes them. Right after an
        # outage every lease looks lapsed: nobody is judged until this process has been in
        # touch for a lease, and the server has been up that long.
        if not self.lease.may_judge_others():
            return []
        async with self._read() as session:
            rows = await session.fetch(
                "UPDATE processed_messages SET owner = $3 "
                "WHERE platform = $1 AND finished_at IS NULL AND claimed_at > $2 "
                f"AND (owner IS NULL OR (owner <> $3 AND owner NOT IN ({LIVE_OWNERS.replace('$1', '$4')} "
                # A process still registered is given the benefit of the doubt while the server
                # has run less than a lease: it could not renew while the server was down.
                f"OR NOT {server_up_a_lease(4)}))) "
                "RETURNING workspace, channel, thread, message_id, claimed_at",
                platform,
                claimed_after,
                self.lease.id,
                self.lease.lease_s,
            )
        return handed_over(platform, rows)

    async def processes(self) -> list[ProcessSeen]:
        async with self._read() as session:
            rows = await session.fetch(
                "SELECT id, started_at, seen_at, platforms FROM bot_processes ORDER BY started_at, id"
            )
        return [
            ProcessSeen(r[0], float(r[1]), float(r[2]), r[0] == self.lease.id, platform_states(r[3]))
            for r in rows
        ]

    def report_platforms(self, states: Mapping[str, str]) -> None:
        self.lease.report_platforms(states)

    # -- connections ------------------------------------------------------------------------

    def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("The store is not open.")
        return self._pool

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for single statements (each commits on its own)."""
        with translated():
            async with self._connections().acquire() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[PgSession]:
        async with self._connected() as conn:
            yield PgSession(conn)

    def _write(self) -> contextlib.AbstractAsyncContextManager[PgSession]:
        return self._read()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[PgSession]:
        """One transaction: committed on success, rolled back on any error or cancellation."""
        with translated():
            async with self._connections().acquire() as conn, conn.transaction():
                yield PgSession(conn)


def platform_states(stored: str | None) -> tuple[tuple[str, str], ...]:
    """A lease's platforms and their states, by name; none when unreported or unreadable (a
    row written by another version of the bot)."""
    try:
        states = json.loads(stored) if stored else {}
    except ValueError:
        return ()
    if not isinstance(states, dict):
        return ()
    return tuple(sorted((str(name), str(word)) for name, word in states.items()))
