"""Counts turns in flight so a stop can let them finish; process-wide hooks run around them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _nothing() -> None:
    return None


class InFlight:
    """``on_start`` runs as each turn starts and ``on_end`` as each ends (the composition root
    hangs heap tuning there); ``drain`` waits for the count to reach zero."""

    def __init__(
        self, on_start: Callable[[], None] = _nothing, on_end: Callable[[], None] = _nothing
    ) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._on_start = on_start
        self._on_end = on_end

    def __int__(self) -> int:
        return self._count

    @contextmanager
    def track(self) -> Iterator[None]:
        self._on_start()
        self._count += 1
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                self._idle.set()
            self._on_end()

    async def drain(self, grace_s: float) -> bool:
        """Wait up to ``grace_s`` for turns in flight to finish; True if none are left."""
        try:
            async with asyncio.timeout(grace_s):
                while self._count:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            return False
        return True
