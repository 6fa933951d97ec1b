"""Waiting out a database outage: retries until it is back, one deadline per outage, a bound."""

from __future__ import annotations

import logging

import pytest

from bot.patience import LONGEST_PAUSE_S, Patience
from storage.errors import StoreUnavailable


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
    caplog.set_level(logging.INFO, logger="bot.patience")

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
