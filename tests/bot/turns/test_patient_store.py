"""The core's store waits out outages, and a write whose answer was lost with the connection is
recognised as written when it is tried again (no double store, no false "moved on")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.turns.patient_store import PatientStore
from storage.errors import HeadMoved, StoreUnavailable
from storage.patience import Patience
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import make_key, model_record, user_content

KEY = make_key("t1")


class LostAnswers:
    """A store whose first call of ``method`` is written but answered by a dropped connection."""

    def __init__(self, store: SqliteStore, method: str) -> None:
        self._store = store
        self._method = method
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name != self._method:
            return real

        async def written_then_lost(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            result = await real(*args, **kwargs)
            if self.calls == 1:
                raise StoreUnavailable("PostgreSQL is unavailable: ConnectionDoesNotExistError")
            return result

        return written_then_lost


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "bot.sqlite3")
    await store.open()
    yield store
    await store.close()


async def append(store: Any, text: str, parent: int | None, expected: int | None) -> Any:
    return await store.append_turn(
        NewTurn(
            key=KEY,
            parent_id=parent,
            user_content=user_content(text),
            model_content=model_record(f"re: {text}"),
            model="m",
            author_id="U1",
        ),
        expected_head=expected,
    )


async def test_an_append_written_before_the_connection_dropped_is_stored_once(sqlite: SqliteStore) -> None:
    flaky = LostAnswers(sqlite, "append_turn")
    store = PatientStore(flaky, Patience(10.0))  # type: ignore[arg-type]

    turn = await append(store, "a red bicycle", None, None)

    assert flaky.calls == 2
    history = await sqlite.history(KEY)
    assert [t.id for t in history] == [turn.id]  # stored once, and recognised as this turn


async def test_an_append_that_really_lost_the_race_still_says_so(sqlite: SqliteStore) -> None:
    first = await append(sqlite, "a red bicycle", None, None)
    flaky = LostAnswers(sqlite, "append_turn")
    store = PatientStore(flaky, Patience(10.0))  # type: ignore[arg-type]
    other = await append(sqlite, "someone else's turn", first.id, first.id)

    with pytest.raises(HeadMoved):
        await append(store, "mine", first.id, first.id)
    assert [t.id for t in await sqlite.history(KEY)] == [first.id, other.id]


async def test_a_head_move_written_before_the_connection_dropped_is_not_a_race(sqlite: SqliteStore) -> None:
    first = await append(sqlite, "a red bicycle", None, None)
    second = await append(sqlite, "now blue", first.id, first.id)
    flaky = LostAnswers(sqlite, "move_head")
    store = PatientStore(flaky, Patience(10.0))  # type: ignore[arg-type]

    await store.move_head(KEY, first.id, expected_head=second.id)

    assert flaky.calls == 2
    info = await sqlite.conversation(KEY)
    assert info is not None and info.head_turn_id == first.id


async def test_calls_beyond_the_protocol_pass_through_untouched(sqlite: SqliteStore) -> None:
    store = PatientStore(sqlite, Patience(10.0))
    assert await store.integrity_check() == ["ok"]
    assert store.ping == sqlite.ping  # a health check must say "down" at once, not wait
