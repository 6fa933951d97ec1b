"""Per-conversation locks in a table that only holds conversations with turns in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(slots=True)
class _Entry:
    lock: asyncio.Lock
    users: int = 0


class KeyedLocks:
    """One asyncio.Lock per key; an entry lives only while someone holds or waits for it, so the
    table stays as small as the number of busy conversations however many exist."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def waiting(self, key: Hashable) -> int:
        """How many turns hold or wait for ``key`` (0 = it would start at once)."""
        entry = self._entries.get(key)
        return entry.users if entry else 0

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(asyncio.Lock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]
