"""Per-conversation locks: serial within a key, concurrent across keys, table stays small."""

import asyncio
from collections.abc import Awaitable

import pytest

from bot.locks import KeyedLocks

# A lock never released shows up as a hang; fail fast with a reason instead.
SETTLE_S = 2.0


async def settle(*aws: Awaitable[object], what: str, exceptions: bool = False) -> list[object]:
    try:
        async with asyncio.timeout(SETTLE_S):
            return await asyncio.gather(*aws, return_exceptions=exceptions)
    except TimeoutError:
        pytest.fail(f"{what} did not finish within {SETTLE_S} s: a lock was never released")


async def test_same_key_is_serialised_and_table_empties() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def work(name: str) -> None:
        async with locks.hold("k"):
            order.append(f"{name}-start")
            await asyncio.sleep(0.01)
            order.append(f"{name}-end")

    await settle(work("a"), work("b"), work("c"), what="three turns in one conversation")
    assert order == ["a-start", "a-end", "b-start", "b-end", "c-start", "c-end"]
    assert len(locks) == 0


async def test_different_keys_run_concurrently() -> None:
    locks = KeyedLocks()
    inside = 0
    peak = 0

    async def work(key: int) -> None:
        nonlocal inside, peak
        async with locks.hold(key):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await settle(*(work(k) for k in range(50)), what="fifty conversations")
    assert peak == 50
    assert len(locks) == 0


async def test_waiting_counts_holders_and_waiters() -> None:
    locks = KeyedLocks()
    entered = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            entered.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await settle(entered.wait(), what="the first holder")
    assert locks.waiting("k") == 1 and locks.waiting("other") == 0
    release.set()
    await settle(task, what="the holder")
    assert locks.waiting("k") == 0


async def test_a_turn_arriving_after_the_first_holder_left_still_waits_its_turn() -> None:
    """Three turns in one conversation: when the first ends, the third must still queue behind the
    second, which means the table counted all of them (a lost count would hand out a new lock)."""
    locks = KeyedLocks()
    order: list[str] = []
    gates = {name: asyncio.Event() for name in ("a", "b", "c")}

    async def turn(name: str) -> None:
        async with locks.hold("k"):
            order.append(f"{name}-start")
            await gates[name].wait()
            order.append(f"{name}-end")

    a = asyncio.create_task(turn("a"))
    await asyncio.sleep(0)
    b = asyncio.create_task(turn("b"))
    await asyncio.sleep(0)
    assert locks.waiting("k") == 2
    gates["a"].set()
    await settle(a, what="the first turn")
    await asyncio.sleep(0)
    assert order == ["a-start", "a-end", "b-start"]
    c = asyncio.create_task(turn("c"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == ["a-start", "a-end", "b-start"], "a new turn ran beside the one holding the lock"
    assert locks.waiting("k") == 2
    gates["b"].set()
    gates["c"].set()
    await settle(b, c, what="the second and third turns")
    assert order[3:] == ["b-end", "c-start", "c-end"]
    assert len(locks) == 0


async def test_cancelled_waiter_does_not_leak_an_entry() -> None:
    locks = KeyedLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    second = asyncio.create_task(holder())
    await asyncio.sleep(0)
    second.cancel()
    release.set()
    results = await settle(first, second, what="the holder and the cancelled waiter", exceptions=True)
    assert results[0] is None and isinstance(results[1], asyncio.CancelledError)
    assert len(locks) == 0
