"""This process's lease in PostgreSQL: who is alive, so a dead process's work is taken over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg

log = logging.getLogger(__name__)

# A process that has not renewed its lease for this long is dead: its turns stop blocking their
# conversations and its cut-off turns are announced. Renewed every third of it.
DEFAULT_LEASE_S = 30.0
# Liveness uses the database server's clock, the one clock every process shares.
NOW = "extract(epoch from clock_timestamp())"
LIVE_OWNERS = f"SELECT id FROM bot_processes WHERE seen_at > {NOW} - $1::float8"


class ProcessLease:
    """Registers this process, renews it in the background, and removes it on a clean stop."""

    def __init__(self, pool: asyncpg.Pool, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.id = uuid.uuid4().hex
        self.lease_s = lease_s
        self._pool = pool
        self._renewing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._pool.execute(
            f"INSERT INTO bot_processes (id, started_at, seen_at) VALUES ($1, {NOW}, {NOW})", self.id
        )
        self._renewing = asyncio.create_task(self._renew())

    async def stop(self) -> None:
        task, self._renewing = self._renewing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Its unfinished turns become a dead process's: announced by whoever runs next.
            await self._pool.execute("DELETE FROM bot_processes WHERE id = $1", self.id)
            await self._pool.execute("DELETE FROM turn_queue WHERE owner = $1", self.id)
            await self._pool.execute("DELETE FROM limit_reservations WHERE owner = $1", self.id)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await self._pool.execute(f"UPDATE bot_processes SET seen_at = {NOW} WHERE id = $1", self.id)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("could not renew the process lease", extra={"error": type(exc).__name__})
