"""Coordination across processes sharing one PostgreSQL: turn order, limit reservations, job leases.

Turn order is a queue in a table rather than advisory locks held for a whole turn: a turn can
wait minutes for Gemini, and a session lock would pin one pooled connection per running turn
(32 per process by default) and would order waiters by who asked first, not by when people
posted. A row per arrived turn gives the posting order, survives a pool reconnect, and belongs to
a process lease, so a process that dies blocks its conversations only until its lease runs out.
Short transaction-level advisory locks serialise each decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

import asyncpg

from storage import sql_usage
from storage.aftercare import Aftercare
from storage.patience import Patience
from storage.pg_errors import translated
from storage.pg_processes import NOW, ProcessLease, server_up_a_lease
from storage.pg_session import PgSession
from storage.postgres_store import PostgresStore
from storage.protocol import UsageCount, UsageQuery
from storage.records import ConversationKey, Position

log = logging.getLogger(__name__)

# Any constant: every process takes the same one around limit checks.
LIMITS_LOCK_KEY = 0x6E62_6C6D  # "nblm"
# How often a waiting turn looks again whether its predecessors are done (backing off).
_POLL_FIRST_S = 0.02
_POLL_MAX_S = 0.25
# What turn_queue_start returns for a turn it started after a later message of its conversation
# was answered (0: not yet; 1: started).
_STARTED_LATE = 2
# After the database server (re)starts, no turn starts for this long: messages that other
# processes held through the outage retry at least every second (storage.patience), so by then
# every one of them has its place and the earliest goes first.
RESTART_SETTLE_S = 3.0


class PgTurnOrder:
    """The turn order every process sharing the database respects: the conversation's queue in
    a table. The core puts this process's own in-process order in front of it
    (``bot.turns.order.InProcessFirst``), so its own turns of a conversation queue locally."""

    def __init__(
        self,
        store: PostgresStore,
        *,
        patience: Patience | None = None,
        aftercare: Aftercare | None = None,
    ) -> None:
        self._store = store
        self.patience = patience if patience is not None else Patience(120.0)
        self.aftercare = aftercare if aftercare is not None else Aftercare()
        self._arrivals: list[tuple[str, Position, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def enter(self, key: ConversationKey, position: Position) -> _PgTicket:
        return _PgTicket(self, key, position)

    @property
    def lease(self) -> ProcessLease:
        return self._store.lease

    @property
    def pool(self) -> asyncpg.Pool:
        return self._store.pool

    async def place(self, conversation: str, position: Position) -> int:
        """Queue a turn's row, waiting out an outage; the lease renews it from then on."""
        return await self.patience.call(lambda: self.insert(conversation, position))

    async def insert(self, conversation: str, position: Position) -> int:
        """Queue a turn's row. Turns arriving together share one INSERT: a burst of hundreds
        would otherwise wait for pooled connections one by one, and a row that becomes visible
        only after the settle window lets a later message on another process start first."""
        arrival: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._arrivals.append((conversation, position, arrival))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        return await arrival

    async def _flush(self) -> None:
        while self._arrivals:
            batch, self._arrivals = self._arrivals, []
            try:
                await self._place(batch)
            except BaseException as exc:
                # Whatever went wrong, every turn of the batch hears of it rather than waiting
                # forever for a place.
                for *_, arrival in batch:
                    if not arrival.done():
                        arrival.cancel() if isinstance(
                            exc, asyncio.CancelledError
                        ) else arrival.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _place(self, batch: list[tuple[str, Position, asyncio.Future[int]]]) -> None:
        with translated():
            rows = await self._insert_rows(batch)
        ids: dict[tuple[str, int, int], list[int]] = {}
        for row in rows:
            ids.setdefault((row[1], row[2], row[3]), []).append(int(row[0]))
        placed = [int(row[0]) for row in rows]
        # Renewed from now on, so a place nobody holds any more expires on its own.
        self.lease.hold("turn_queue", placed)
        orphans = []
        for conversation, position, arrival in batch:
            row_id = ids[(conversation, position.posted_us, position.tiebreak)].pop()
            if arrival.done():  # its turn was cancelled while queued: nothing will withdraw it
                orphans.append(row_id)
            else:
                arrival.set_result(row_id)
        if orphans:
            self.lease.let_go("turn_queue", orphans)
            self.aftercare.soon("withdraw queued turns", lambda: self._delete(orphans))

    async def _insert_rows(
        self, batch: list[tuple[str, Position, asyncio.Future[int]]]
    ) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._store.arrivals_pool.fetch(
            "INSERT INTO turn_queue (conversation, posted_us, tiebreak, owner) "
            "SELECT c, p, t, $4 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(c, p, t) "
            "RETURNING id, conversation, posted_us, tiebreak",
            [c for c, _, _ in batch],
            [p.posted_us for _, p, _ in batch],
            [p.tiebreak for _, p, _ in batch],
            self.lease.id,
        )
        return rows

    async def _delete(self, rows: list[int]) -> None:
        with translated():
            await self.pool.execute("DELETE FROM turn_queue WHERE id = ANY($1::bigint[])", rows)

    async def wait_turn(self, conversation: str, row: int, position: Position) -> bool:
        """Return once no live earlier turn of the conversation is queued or running: whether a
        later message of the conversation was answered already (this one arrived late)."""
        pause = _POLL_FIRST_S
        while not (started := await self.patience.call(lambda: self._try_start(conversation, row, position))):
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)
        return started == _STARTED_LATE

    async def _try_start(self, conversation: str, row: int, position: Position) -> int:
        """0: not yet; 1: started; 2: started late (see ``storage.pg_migrations.TURN_QUEUE_START``)."""
        with translated():
            started = await self.pool.fetchval(
                "SELECT turn_queue_start($1, $2, $3, $4, $5, $6, $7, $8)",
                conversation,
                row,
                position.posted_us,
                position.tiebreak,
                self.lease.id,
                RESTART_SETTLE_S,
                self.lease.may_judge_others(),
                self.lease.lease_s,
            )
        return int(started)

    async def finish(self, conversation: str, row: int, position: Position, *, answered: bool) -> None:
        """Mark the conversation answered up to this turn and free its place, now or, while
        the database is away, in the background: the turn has already been answered."""
        self.lease.let_go("turn_queue", [row])
        await self.aftercare.now_or_later(
            "leave the conversation's queue",
            lambda: self._finish(conversation, row, position, answered=answered),
        )

    async def _finish(self, conversation: str, row: int, position: Position, *, answered: bool) -> None:
        with translated():
            await self._finish_rows(conversation, row, position, answered=answered)

    async def _finish_rows(self, conversation: str, row: int, position: Position, *, answered: bool) -> None:
        # One statement, so one round trip and all or nothing: the mark and the freed place.
        if not answered:
            await self.pool.execute("DELETE FROM turn_queue WHERE id = $1", row)
            return
        await self.pool.execute(
            "WITH mark AS (INSERT INTO answered_marks (conversation, posted_us, tiebreak, answered_at) "
            f"VALUES ($1, $2, $3, {NOW}) ON CONFLICT (conversation) DO UPDATE SET "
            "posted_us = excluded.posted_us, tiebreak = excluded.tiebreak, "
            "answered_at = excluded.answered_at WHERE (answered_marks.posted_us, "
            "answered_marks.tiebreak) < (excluded.posted_us, excluded.tiebreak)) "
            "DELETE FROM turn_queue WHERE id = $4",
            conversation,
            position.posted_us,
            position.tiebreak,
            row,
        )

    def withdraw(self, row: asyncio.Task[int]) -> None:
        """Give up a place without running, in the background (the place may still be on its
        way in, or the database away)."""

        async def when_placed() -> None:
            try:
                row_id = await row
            except Exception:  # never placed: nothing to withdraw
                return
            self.lease.let_go("turn_queue", [row_id])
            await self.aftercare.now_or_later("withdraw a queued turn", lambda: self._delete([row_id]))

        self.aftercare.track(when_placed())


