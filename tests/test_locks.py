"""Per-conversation locks: serial within a key, concurrent across keys, table stays small."""

import asyncio

from bot.locks import KeyedLocks


async def test_same_key_is_serialised_and_table_empties() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def work(name: str) -> None:
        async with locks.hold("k"):
            order.append(f"{name}-start")
            await asyncio.sleep(0.01)
            order.append(f"{name}-end")

    await asyncio.gather(work("a"), work("b"), work("c"))
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

    await asyncio.gather(*(work(k) for k in range(50)))
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
    await entered.wait()
    assert locks.waiting("k") == 1 and locks.waiting("other") == 0
    release.set()
    await task
    assert locks.waiting("k") == 0


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
    await asyncio.gather(first, second, return_exceptions=True)
    assert len(locks) == 0
