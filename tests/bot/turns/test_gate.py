"""The generation gate: a cap on calls in flight, round-robin across users, a bounded queue."""

import asyncio
from collections.abc import Awaitable

import pytest

from bot.turns.gate import GenerationGate, QueueFull

# A lost slot or a waiter never woken shows up as a hang; fail fast with a reason instead.
SETTLE_S = 2.0


async def settle(*aws: Awaitable[object], what: str, exceptions: bool = False) -> list[object]:
    try:
        async with asyncio.timeout(SETTLE_S):
            return await asyncio.gather(*aws, return_exceptions=exceptions)
    except TimeoutError:
        pytest.fail(f"{what} did not finish within {SETTLE_S} s: a slot was lost or a waiter never woke")


async def refusal(gate: GenerationGate, user: str) -> QueueFull:
    """The QueueFull a job past the queue's bound gets at once (not after waiting its turn)."""
    try:
        async with asyncio.timeout(SETTLE_S), gate.slot(user):
            pass
    except QueueFull as refused:
        return refused
    except TimeoutError:
        pytest.fail("a job past the queue's bound was queued and waited instead of being refused")
    pytest.fail("a job past the queue's bound ran instead of being refused")


async def test_caps_in_flight_and_serves_users_round_robin() -> None:
    gate = GenerationGate(max_in_flight=1, max_queued=100)
    served: list[str] = []
    release = asyncio.Event()
    positions: dict[str, int] = {}

    async def job(user: str, name: str) -> None:
        async def queued(position: int) -> None:
            positions[name] = position

        async with gate.slot(user, queued):
            served.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(job("busy", "first"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(job("busy", f"busy{i}")) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(job("quiet", "quiet0")))
    await asyncio.sleep(0)
    assert gate.in_flight == 1 and gate.queued == 4
    release.set()
    await settle(first, *tasks, what="the queued jobs")
    # The quiet user is served right after the busy user's first queued job, not after all three.
    assert served == ["first", "busy0", "quiet0", "busy1", "busy2"]
    assert positions == {"busy0": 1, "busy1": 2, "busy2": 3, "quiet0": 2}
    assert gate.in_flight == 0 and gate.queued == 0


async def test_never_more_than_the_cap() -> None:
    gate = GenerationGate(max_in_flight=3, max_queued=100)
    inside = 0
    peak = 0

    async def job(i: int) -> None:
        nonlocal inside, peak
        async with gate.slot(f"user{i % 5}"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.005)
            inside -= 1

    await settle(*(job(i) for i in range(40)), what="forty jobs through three slots")
    assert peak == 3
    assert gate.in_flight == 0


async def test_queue_bound_refuses_with_a_plain_message() -> None:
    gate = GenerationGate(max_in_flight=1, max_queued=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    refused = await refusal(gate, "b")
    assert refused.user_message == (
        "The bot is very busy right now (1 image waiting); please try again in a few minutes."
    )
    assert str(refused) == refused.user_message  # what the logs show
    release.set()
    await settle(holder, waiter, what="the holder and the one queued job")


async def test_a_cancelled_waiter_gives_up_its_place_and_slots_are_not_lost() -> None:
    gate = GenerationGate(max_in_flight=1, max_queued=10)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot("a"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    doomed = asyncio.create_task(hold())
    await asyncio.sleep(0)
    doomed.cancel()
    await settle(doomed, what="the cancelled waiter", exceptions=True)
    assert gate.queued == 0
    release.set()
    await settle(holder, what="the holder")

    async def later() -> int:
        async with gate.slot("b"):
            return gate.in_flight

    assert await settle(later(), what="a job after the cancellation") == [1]
    assert gate.in_flight == 0


async def test_a_waiter_cancelled_just_after_being_handed_a_slot_passes_it_on() -> None:
    gate = GenerationGate(max_in_flight=1, max_queued=10)
    entered: list[str] = []
    release = asyncio.Event()
    tasks: dict[str, asyncio.Task[None]] = {}

    async def job(name: str) -> None:
        async with gate.slot(name):
            entered.append(name)

    async def holder() -> None:
        async with gate.slot("holder"):
            entered.append("holder")
            await release.wait()
        # Same step as the release: "handed" owns the slot but has not run yet.
        tasks["handed"].cancel()

    tasks["holder"] = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks["handed"] = asyncio.create_task(job("handed"))
    tasks["after"] = asyncio.create_task(job("after"))
    await asyncio.sleep(0)
    release.set()
    results = await settle(*tasks.values(), what="the job after the cancelled one", exceptions=True)
    assert results[0] is None and results[2] is None  # holder and after ended cleanly
    assert tasks["handed"].cancelled()
    assert entered == ["holder", "after"]
    assert gate.in_flight == 0


@pytest.mark.parametrize("capacity", [0, -1])
def test_a_gate_without_room_for_one_call_is_refused_at_start_up(capacity: int) -> None:
    with pytest.raises(ValueError) as refused:
        GenerationGate(max_in_flight=capacity, max_queued=10)
    assert str(refused.value) == "max_in_flight must be at least 1"


def test_a_gate_of_one_is_allowed() -> None:
    assert GenerationGate(max_in_flight=1, max_queued=0).in_flight == 0
