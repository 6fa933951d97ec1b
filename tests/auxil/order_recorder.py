"""Runs turn-order tickets and records the order they held their conversation in, and overlaps."""

from __future__ import annotations

import asyncio

from bot.ports import OrderTicket


class Recorder:
    """``pause_s`` is how long each holder keeps the conversation: long enough for an overlapping
    holder to show (a database round trip for the PostgreSQL order, one loop pass in-process)."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.ran: list[str] = []
        self.holding = 0
        self.overlaps = 0
        self._pause_s = pause_s

    async def run(self, ticket: OrderTicket, name: str, hold: asyncio.Event | None = None) -> None:
        async with ticket:
            self.holding += 1
            self.overlaps += self.holding > 1
            self.ran.append(name)
            if hold is not None:
                await hold.wait()
            await asyncio.sleep(self._pause_s)
            self.holding -= 1