class _PgTicket:
    """A turn's row in the conversation's queue, inserted at once (in a task started on
    arrival) so other processes see it as early as possible."""

    def __init__(self, order: PgTurnOrder, key: ConversationKey, position: Position):
        self._order = order
        self._conversation = str(key)
        self._position = position
        self._row: asyncio.Task[int] = asyncio.ensure_future(order.place(self._conversation, position))
        self._late = False
        self._state = "waiting"  # waiting -> running -> done

    @property
    def late(self) -> bool:
        return self._late

    def ahead(self) -> int:
        return 0  # the in-process order in front of this one counts the turns ahead

    async def placed(self) -> None:
        """Wait until every process can see this turn's place."""
        await self._row

    async def __aenter__(self) -> _PgTicket:
        try:
            row = await self._row
            self._late = await self._order.wait_turn(self._conversation, row, self._position)
        except BaseException:
            self.leave()
            raise
        self._state = "running"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._state == "running":
            self._state = "done"
            await self._order.finish(self._conversation, await self._row, self._position, answered=True)

    def leave(self) -> None:
        if self._state != "done":
            self._state = "done"
            self._order.withdraw(self._row)


class PgReservations:
    """``bot.limits.quotas.Reservations`` across processes: each check runs in one transaction holding
    a deployment-wide lock, and admitted turns are rows (renewed by this process's lease while
    their turn runs) until their usage is recorded, so N processes cannot all pass a limit only
    some of them should."""

    def __init__(self, store: PostgresStore, *, aftercare: Aftercare | None = None) -> None:
        self._store = store
        self.aftercare = aftercare if aftercare is not None else Aftercare()
        # One check of this process at a time waits for the database lock: a check holds a
        # pooled connection while it waits, and the holder of the lock needs a second one to
        # count usage, so a burst of checks must not pin every connection of the pool.
        self._one_here = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def checking(self, usage: object = None) -> AsyncIterator[_PgLedger]:
        """``usage`` is not needed: the ledger counts on the check's own connection."""
        lease = self._store.lease
        with translated():
            async with self._one_here, self._store.pool.acquire() as conn:
                # One round trip opens the transaction and takes the lock: a query without
                # parameters goes as a simple query, which may hold several statements, and a
                # BEGIN among them opens a transaction that outlives the query.
                await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({LIMITS_LOCK_KEY})")
                ledger = _PgLedger(conn, lease)
                try:
                    yield ledger
                except BaseException:
                    await _roll_back(conn)
                    raise
                await conn.execute("COMMIT")
        # Committed: renewed from now on, so a reservation whose release fails expires.
        lease.hold("limit_reservations", ledger.reserved)

    async def release(self, token: object) -> None:
        if not token:
            return
        ids = list(token)  # type: ignore[call-overload]  # the rows' ids, as _PgLedger.reserve gave
        self._store.lease.let_go("limit_reservations", ids)
        await self.aftercare.now_or_later("release limit reservations", lambda: self._delete(ids))

    async def _delete(self, ids: list[int]) -> None:
        with translated():
            await self._store.pool.execute("DELETE FROM limit_reservations WHERE id = ANY($1::bigint[])", ids)


