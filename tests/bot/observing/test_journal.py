"""The turn log: every turn's ending and latency, noted by the journal around the metrics and
written to the store in batches; a database outage keeps them for the next write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bot.observing.journal import TurnJournal
from bot.observing.metrics import Metrics
from bot.vocabulary import ModelCall
from storage.errors import StoreUnavailable
from storage.reports import OutcomeCount, TurnRecord
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import FakeClock

DAY = 86400.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "bot.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


def call(outcome: str) -> ModelCall:
    return ModelCall(model="gemini-2.5-flash-image", outcome=outcome, seconds=1.0)


async def test_each_turn_is_logged_with_its_outcome_reason_and_latency(store: SqliteStore) -> None:
    metrics, clock, ticks = Metrics(), FakeClock(1_000.0), FakeClock(0.0)
    journal = TurnJournal(metrics, store, clock=clock, monotonic=ticks)
    endings = [
        ("answered", ["image"], 4.0),
        ("failed", ["timeout"], 60.0),
        ("failed", ["image_blocked"], 3.0),
        ("failed", [], 0.5),  # failed before any model call (a bad attachment)
        ("limited", [], 0.1),
        ("duplicate", [], 0.0),  # a redelivery: not a turn worth a row
    ]
    for status, outcomes, seconds in endings:
        with journal.turn("discord", "new") as watch:
            for outcome in outcomes:
                journal.model_called(call(outcome))
            ticks.now += seconds
            watch.ended(status)
    with pytest.raises(asyncio.CancelledError), journal.turn("slack", "regenerate"):
        raise asyncio.CancelledError
    assert await journal.flush() == 6
    assert await journal.flush() == 0
    assert sorted(await store.outcome_counts(0), key=lambda o: o.outcome + o.reason) == [
        OutcomeCount("blocked_by_safety", "image_blocked", 1),
        OutcomeCount("cancelled", "cancelled", 1),
        OutcomeCount("failed", "before_the_model", 1),
        OutcomeCount("failed", "timeout", 1),
        OutcomeCount("image", "image", 1),
        OutcomeCount("refused_by_limit", "refused_by_limit", 1),
    ]
    [day] = await store.latency_by_day([0, DAY])
    assert (day.turns, day.p50_s, day.p95_s) == (1, 4.0, 4.0)
    # The metrics saw every turn as before.
    assert metrics.turns.labels("discord", "new", "image")._value.get() == 1


class Flaky:
    """A store whose turn log is away until told otherwise."""

    def __init__(self) -> None:
        self.away = True
        self.written: list[TurnRecord] = []

    async def record_turns(self, records: Sequence[TurnRecord]) -> None:
        if self.away:
            raise StoreUnavailable("away")
        self.written.extend(records)


async def test_an_outage_keeps_the_rows_for_the_next_write_and_the_oldest_go_past_the_bound() -> None:
    flaky = Flaky()
    journal = TurnJournal(Metrics(), flaky, max_waiting=3)  # type: ignore[arg-type]
    for _ in range(4):
        with journal.turn("discord", "new") as watch:
            watch.ended("limited")
    assert await journal.flush() == 0
    flaky.away = False
    assert await journal.flush() == 3
    assert len(flaky.written) == 3
