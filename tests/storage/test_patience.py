"""Waiting out a database outage: retries until it is back, one deadline per outage, a bound."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.composition import patience_for
from bot.config import load_config
from storage import patience as patience_module
from storage.errors import StoreUnavailable
from storage.patience import LONGEST_PAUSE_S, Patience


class Clock:
    """A clock that only moves when the patience sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def database_back_at(clock: Clock, moment: float, calls: list[float]):
    async def op() -> str:
        calls.append(clock.now)
        if clock.now < moment:
            raise StoreUnavailable("PostgreSQL is unavailable: ConnectionRefusedError")
        return "answered"

    return op


async def test_work_is_held_while_the_database_is_away_and_done_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    patience = Patience(120.0, clock=clock, sleep=clock.sleep)
    calls: list[float] = []
    caplog.set_level(logging.INFO, logger="storage.patience")

    assert await patience.call(database_back_at(clock, 1008.0, calls)) == "answered"

    assert calls[-1] >= 1008.0 and len(calls) > 2
    assert max(clock.sleeps) <= LONGEST_PAUSE_S  # back within about a second of the database
    assert calls[-1] - 1008.0 <= LONGEST_PAUSE_S
    assert [r.getMessage() for r in caplog.records] == [
        "database unavailable; holding work until it is back",
        "database is back",
    ]
    assert patience.down_for is None and patience.held == 0


async def test_work_gives_up_once_the_outage_has_lasted_its_limit() -> None:
    clock = Clock()
    patience = Patience(5.0, clock=clock, sleep=clock.sleep)
    calls: list[float] = []
    with pytest.raises(StoreUnavailable):
        await patience.call(database_back_at(clock, 1e9, calls))
    assert clock.now == pytest.approx(1005.0)  # five seconds after the outage began, not later
    assert patience.held == 0


async def test_work_arriving_late_in_an_outage_waits_only_for_what_is_left_of_it() -> None:
    clock = Clock()
    patience = Patience(5.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(StoreUnavailable):
        await patience.call(database_back_at(clock, 1e9, []))
    # The outage goes on: a new message is told at once instead of waiting five more seconds.
    before = clock.now
    with pytest.raises(StoreUnavailable):
        await patience.call(database_back_at(clock, 1e9, []))
    assert clock.now == before
    # Once the database answered, the next outage has its own five seconds.
    assert await patience.call(database_back_at(clock, 0.0, [])) == "answered"
    start = clock.now
    with pytest.raises(StoreUnavailable):
        await patience.call(database_back_at(clock, 1e9, []))
    assert clock.now == pytest.approx(start + 5.0)


async def test_only_so_much_work_is_held_at_once() -> None:
    clock = Clock()
    patience = Patience(120.0, max_held=2, clock=clock, sleep=clock.sleep)
    patience.held = 2  # two calls are already waiting
    calls: list[float] = []
    with pytest.raises(StoreUnavailable):
        await patience.call(database_back_at(clock, 1e9, calls))
    assert calls == [1000.0] and clock.sleeps == []  # tried once, not held


async def test_other_errors_are_not_retried() -> None:
    patience = Patience(120.0)
    tries = 0

    async def op() -> None:
        nonlocal tries
        tries += 1
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await patience.call(op)
    assert tries == 1


async def test_retries_double_their_pause_up_to_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patience_module.random, "uniform", lambda low, high: high)  # no jitter
    clock = Clock()
    patience = Patience(120.0, clock=clock, sleep=clock.sleep)
    await patience.call(database_back_at(clock, 1004.0, []))
    assert clock.sleeps[:7] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


async def test_while_held_a_call_is_counted_and_the_outage_timed() -> None:
    clock = Clock()
    seen: list[tuple[int, float | None]] = []

    async def sleep(seconds: float) -> None:
        seen.append((patience.held, patience.down_for))
        await clock.sleep(seconds)

    patience = Patience(120.0, clock=clock, sleep=sleep)
    assert patience.down_for is None
    await patience.call(database_back_at(clock, 1000.2, []))
    assert [held for held, _ in seen] == [1] * len(seen)
    assert [round(down or 0, 2) for _, down in seen[:3]] == [
        0.0,
        round(clock.sleeps[0], 2),
        round(sum(clock.sleeps[:2]), 2),
    ]
    assert patience.held == 0 and patience.down_for is None


async def test_the_logs_say_what_failed_how_long_it_lasted_and_how_many_gave_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    patience = Patience(5.0, clock=clock, sleep=clock.sleep)
    caplog.set_level(logging.INFO, logger="storage.patience")
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await patience.call(database_back_at(clock, 1e9, []))
    clock.now += 2.46
    await patience.call(database_back_at(clock, 0.0, []))
    down, back = caplog.records
    assert (down.error, down.outage_s) == ("PostgreSQL is unavailable: ConnectionRefusedError", 5.0)  # type: ignore[attr-defined]
    assert (back.down_s, back.gave_up) == (7.5, 2)  # type: ignore[attr-defined]
    caplog.clear()
    with pytest.raises(StoreUnavailable):  # the next outage counts its own
        await patience.call(database_back_at(clock, 1e9, []))
    await patience.call(database_back_at(clock, 0.0, []))
    assert caplog.records[-1].gave_up == 1  # type: ignore[attr-defined]


def test_a_process_waits_database_outage_s_and_holds_up_to_max_queued_turns() -> None:
    config = load_config({"DATABASE_OUTAGE_S": "45", "MAX_QUEUED_TURNS": "7"})
    patience = patience_for(config)
    assert (patience.outage_s, patience._max_held) == (45.0, 7)
    assert patience_for(load_config({"MAX_QUEUED_TURNS": "0"}))._max_held == 1
    assert Patience(1.0)._max_held == 1000


async def test_a_calls_deadline_stays_where_its_outage_began_whatever_else_succeeds() -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        await patience.call(database_back_at(clock, 0.0, []))  # a read elsewhere still works

    patience = Patience(5.0, clock=clock, sleep=sleep)
    with pytest.raises(StoreUnavailable):  # a write that keeps failing (a full disk)
        await patience.call(database_back_at(clock, 1e9, []))
    assert clock.now == pytest.approx(1005.0)


async def test_every_call_waiting_is_counted() -> None:
    clock = Clock()
    counts: list[int] = []

    async def sleep(seconds: float) -> None:
        counts.append(patience.held)
        await asyncio.sleep(0)  # let the other call take its turn
        await clock.sleep(seconds)

    patience = Patience(120.0, clock=clock, sleep=sleep)
    await asyncio.gather(*(patience.call(database_back_at(clock, 1001.0, [])) for _ in range(2)))
    assert max(counts) == 2 and patience.held == 0
