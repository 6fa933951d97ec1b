"""Signing in: the token compared whatever its length, the growing wait after wrong tokens (with
the clock and the sleep injected, nothing really waits), and session cookies that expire, cannot
be forged, end on sign-out for every process, and end when ADMIN_TOKEN changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.admin.sessions import (
    FORGIVE_AFTER_S,
    MAX_WAIT_S,
    SESSION_S,
    AdminSessions,
    SignInThrottle,
    wait_after,
)
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import FakeClock

TOKEN = "correct-horse-battery-staple-42"


def tampered(text: str) -> str:
    """The text with its last character changed."""
    return text[:-1] + ("1" if text.endswith("0") else "0")


class Sleeps:
    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "bot.sqlite3")
    await opened.open()
    yield opened
    await opened.close()


def test_the_wait_doubles_after_each_wrong_token_up_to_a_limit() -> None:
    assert [wait_after(n) for n in range(8)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert MAX_WAIT_S == 30.0


async def test_wrong_tokens_make_the_next_tries_wait_longer_and_a_right_one_resets() -> None:
    clock, sleeps = FakeClock(0.0), Sleeps()
    throttle = SignInThrottle(clock=clock, sleep=sleeps)
    for _ in range(4):  # four wrong tokens
        await throttle.admit("10.0.0.1")
    await throttle.admit("10.0.0.2")  # another address is not held back
    assert sleeps.waited == [0.0, 1.0, 2.0, 4.0, 0.0]
    await throttle.admit("10.0.0.1")  # the right token, after waiting its turn
    throttle.succeeded("10.0.0.1")
    await throttle.admit("10.0.0.1")
    assert sleeps.waited[-2:] == [8.0, 0.0]


async def test_tries_sent_all_at_once_wait_longer_and_longer() -> None:
    sleeps = Sleeps()
    throttle = SignInThrottle(clock=FakeClock(0.0), sleep=sleeps)
    await asyncio.gather(*(throttle.admit("10.0.0.9") for _ in range(5)))
    assert sorted(sleeps.waited) == [0.0, 1.0, 2.0, 4.0, 8.0]


async def test_an_address_is_forgiven_after_a_quiet_spell() -> None:
    clock, sleeps = FakeClock(0.0), Sleeps()
    throttle = SignInThrottle(clock=clock, sleep=sleeps)
    for _ in range(3):
        await throttle.admit("10.0.0.1")
    clock.now = FORGIVE_AFTER_S - 1
    await throttle.admit("10.0.0.1")
    clock.now += FORGIVE_AFTER_S
    await throttle.admit("10.0.0.1")
    assert sleeps.waited == [0.0, 1.0, 2.0, 4.0, 0.0]


def test_the_token_is_compared_whatever_its_length(store: SqliteStore) -> None:
    sessions = AdminSessions(TOKEN, store)
    assert sessions.token_matches(TOKEN)
    for wrong in ("", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "é" * 40, "\udcff"):
        assert not sessions.token_matches(wrong)


async def test_a_session_lasts_its_time_and_no_longer(store: SqliteStore) -> None:
    clock = FakeClock(1_800_000_000.0)
    sessions = AdminSessions(TOKEN, store, clock=clock)
    cookie = await sessions.issue()
    assert await sessions.check(cookie) is not None
    clock.now += SESSION_S - 1
    assert await sessions.check(cookie) is not None
    clock.now += 2
    assert await sessions.check(cookie) is None


async def test_cookies_are_proved_by_the_shared_key_and_the_token(store: SqliteStore) -> None:
    mine = AdminSessions(TOKEN, store)
    cookie = await mine.issue()
    # Another process of the deployment (same database, same token) accepts it.
    assert await AdminSessions(TOKEN, store).check(cookie) is not None
    # A new ADMIN_TOKEN ends every session.
    assert await AdminSessions(TOKEN + "-rotated", store).check(cookie) is None
    expires, nonce, mac = cookie.split(".")
    for forged in (
        f"{expires}.{nonce}.{tampered(mac)}",
        f"9{expires}.{nonce}.{mac}",
        f"{expires}.{nonce}",
        "a.b.c",
    ):
        assert await mine.check(forged) is None


async def test_signing_out_ends_the_session_in_every_process(store: SqliteStore) -> None:
    mine, other = AdminSessions(TOKEN, store), AdminSessions(TOKEN, store)
    cookie = await mine.issue()
    session = await mine.check(cookie)
    assert session is not None
    form = await mine.form_token(session)
    assert await other.form_token_matches(session, form)
    assert not await other.form_token_matches(session, tampered(form))
    await mine.end(session)
    assert await other.check(cookie) is None
    assert await mine.check(await mine.issue()) is not None  # signing in again works
