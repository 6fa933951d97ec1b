"""The coordination seam: each conversation's turns run one at a time, in the order people posted them."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from types import TracebackType

from cachetools import TTLCache

from bot.ports import OrderTicket, TurnOrder
from bot.vocabulary import ConversationKey, Position

# Slack does not promise delivery in posting order (retries, several HTTP replicas, Socket Mode
# connections). A turn therefore waits until this long after it was *posted* (by
# the platform's own clock in its id) before it may start, so an earlier message still in
# transit can take its place first. Delivery usually takes about this long anyway, so most turns
# do not wait at all; the wait is capped at this value whatever the clocks say.
DEFAULT_SETTLE_S = 0.25
# How long a conversation remembers the latest message it answered, to recognise a late arrival.
_ANSWERED_TTL_S = 3600.0
_ANSWERED_CAPACITY = 50_000


@dataclass(eq=False, slots=True)
class _Lane:
    """The turns of one conversation that have arrived and not yet finished."""

    waiting: list[_LocalTicket] = field(default_factory=list)
    running: _LocalTicket | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class _LocalTicket:
    def __init__(self, order: LocalTurnOrder, key: ConversationKey, position: Position, seq: int) -> None:
        self._order = order
        self._key = key
        self.position = position
        self.sort_key = (position.posted_us, position.tiebreak, seq)
        self._late = False
        self._state = "waiting"  # waiting -> running -> done

    @property
    def late(self) -> bool:
        return self._late

    def ahead(self) -> int:
        lane = self._order.lane(self._key)
        if lane is None or self._state != "waiting":
            return 0
        earlier = sum(1 for t in lane.waiting if t.sort_key < self.sort_key)
        return earlier + (1 if lane.running is not None else 0)

    async def __aenter__(self) -> _LocalTicket:
        delay = self._order.settle_delay(self.position)
        if delay > 0:
            await self._order.sleep(delay)
        lane = self._order.lane(self._key)
        assert lane is not None and self._state == "waiting"
        while lane.running is not None or min(lane.waiting, key=_sort_key) is not self:
            await lane.changed.wait()
        lane.waiting.remove(self)
        lane.running = self
        self._state = "running"
        self._late = self._order.answered_after(self._key, self.position)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._order.answered(self._key, self.position)
        self.leave()

    def leave(self) -> None:
        if self._state == "done":
            return
        lane = self._order.lane(self._key)
        if lane is not None:
            if self._state == "running":
                lane.running = None
            else:
                lane.waiting.remove(self)
            lane.wake()
            self._order.drop_if_idle(self._key, lane)
        self._state = "done"


def _sort_key(ticket: _LocalTicket) -> tuple[int, int, int]:
    return ticket.sort_key


class LocalTurnOrder:
    """The in-process implementation (one process, SQLite): a lane per busy conversation, kept
    only while some turn of it is waiting or running, so the table stays as small as the number
    of busy conversations."""

    def __init__(
        self,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settle_s = settle_s
        self._clock = clock
        self.sleep = sleep
        self._lanes: dict[Hashable, _Lane] = {}
        self._seq = itertools.count()
        self._answered: TTLCache[ConversationKey, tuple[int, int]] = TTLCache(
            _ANSWERED_CAPACITY, _ANSWERED_TTL_S
        )

    def __len__(self) -> int:
        return len(self._lanes)

    def enter(self, key: ConversationKey, position: Position) -> _LocalTicket:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        ticket = _LocalTicket(self, key, position, next(self._seq))
        lane.waiting.append(ticket)
        lane.wake()
        return ticket

    def lane(self, key: ConversationKey) -> _Lane | None:
        return self._lanes.get(key)

    def drop_if_idle(self, key: ConversationKey, lane: _Lane) -> None:
        if lane.running is None and not lane.waiting and self._lanes.get(key) is lane:
            del self._lanes[key]

    def settle_delay(self, position: Position) -> float:
        if not position.settle:
            return 0.0
        wait = position.posted_at + self._settle_s - self._clock()
        return min(max(wait, 0.0), self._settle_s)

    def answered(self, key: ConversationKey, position: Position) -> None:
        mark = (position.posted_us, position.tiebreak)
        if mark > self._answered.get(key, (-1, -1)):
            self._answered[key] = mark

    def answered_after(self, key: ConversationKey, position: Position) -> bool:
        return self._answered.get(key, (-1, -1)) > (position.posted_us, position.tiebreak)


class InProcessFirst:
    """A shared order (several processes on one database) with this process's own in-process
    order in front of it: a process's own turns of a conversation queue locally, as on SQLite,
    and only the first of them waits in the shared order."""

    def __init__(self, local: LocalTurnOrder, shared: TurnOrder) -> None:
        self.local = local
        self.shared = shared

    def enter(self, key: ConversationKey, position: Position) -> OrderTicket:
        return _StackedTicket(self.local.enter(key, position), self.shared.enter(key, position))


class _StackedTicket:
    def __init__(self, local: OrderTicket, shared: OrderTicket) -> None:
        self._local = local
        self._shared = shared

    @property
    def late(self) -> bool:
        return self._local.late or self._shared.late

    def ahead(self) -> int:
        return self._local.ahead()

    async def __aenter__(self) -> _StackedTicket:
        await self._local.__aenter__()
        try:
            await self._shared.__aenter__()
        except BaseException:
            self.leave()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._shared.__aexit__(exc_type, exc, tb)
        finally:
            await self._local.__aexit__(exc_type, exc, tb)

    def leave(self) -> None:
        self._local.leave()
        self._shared.leave()
