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
    await a
    await asyncio.sleep(0)
    assert order == ["a-start", "a-end", "b-start"]
    c = asyncio.create_task(turn("c"))
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == ["a-start", "a-end", "b-start"], "a new turn ran beside the one holding the lock"
    assert locks.waiting("k") == 2
    gates["b"].set()
    gates["c"].set()
    async with asyncio.timeout(2):
        await asyncio.gather(b, c)
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
    await asyncio.gather(first, second, return_exceptions=True)
    assert len(locks) == 0
