"""This process's lease in PostgreSQL: who is alive, so a dead process's work is taken over.

The lease also renews the rows this process's work holds (queue places, limit reservations), so
a row whose work is gone (its clean-up failed while the database was away) expires on its own,
and it knows whether it has lapsed: a process that was paused or cut off longer than its lease
may have had its work taken over, and checks before storing or posting (``storage.pg_fence``).
Each renewal also writes the latest connection state of the process's platforms, for the
dashboard of every process (``report_platforms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping

import asyncpg

from storage.pg_errors import TRANSIENT

log = logging.getLogger(__name__)

# A process that has not renewed its lease for this long is dead: its turns stop blocking their
# conversations and its cut-off turns are announced. Renewed every third of it.
DEFAULT_LEASE_S = 30.0
# Liveness uses the database server's clock, the one clock every process shares.
NOW = "extract(epoch from clock_timestamp())"
LIVE_OWNERS = f"SELECT id FROM bot_processes WHERE seen_at > {NOW} - $1::float8"
# Whether the database server itself started more than a lease ago: after a restart, nobody
# could renew while it was down, so nobody is taken for dead until a lease has passed since.
SERVER_UP_A_LEASE = "(extract(epoch from pg_postmaster_start_time()) < {NOW} - ${param}::float8)"
# While renewals fail, they are retried this often (not every third of the lease), so the lease
# is back within about a second of the database.
RETRY_RENEWAL_S = 1.0
# How long the row of a process that stopped renewing is kept (see ``ProcessLease.start``).
FORGOTTEN_AFTER_S = 7 * 24 * 3600.0
# Held rows of these tables carry a ``seen_at`` the lease renews.
HELD_TABLES = ("turn_queue", "limit_reservations")


def server_up_a_lease(param: int) -> str:
    """SQL: true once the server has run longer than the lease given as parameter ``$param``."""
    return SERVER_UP_A_LEASE.format(NOW=NOW, param=param)


class ProcessLease:
    """Registers this process, renews it (and the rows its work holds) in the background, and
    removes it on a clean stop."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.lease_s = lease_s
        self._pool = pool
        self._clock = clock
        self._renewing: asyncio.Task[None] | None = None
        self._held: dict[str, set[int]] = {table: set() for table in HELD_TABLES}
        # When a renewal last reached the database (sent then, so the database's stamp is later).
        self._renewed_at = clock()
        # When a renewal last came back after the lease had lapsed (None: it never lapsed).
        self._lapse_ended_at: float | None = None
        # Since when renewals have succeeded without a failure in between.
        self._in_touch_since: float | None = clock() - lease_s
        # The platforms' connection states as JSON, written with each renewal (None: not told).
        self._platforms: str | None = None

    # -- the rows this process's work holds ----------------------------------------------

    def hold(self, table: str, ids: list[int]) -> None:
        self._held[table].update(ids)

    def let_go(self, table: str, ids: list[int]) -> None:
        self._held[table].difference_update(ids)

    def report_platforms(self, states: Mapping[str, str]) -> None:
        """Each platform's connection state (a fixed word), written with the next renewal."""
        self._platforms = json.dumps(dict(sorted(states.items())))

    # -- what the lease knows about itself ---------------------------------------------------

    def intact_since(self, moment: float) -> bool:
        """Whether the lease has been renewed in time without a lapse since ``moment`` (this
        process's monotonic clock): nobody can have taken its work for a dead process's."""
        # A margin for the round trip and the time others take to look.
        fresh = self._clock() - self._renewed_at < self.lease_s * 0.8
        return fresh and (self._lapse_ended_at is None or self._lapse_ended_at < moment)

    def may_judge_others(self) -> bool:
        """Whether this process may take others for dead: it has been in touch with the database
        for a whole lease, so anyone alive has had the time to renew (after an outage all
        leases look lapsed at once)."""
        since, now = self._in_touch_since, self._clock()
        fresh = now - self._renewed_at < self.lease_s * 0.8  # not itself just back from a pause
        return fresh and since is not None and now - since >= self.lease_s

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self._pool.execute(
            f"INSERT INTO bot_processes (id, started_at, seen_at) VALUES ($1, {NOW}, {NOW})", self.id
        )
        # Processes that died without a clean stop leave their row; once it is a week old (the
        # dashboard lists a gone process for a day) nothing reads it any more.
        await self._pool.execute(
            f"DELETE FROM bot_processes WHERE seen_at < {NOW} - $1::float8", FORGOTTEN_AFTER_S
        )
        self._renewed_at = self._clock()
        self._renewing = asyncio.create_task(self._renew_forever())

    async def stop(self) -> None:
        task, self._renewing = self._renewing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(*TRANSIENT, asyncpg.PostgresError):
            # Its unfinished turns become a dead process's: announced by whoever runs next.
            await self._pool.execute("DELETE FROM bot_processes WHERE id = $1", self.id)
            await self._pool.execute("DELETE FROM turn_queue WHERE owner = $1", self.id)
            await self._pool.execute("DELETE FROM limit_reservations WHERE owner = $1", self.id)

    async def renew(self) -> bool:
        """Renew now; True if the database took it. Safe to call beside the background renewal."""
        sent = self._clock()
        places = sorted(self._held["turn_queue"])
        reservations = sorted(self._held["limit_reservations"])
        try:
            # One round trip renews the process and every row its work holds.
            await self._pool.execute(
                "WITH places AS (UPDATE turn_queue SET seen_at = "
                f"{NOW} WHERE id = ANY($2::bigint[]) AND owner = $1), "
                f"reservations AS (UPDATE limit_reservations SET seen_at = {NOW} "
                "WHERE id = ANY($3::bigint[]) AND owner = $1) "
                f"UPDATE bot_processes SET seen_at = {NOW}, platforms = COALESCE($4, platforms) "
                "WHERE id = $1",
                self.id,
                places,
                reservations,
                self._platforms,
            )
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            self._in_touch_since = None
            log.warning("could not renew the process lease", extra={"error": type(exc).__name__})
            return False
        if sent - self._renewed_at > self.lease_s * 0.8:
            # Paused, or stuck on a silent connection: out of touch all the same.
            self._lapse_ended_at = self._in_touch_since = self._clock()
            log.warning(
                "the process lease had lapsed; its work is checked before storing or posting",
                extra={"lapsed_for_s": round(sent - self._renewed_at, 1)},
            )
        self._renewed_at = max(self._renewed_at, sent)
        if self._in_touch_since is None:
            self._in_touch_since = sent
        return True

    async def _renew_forever(self) -> None:
        renewed = True
        while True:
            await asyncio.sleep(self.lease_s / 3 if renewed else min(RETRY_RENEWAL_S, self.lease_s / 3))
            renewed = await self.renew()