class _PgLedger:
    def __init__(self, conn: asyncpg.Connection, lease: ProcessLease) -> None:
        self._conn = conn
        self._lease = lease
        self.reserved: list[int] = []

    async def usage_counts(self, queries: Sequence[UsageQuery]) -> list[UsageCount]:
        """As the store's ``usage_counts``, on the check's connection."""
        return await sql_usage.usage_counts(PgSession(self._conn), queries)

    async def pending(self, scope: tuple[str, ...]) -> int:
        # A reservation nobody has renewed for a lease is no live turn's; but right after an
        # outage every one looks so, until their processes renew them.
        return int(
            await self._conn.fetchval(
                "SELECT count(*) FROM limit_reservations WHERE scope = $1 AND "
                f"(seen_at >= {NOW} - $2::float8 OR NOT $3::bool OR NOT {server_up_a_lease(2)})",
                _scope_text(scope),
                self._lease.lease_s,
                self._lease.may_judge_others(),
            )
        )

    async def reserve(self, scopes: Sequence[tuple[str, ...]]) -> object:
        rows = await self._conn.fetch(
            "INSERT INTO limit_reservations (owner, scope) SELECT $1, unnest($2::text[]) RETURNING id",
            self._lease.id,
            [_scope_text(s) for s in scopes],
        )
        ids = [int(r[0]) for r in rows]
        self.reserved += ids
        return ids


class PgJobLeases:
    """``bot.turns.retention.JobLeases`` across processes: a periodic job runs where its lease is."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    async def acquire(self, job: str, for_s: float) -> bool:
        owner = self._store.lease.id
        got = await self._store.pool.fetchval(
            "INSERT INTO job_leases (job, owner, lease_until) "
            f"VALUES ($1, $2, {NOW} + $3::float8) ON CONFLICT (job) DO UPDATE SET "
            "owner = excluded.owner, lease_until = excluded.lease_until "
            f"WHERE job_leases.owner = excluded.owner OR job_leases.lease_until < {NOW} "
            "RETURNING owner",
            job,
            owner,
            for_s,
        )
        return bool(got == owner)


async def _roll_back(conn: asyncpg.Connection) -> None:
    """End a transaction opened by hand; if the connection broke, the pool's release cleans up."""
    if not conn.is_closed():
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")


def _scope_text(scope: tuple[str, ...]) -> str:
    return "|".join(scope)
