"""Bookkeeping after a reply is posted (finishing the claim, leaving the place, releasing
reservations, recording posted ids): tried at once, and if the database is away, retried in the
background until it answers, never reported to the person, who already has their answer."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine

from storage.errors import StoreUnavailable

log = logging.getLogger(__name__)

FIRST_PAUSE_S = 0.2
LONGEST_PAUSE_S = 5.0
# Past this many jobs waiting (an outage of hours under traffic) new ones are dropped with a log
# line: what they would have cleaned up expires on its own (queue places and reservations by
# their heartbeat; an unfinished claim is at worst announced once after a restart).
MAX_WAITING = 10_000


class Aftercare:
    def __init__(
        self, *, max_waiting: int = MAX_WAITING, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self._max_waiting = max_waiting
        self._sleep = sleep
        self._jobs: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._jobs)

    async def now_or_later(self, what: str, op: Callable[[], Awaitable[object]]) -> None:
        """Run ``op`` now; if the database is away, keep retrying it in the background."""
        try:
            await op()
        except StoreUnavailable as exc:
            self.later(what, op, exc)
        except Exception:
            log.exception("bookkeeping failed", extra={"job": what})

    def soon(self, what: str, op: Callable[[], Awaitable[object]]) -> None:
        """``now_or_later`` without waiting for the first try."""
        self.track(self.now_or_later(what, op))

    def track(self, work: Coroutine[object, object, None]) -> None:
        """Keep a background job alive (and counted, and drained at a stop) until it is done."""
        task = asyncio.ensure_future(work)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    def later(self, what: str, op: Callable[[], Awaitable[object]], exc: BaseException | None = None) -> None:
        if len(self._jobs) >= self._max_waiting:
            log.error("bookkeeping dropped: too much is waiting for the database", extra={"job": what})
            return
        log.info("bookkeeping waits for the database", extra={"job": what, "error": str(exc or "")})
        self.track(self._retry(what, op))

    async def _retry(self, what: str, op: Callable[[], Awaitable[object]]) -> None:
        pause = FIRST_PAUSE_S
        while True:
            await self._sleep(pause * random.uniform(0.5, 1.0))
            try:
                await op()
            except StoreUnavailable:
                pause = min(pause * 2, LONGEST_PAUSE_S)
                continue
            except Exception:
                log.exception("bookkeeping failed", extra={"job": what})
            return

    async def drain(self, grace_s: float) -> bool:
        """At a stop: give waiting jobs up to ``grace_s`` to finish; True if none are left."""
        if not self._jobs:
            return True
        _, pending = await asyncio.wait(list(self._jobs), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._jobs.difference_update(pending)
        if pending:
            log.warning("bookkeeping left undone at stop", extra={"jobs": len(pending)})
        return not pending
