"""Waiting in tests for background work to finish, with a limit instead of a hang."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def settled(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 5.0) -> bool:
    """Whether ``check`` (plain or async) comes true within ``timeout_s``, looking every 20 ms."""
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = check()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
