"""A process-wide cap on Gemini calls in flight, with a bounded queue that is fair across users."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.text import messages


class QueueFull(Exception):
    """The queue is at its bound; ``user_message`` says so in plain words."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class GenerationGate:
    """At most ``max_in_flight`` holders at once; waiters are served round-robin by user, so one
    person queueing twenty images cannot starve everybody else, and FIFO within each user."""

    def __init__(
        self, max_in_flight: int, max_queued: int, on_waited: Callable[[float], None] | None = None
    ) -> None:
        """``on_waited`` is told how long each holder waited for its slot (0 when one was free)."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._capacity = max_in_flight
        self._max_queued = max_queued
        self._in_flight = 0
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._on_waited = on_waited

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def position_for(self, user: str) -> int:
        """The 1-based place a new request by ``user`` would take under round-robin service."""
        mine = len(self._waiting.get(user, ()))
        ahead = sum(min(len(q), mine + 1) for u, q in self._waiting.items() if u != user)
        return ahead + mine + 1

    @asynccontextmanager
    async def slot(
        self, user: str, on_queued: Callable[[int], Awaitable[None]] | None = None
    ) -> AsyncIterator[None]:
        """Hold one in-flight slot; waits (telling ``on_queued`` the position) when all are busy."""
        asked = time.monotonic()
        if self._in_flight < self._capacity and not self._waiting:
            self._in_flight += 1
        else:
            if self.queued >= self._max_queued:
                raise QueueFull(messages.very_busy(self.queued))
            position = self.position_for(user)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(user, deque()).append(waiter)
            try:
                if on_queued is not None:
                    await on_queued(position)
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    # We were handed a slot but are leaving without using it: pass it on.
                    self._release()
                else:
                    self._forget(user, waiter)
                raise
        if self._on_waited is not None:
            self._on_waited(time.monotonic() - asked)
        try:
            yield
        finally:
            self._release()

    def _forget(self, user: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._waiting[user]

    def _release(self) -> None:
        """Free a slot, handing it straight to the next user in rotation if anyone waits."""
        while self._waiting:
            user, queue = next(iter(self._waiting.items()))
            waiter = queue.popleft()
            if queue:
                self._waiting.move_to_end(user)
            else:
                del self._waiting[user]
            if not waiter.done():
                waiter.set_result(None)  # the slot passes over without _in_flight changing
                return
        self._in_flight -= 1
