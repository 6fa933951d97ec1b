"""Bookkeeping after a reply: done at once, or retried in the background until the database answers."""

from __future__ import annotations

import asyncio
import logging

import pytest

from storage import aftercare as aftercare_module
from storage.aftercare import Aftercare
from storage.errors import StoreUnavailable
from tests.auxil.waiting import settled


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aftercare_module, "FIRST_PAUSE_S", 0.01)
    monkeypatch.setattr(aftercare_module, "LONGEST_PAUSE_S", 0.02)


class Database:
    def __init__(self, away_for: int) -> None:
        self.away_for = away_for
        self.done: list[str] = []

    def job(self, name: str):
        async def op() -> None:
            if self.away_for > 0:
                self.away_for -= 1
                raise StoreUnavailable("PostgreSQL is unavailable: ConnectionResetError")
            self.done.append(name)

        return op


async def test_a_job_the_database_answers_is_done_before_returning() -> None:
    database, care = Database(away_for=0), Aftercare()
    await care.now_or_later("finish the claim", database.job("finish"))
    assert database.done == ["finish"] and len(care) == 0


async def test_a_job_the_database_refuses_is_retried_in_the_background_until_done() -> None:
    database, care = Database(away_for=5), Aftercare()
    await care.now_or_later("finish the claim", database.job("finish"))  # does not raise
    assert database.done == [] and len(care) == 1
    assert await settled(lambda: database.done == ["finish"])
    assert await settled(lambda: len(care) == 0)


async def test_a_job_that_fails_for_another_reason_is_logged_once_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    care = Aftercare()

    async def broken() -> None:
        raise ValueError("a bug")

    await care.now_or_later("record the posted messages", broken)
    assert [(r.getMessage(), getattr(r, "job", None)) for r in caplog.records] == [
        ("bookkeeping failed", "record the posted messages")
    ]
    assert len(care) == 0


async def test_past_the_bound_new_jobs_are_dropped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    database, care = Database(away_for=10_000), Aftercare(max_waiting=2)
    caplog.set_level(logging.ERROR, logger="storage.aftercare")
    for n in range(3):
        await care.now_or_later("release limit reservations", database.job(str(n)))
    assert len(care) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "bookkeeping dropped: too much is waiting for the database"
    ]
    assert await care.drain(0.05) is False  # a stop does not wait for the database forever
    assert len(care) == 0


async def test_a_stop_waits_for_jobs_that_finish_within_the_grace() -> None:
    database, care = Database(away_for=3), Aftercare()
    await care.now_or_later("leave the conversation's queue", database.job("leave"))
    assert await care.drain(5.0) is True
    assert database.done == ["leave"]
    await asyncio.sleep(0)


async def test_the_logs_name_the_job_and_what_the_database_said(caplog: pytest.LogCaptureFixture) -> None:
    database, care = Database(away_for=1), Aftercare()
    caplog.set_level(logging.INFO, logger="storage.aftercare")
    await care.now_or_later("finish the claim", database.job("finish"))
    [waits] = caplog.records
    assert (waits.getMessage(), waits.job, waits.error) == (  # type: ignore[attr-defined]
        "bookkeeping waits for the database",
        "finish the claim",
        "PostgreSQL is unavailable: ConnectionResetError",
    )
    await care.drain(5.0)
    full = Aftercare(max_waiting=0)
    await full.now_or_later("release limit reservations", Database(away_for=1).job("release"))
    dropped = caplog.records[-1]
    assert (dropped.getMessage(), dropped.job) == (  # type: ignore[attr-defined]
        "bookkeeping dropped: too much is waiting for the database",
        "release limit reservations",
    )


async def test_soon_tries_in_the_background_and_returns_at_once() -> None:
    database, care = Database(away_for=0), Aftercare()
    care.soon("withdraw a queued turn", database.job("withdraw"))
    assert database.done == [] and len(care) == 1  # not even tried yet
    assert await settled(lambda: database.done == ["withdraw"] and len(care) == 0)


async def test_retries_back_off_doubling_up_to_their_longest_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aftercare_module.random, "uniform", lambda low, high: high)  # no jitter
    monkeypatch.setattr(aftercare_module, "LONGEST_PAUSE_S", 0.05)
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    database, care = Database(away_for=5), Aftercare(sleep=sleep)
    await care.now_or_later("finish the claim", database.job("finish"))
    assert await settled(lambda: database.done == ["finish"])
    assert pauses == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])  # doubling, then the longest


async def test_a_stop_with_nothing_waiting_is_done_and_one_cut_short_says_how_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert await Aftercare().drain(0.01) is True
    care = Aftercare()
    for n in range(2):
        await care.now_or_later("finish the claim", Database(away_for=10_000).job(str(n)))
    caplog.set_level(logging.WARNING, logger="storage.aftercare")
    assert await care.drain(0.05) is False
    [left] = caplog.records
    assert (left.getMessage(), left.jobs) == ("bookkeeping left undone at stop", 2)  # type: ignore[attr-defined]


async def test_a_retry_that_fails_for_another_reason_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    care, tries = Aftercare(), 0

    async def op() -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise StoreUnavailable("PostgreSQL is unavailable: ConnectionResetError")
        raise ValueError("a bug")

    caplog.set_level(logging.ERROR, logger="storage.aftercare")
    await care.now_or_later("record the posted messages", op)
    assert await settled(lambda: len(care) == 0)
    [failed] = caplog.records
    assert (failed.getMessage(), failed.job, tries) == ("bookkeeping failed", "record the posted messages", 2)  # type: ignore[attr-defined]
