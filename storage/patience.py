"""Riding out a database outage: work that finds the database away waits and retries, up to
``DATABASE_OUTAGE_S`` counted from when the outage began, then gives up with one sentence."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from storage.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Retries back off from the first pause to the longest, with jitter, so a returning database is
# used within about a second and held work does not reconnect in lock step.
FIRST_PAUSE_S = 0.05
LONGEST_PAUSE_S = 1.0


class Patience:
    """Shared by everything of one process that reaches the store.

    An outage starts at the first failure and ends at the next success. Work that fails waits
    until ``outage_s`` after the outage began (not after it came along): once the database has
    been away that long, new work gives up at once instead of each message waiting anew. At most
    ``max_held`` calls wait at once; beyond that a call gives up at once, so a long outage under
    heavy traffic costs sentences, not memory.
    """

    def __init__(
        self,
        outage_s: float,
        *,
        max_held: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.outage_s = outage_s
        self._max_held = max_held
        self._clock = clock
        self._sleep = sleep
        self._down_since: float | None = None
        self._gave_up = 0
        self.held = 0

    @property
    def down_for(self) -> float | None:
        """Seconds since the current outage began, or None while the database answers."""
        return None if self._down_since is None else self._clock() - self._down_since

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        """``op()``, retried while it raises ``StoreUnavailable``; re-raises it once the outage
        has lasted ``outage_s`` (or too much work is already waiting)."""
        deadline: float | None = None
        pause = FIRST_PAUSE_S
        while True:
            try:
                result = await op()
            except StoreUnavailable as exc:
                deadline = self._failed(exc) if deadline is None else deadline
                now = self._clock()
                if now >= deadline or (pause == FIRST_PAUSE_S and self.held >= self._max_held):
                    self._gave_up += 1
                    raise
                self.held += 1
                try:
                    await self._sleep(min(pause * random.uniform(0.5, 1.0), deadline - now))
                finally:
                    self.held -= 1
                pause = min(pause * 2, LONGEST_PAUSE_S)
                continue
            self._succeeded()
            return result

    def _failed(self, exc: StoreUnavailable) -> float:
        """The deadline of a call that just failed for the first time."""
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning(
                "database unavailable; holding work until it is back",
                extra={"error": str(exc), "outage_s": self.outage_s},
            )
        return self._down_since + self.outage_s

    def _succeeded(self) -> None:
        if self._down_since is None:
            return
        down_s = self._clock() - self._down_since
        self._down_since = None
        log.info(
            "database is back",
            extra={"down_s": round(down_s, 1), "gave_up": self._gave_up},
        )
        self._gave_up = 0
