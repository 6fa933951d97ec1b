"""Pairs Slack's two deliveries of one mention, and remembers threads the bot answered recently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable

from cachetools import TTLCache

# How long one delivery of a mention waits to be paired with the other: far past the grace, so
# a Slack retry minutes later still finds its pair; bounded so a flood cannot grow memory.
PAIRING_TTL_S = 600.0
# Threads the bot answered, remembered this long in front of the database lookup.
RECENT_TTL_S = 3600.0


class MentionPairing:
    """Slack delivers a mention twice, as ``app_mention`` and as ``message``, in either order, and
    the ``app_mention`` copy may lack ``files``. The ``message`` copy is the one handled; an
    ``app_mention`` without files waits up to ``grace_s`` for it to become a turn and then stands
    down. Only when no such ``message`` copy comes (the app is not subscribed to that conversation
    type) does the mention proceed on its own. The core's claim on the message ts keeps it to one
    turn either way; the pairing is what makes that turn the one with the files.
    """

    def __init__(
        self,
        grace_s: float,
        capacity: int = 4096,
        ttl_s: float = PAIRING_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._grace_s = grace_s
        self._arrived: TTLCache[tuple[str, str], asyncio.Event] = TTLCache(capacity, ttl_s, timer=clock)

    def _event(self, channel: str, ts: str) -> asyncio.Event:
        key = (channel, ts)
        event = self._arrived.get(key)
        if event is None:
            event = self._arrived[key] = asyncio.Event()
        return event

    def message_arrived(self, channel: str, ts: str) -> None:
        """The ``message`` copy of (channel, ts) is being handled as a turn."""
        self._event(channel, ts).set()

    async def wait_for_message(self, channel: str, ts: str) -> bool:
        """True if the ``message`` copy of this mention arrived (now or within the grace)."""
        event = self._event(channel, ts)
        try:
            async with asyncio.timeout(self._grace_s):
                await event.wait()
        except TimeoutError:
            return False
        return True


class RecentSet:
    """A set that forgets each entry after ``ttl_s``, and its least recently added first when full."""

    def __init__(
        self, capacity: int = 4096, ttl_s: float = RECENT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._items: TTLCache[Hashable, bool] = TTLCache(capacity, ttl_s, timer=clock)

    def add(self, item: Hashable) -> None:
        self._items.pop(item, None)  # re-adding restarts its time and makes it the newest
        self._items[item] = True

    def discard(self, item: Hashable) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items
