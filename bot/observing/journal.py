"""The turn log behind the dashboard's latency and failures: an ``Observer`` that passes everything
on to another (the metrics) and also notes how each turn ended and how long it took, written to
the store in batches off the turns' path (``run``), so every process's turns reach one table."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.observing.metrics import _platform, _word
from bot.observing.watch import Watch, turn_outcome
from bot.ports import Observer, TurnWatch
from bot.vocabulary import ModelCall
from storage.errors import StoreError
from storage.protocol import Reports
from storage.reports import TurnRecord

log = logging.getLogger(__name__)

# How often noted turns are written; at most this many wait (the oldest go first past it, so a
# long database outage costs the log its oldest entries, never memory).
FLUSH_EVERY_S = 2.0
MAX_WAITING = 10_000
# Outcomes not worth a row: a redelivered message, a message that only changed settings.
UNLOGGED = frozenset({"duplicate", "settings"})
# Model outcomes that say nothing more than the turn's own outcome.
_PLAIN = frozenset({"image", "text_only"})


def reason_of(outcome: str, model_outcomes: list[str]) -> str:
    """The more precise word: for a failed or blocked turn, how its last model call ended."""
    if outcome in ("failed", "blocked_by_safety"):
        telling = [o for o in model_outcomes if o not in _PLAIN]
        return _word(telling[-1]) if telling else "before_the_model"
    return outcome


class TurnJournal:
    """Follows turns for ``inner`` and notes each one's ending in ``store``'s turn log."""

    def __init__(
        self,
        inner: Observer,
        store: Reports,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self._inner = inner
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._waiting: deque[TurnRecord] = deque(maxlen=max_waiting)

    @contextmanager
    def turn(self, platform: str, kind: str) -> Iterator[TurnWatch]:
        started = self._monotonic()
        cancelled = False
        with self._inner.turn(platform, kind) as watch:
            try:
                yield watch
            except BaseException as exc:
                cancelled = isinstance(exc, asyncio.CancelledError)
                raise
            finally:
                self._note(watch, platform, kind, self._monotonic() - started, cancelled)

    def _note(self, watch: TurnWatch, platform: str, kind: str, seconds: float, cancelled: bool) -> None:
        status = watch.status if isinstance(watch, Watch) else None
        calls = watch.model_outcomes if isinstance(watch, Watch) else []
        outcome = turn_outcome(status, calls, cancelled=cancelled)
        if outcome in UNLOGGED:
            return
        record = TurnRecord(
            self._clock(), _platform(platform), _word(kind), outcome, reason_of(outcome, calls), seconds
        )
        self._waiting.append(record)

    async def flush(self) -> int:
        """Write what waits; on a database error it waits for the next time. Returns rows written."""
        batch = list(self._waiting)
        if not batch:
            return 0
        try:
            await self._store.record_turns(batch)
        except (StoreError, OSError) as exc:
            log.warning("turn log not written", extra={"waiting": len(batch), "error": type(exc).__name__})
            return 0
        written = {id(record) for record in batch}  # those the deque has not let go meanwhile
        while self._waiting and id(self._waiting[0]) in written:
            self._waiting.popleft()
        return len(batch)

    async def run(self, every_s: float = FLUSH_EVERY_S) -> None:
        """Flush now and then until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(every_s)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    # -- the rest of Observer, passed on ----------------------------------------------------

    def model_called(self, call: ModelCall) -> None:
        self._inner.model_called(call)

    def queue_waited(self, seconds: float) -> None:
        self._inner.queue_waited(seconds)

    def store_round_trip(self, operation: str, seconds: float) -> None:
        self._inner.store_round_trip(operation, seconds)

    def download_failed(self, platform: str, reason: str) -> None:
        self._inner.download_failed(platform, reason)

    def platform_error(self, platform: str, method: str) -> None:
        self._inner.platform_error(platform, method)

    def sample(self, gauge: str, read: Callable[[], float]) -> None:
        self._inner.sample(gauge, read)
