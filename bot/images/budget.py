"""A process-wide memory budget for image work: bytes in flight are bounded, turns wait in order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

MIB = 1024 * 1024


class ImageBudget:
    """A weighted semaphore over bytes, served strictly first come, first served.

    ``reserve(n)`` waits until ``n`` bytes are free and nobody who asked earlier is still
    waiting, so a large reservation is never starved by a stream of small ones. A reservation
    larger than the whole budget is clamped to it: it waits until it can run alone, then runs.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1 byte")
        self.capacity = capacity
        self._in_use = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def in_use(self) -> int:
        """Bytes reserved right now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Reservations waiting for room."""
        return len(self._waiting)

    @asynccontextmanager
    async def reserve(self, amount: int) -> AsyncIterator[int]:
        """Hold ``amount`` bytes (at least 0, at most the capacity) for the ``async with`` body;
        yields what was reserved."""
        weight = min(max(0, amount), self.capacity)
        if not weight:  # nothing to hold: never queue behind others
            yield 0
            return
        await self._acquire(weight)
        try:
            yield weight
        finally:
            self._in_use -= weight
            self._wake()

    async def _acquire(self, weight: int) -> None:
        if not self._waiting and self._in_use + weight <= self.capacity:
            self._in_use += weight
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (weight, waiter)
        self._waiting.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Granted as we were cancelled: give the bytes back to whoever is next.
                self._in_use -= weight
            elif entry in self._waiting:  # (_wake may have dropped it already)
                self._waiting.remove(entry)
            self._wake()
            raise

    def _wake(self) -> None:
        """Grant waiters in arrival order while the one at the head fits."""
        while self._waiting:
            weight, waiter = self._waiting[0]
            if waiter.done():  # cancelled while waiting
                self._waiting.popleft()
                continue
            if self._in_use + weight > self.capacity:
                return
            self._waiting.popleft()
            self._in_use += weight
            waiter.set_result(None)


@dataclass(frozen=True, slots=True)
class ImageMemory:
    """The two budgets image work draws on, split from one setting (``IMAGE_MEMORY_MB``).

    ``turns``: the attachment bytes a turn holds, reserved once per turn before its first
    download and kept until its reply is sent (the file, then the copies the Gemini SDK makes
    to send it). ``decodes``: the pixels of one decode, reserved from the image header and kept
    until the pixels are freed. Two pools, taken in that order, so no deadlock: a turn holding
    its files while it waits to decode never blocks the decodes it waits for, which hold nothing
    else and always finish.
    """

    turns: ImageBudget
    decodes: ImageBudget

    @classmethod
    def of(cls, total_bytes: int) -> ImageMemory:
        """Half of ``total_bytes`` for the files turns hold, half for decoding."""
        half = max(1, total_bytes // 2)
        return cls(ImageBudget(half), ImageBudget(max(1, total_bytes - half)))


# The downloaded file, then the SDK's base64 text and JSON request body while it is sent.
SEND_COPIES = 3


def turn_bytes(sizes: Iterable[int | None], max_file_bytes: int) -> int:
    """What a turn's attachments take from download until the reply: files of unknown size
    count as the largest allowed."""
    return SEND_COPIES * sum(max_file_bytes if size is None else size for size in sizes)
