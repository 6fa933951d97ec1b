"""RETENTION_DAYS: conversations idle that long are forgotten, checked hourly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.ports import JobLeases
from bot.vocabulary import ConversationKey
from storage.protocol import Store

log = logging.getLogger(__name__)

RETENTION_SWEEP_S = 3600.0


class SoleProcess:
    """One process: it always holds every job."""

    async def acquire(self, job: str, for_s: float) -> bool:
        return True


class Retention:
    """Forgets idle conversations through ``forget`` (which waits for a turn in flight)."""

    def __init__(
        self,
        store: Store,
        days: int,
        forget: Callable[[ConversationKey], Awaitable[int]],
        jobs: JobLeases | None = None,
    ) -> None:
        self._store = store
        self._days = days
        self._forget = forget
        self._jobs = jobs or SoleProcess()

    async def apply(self) -> int:
        """Forget conversations idle for longer than the retention period; returns how many."""
        if not self._days:
            return 0
        cutoff = time.time() - self._days * 86400
        forgotten = 0
        while keys := await self._store.idle_conversations(cutoff):
            for key in keys:
                await self._forget(key)
                forgotten += 1
        if forgotten:
            log.info("retention forgot idle conversations", extra={"conversations": forgotten})
        return forgotten

    async def run(self) -> None:
        """Apply retention now and then hourly, until cancelled."""
        while True:
            try:
                # Held a little longer than a sweep's period, so only one process sweeps.
                if await self._jobs.acquire("retention", RETENTION_SWEEP_S * 1.5):
                    await self.apply()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(RETENTION_SWEEP_S)
