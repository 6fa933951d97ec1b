"""Pairs Slack's two deliveries of one mention, and remembers threads the bot answered recently."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable


class MentionPairing:
    """Slack delivers a mention twice, as ``app_mention`` and as ``message``, in either order, and
    the ``app_mention`` copy may lack ``files``. The ``message`` copy is the one handled; an
    ``app_mention`` without files waits up to ``grace_s`` for it to become a turn and then stands
    down. Only when no such ``message`` copy comes (the app is not subscribed to that conversation
    type) does the mention proceed on its own. The core's claim on the message ts keeps it to one
    turn either way; the pairing is what makes that turn the one with the files.
    """

    def __init__(self, grace_s: float, capacity: int = 4096) -> None:
        self._grace_s = grace_s
        self._capacity = capacity
        self._arrived: OrderedDict[tuple[str, str], asyncio.Event] = OrderedDict()

    def _event(self, channel: str, ts: str) -> asyncio.Event:
        key = (channel, ts)
        event = self._arrived.get(key)
        if event is None:
            event = self._arrived[key] = asyncio.Event()
            while len(self._arrived) > self._capacity:
                self._arrived.popitem(last=False)
        else:
            self._arrived.move_to_end(key)
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
    """A bounded set that forgets its oldest entries."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._items: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, item: Hashable) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def discard(self, item: Hashable) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items
