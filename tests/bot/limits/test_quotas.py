"""Rate limits and the spend cap, counted from the real store's usage ledger."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import load_config
from bot.limits.quotas import HOUR_S, LimitPolicy, RateLimiter, month_start, start_of_day
from bot.vocabulary import Author, ConversationKey, Usage
from storage.content import user_record
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore

# 2026-11-21 18:30:00 UTC: 5 h 30 min before the daily reset.
NOW = datetime(2026, 11, 21, 18, 30, tzinfo=UTC).timestamp()
ALICE = Author("alice")
KEY = ConversationKey("discord", "guild", "chan", "thread")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "db.sqlite3", clock=clock)
    await opened.open()
    yield opened
    await opened.close()


async def record(
    store: SqliteStore, key: ConversationKey = KEY, author: str = "alice", images: int = 1
) -> None:
    model = {"role": "model", "parts": [{"text": "ok"}]}
    usage = Usage(images_generated=images, cost_usd=0.039 * images)
    info = await store.conversation(key)
    head = info.head_turn_id if info is not None else None
    await store.append_turn(
        NewTurn(
            key=key,
            parent_id=None,
            user_content=user_record("x", []),
            model_content=model,
            model="m",
            author_id=author,
            usage=usage,
        ),
        expected_head=head,
    )


async def check(
    limiter: RateLimiter, key: ConversationKey = KEY, author: Author = ALICE, admin: bool = False
) -> str | None:
    async with limiter.admit(key, author, admin=admin) as refusal:
        return refusal


async def test_hourly_limit_names_itself_and_when_it_frees_up(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=3, user_per_day=0), store, clock)
    clock.now = NOW - 40 * 60
    await record(store)
    clock.now = NOW - 10 * 60
    await record(store, images=2)
    clock.now = NOW
    assert await check(limiter) == (
        "You've made 3 images in the last hour, the limit for each person; you can make more in about 20 min."
    )
    assert await check(limiter, author=Author("bob")) is None
    clock.now = NOW + 21 * 60
    assert await check(limiter) is None


async def test_daily_limit_resets_at_midnight_utc(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=0, user_per_day=2), store, clock)
    await record(store, images=2)
    assert await check(limiter) == (
        "You've made 2 images today, the daily limit for each person; "
        "it resets at midnight UTC (in 5 h 30 min)."
    )
    clock.now = start_of_day(NOW) + 86400 + 1
    assert await check(limiter) is None


async def test_channel_and_workspace_caps(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(
        LimitPolicy(user_per_hour=0, user_per_day=0, channel_per_day=2, workspace_per_day=3), store, clock
    )
    await record(store, author="a")
    await record(store, author="b")
    assert await check(limiter) == (
        "This channel has made 2 images today, its daily limit; it resets at midnight UTC (in 5 h 30 min)."
    )
    other_channel = ConversationKey("discord", "guild", "other", "t")
    await record(store, other_channel, author="c")
    assert await check(limiter, other_channel) == (
        "This server has made 3 images today, its daily limit; it resets at midnight UTC (in 5 h 30 min)."
    )
    slack = ConversationKey("slack", "guild", "other", "t")
    assert await check(limiter, slack) is None


async def test_spend_cap_applies_to_admins_too(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=1, daily_spend_usd=0.05), store, clock)
    await record(store, images=1)
    assert await check(limiter, admin=True) is None  # admins bypass the per-person limit
    await record(store, author="bob", images=1)
    message = "The bot has reached today's spending cap of $0.05; it resets at midnight UTC (in 5 h 30 min)."
    assert await check(limiter, admin=True) == message
    assert await check(limiter, author=Author("carol")) == message


async def test_concurrent_turns_cannot_all_slip_under_the_limit(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=2, user_per_day=0), store, clock)
    release = asyncio.Event()
    all_checked = asyncio.Event()
    outcomes: list[str | None] = []

    async def turn() -> None:
        async with limiter.admit(KEY, ALICE) as refusal:
            outcomes.append(refusal)
            if len(outcomes) == 5:
                all_checked.set()
            await release.wait()

    tasks = [asyncio.create_task(turn()) for _ in range(5)]
    async with asyncio.timeout(5):
        await all_checked.wait()
    release.set()
    await asyncio.gather(*tasks)
    assert outcomes.count(None) == 2
    # Finished turns that failed leave nothing behind: the next check passes again.
    assert await check(limiter) is None


async def burst(limiter: RateLimiter, turns: list[tuple[ConversationKey, Author]]) -> list[str | None]:
    """Start every turn at once and hold them all in flight until each has been checked."""
    release = asyncio.Event()
    outcomes: list[str | None] = [None] * len(turns)
    checked = 0
    all_checked = asyncio.Event()

    async def turn(i: int, key: ConversationKey, author: Author) -> None:
        nonlocal checked
        async with limiter.admit(key, author) as refusal:
            outcomes[i] = refusal
            checked += 1
            if checked == len(turns):
                all_checked.set()
            await release.wait()

    tasks = [asyncio.create_task(turn(i, key, author)) for i, (key, author) in enumerate(turns)]
    async with asyncio.timeout(5):
        await all_checked.wait()
    release.set()
    await asyncio.gather(*tasks)
    return outcomes


async def test_a_burst_cannot_pass_the_daily_limit_for_a_person(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=0, user_per_day=3), store, clock)
    await record(store)
    outcomes = await burst(limiter, [(KEY, ALICE)] * 5)
    assert outcomes.count(None) == 2
    assert set(outcomes) - {None} == {
        "You've made 3 images today, the daily limit for each person; "
        "it resets at midnight UTC (in 5 h 30 min)."
    }


async def test_a_burst_cannot_pass_the_channel_or_workspace_limit(store: SqliteStore, clock: Clock) -> None:
    policy = LimitPolicy(user_per_hour=0, user_per_day=0, channel_per_day=2)
    people = [(KEY, Author(f"p{i}")) for i in range(4)]
    assert (await burst(RateLimiter(policy, store, clock), people)).count(None) == 2
    policy = LimitPolicy(user_per_hour=0, user_per_day=0, workspace_per_day=3)
    channels = [(ConversationKey("slack", "T1", f"C{i}", "t"), Author(f"p{i}")) for i in range(5)]
    outcomes = await burst(RateLimiter(policy, store, clock), channels)
    assert outcomes.count(None) == 3
    assert set(outcomes) - {None} == {
        "This workspace has made 3 images today, its daily limit; it resets at midnight UTC (in 5 h 30 min)."
    }


async def test_a_turn_ending_leaves_the_other_in_flight_turn_counted(
    store: SqliteStore, clock: Clock
) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=0, user_per_day=2), store, clock)
    ends = {name: asyncio.Event() for name in ("first", "second")}
    admitted = {name: asyncio.Event() for name in ("first", "second")}

    async def turn(name: str) -> None:
        async with limiter.admit(KEY, ALICE) as refusal:
            assert refusal is None
            admitted[name].set()
            await ends[name].wait()

    first = asyncio.create_task(turn("first"))
    second = asyncio.create_task(turn("second"))
    async with asyncio.timeout(5):
        await admitted["first"].wait()
        await admitted["second"].wait()
        ends["first"].set()
        await first  # it failed: nothing recorded, but "second" is still generating
    assert await check(limiter) is None
    await record(store)  # that third turn made its image
    assert await check(limiter) == (
        "You've made 2 images today, the daily limit for each person; "
        "it resets at midnight UTC (in 5 h 30 min)."
    )
    ends["second"].set()
    async with asyncio.timeout(5):
        await second


async def test_the_spend_cap_refuses_once_spending_reaches_it_exactly(
    store: SqliteStore, clock: Clock
) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=0, user_per_day=0, daily_spend_usd=0.039), store, clock)
    assert await check(limiter) is None
    await record(store)  # one image at $0.039: spending now equals the cap
    assert await check(limiter) == (
        "The bot has reached today's spending cap of $0.04; it resets at midnight UTC (in 5 h 30 min)."
    )


async def test_every_configured_limit_reaches_the_limiter(store: SqliteStore, clock: Clock) -> None:
    def limiter(**env: str) -> RateLimiter:
        return RateLimiter(LimitPolicy.from_config(load_config(env)), store, clock)

    await record(store, images=2)
    unlimited = {"USER_IMAGES_PER_HOUR": "0", "USER_IMAGES_PER_DAY": "0"}
    assert await check(limiter(**unlimited)) is None
    until = "it resets at midnight UTC (in 5 h 30 min)."
    assert await check(limiter(USER_IMAGES_PER_HOUR="2")) == (
        "You've made 2 images in the last hour, the limit for each person; you can make more in about 1 h."
    )
    assert await check(limiter(USER_IMAGES_PER_HOUR="0", USER_IMAGES_PER_DAY="2")) == (
        f"You've made 2 images today, the daily limit for each person; {until}"
    )
    assert await check(limiter(**unlimited, CHANNEL_IMAGES_PER_DAY="2")) == (
        f"This channel has made 2 images today, its daily limit; {until}"
    )
    assert await check(limiter(**unlimited, WORKSPACE_IMAGES_PER_DAY="2")) == (
        f"This server has made 2 images today, its daily limit; {until}"
    )
    assert await check(limiter(**unlimited, DAILY_SPEND_CAP_USD="0.05")) == (
        f"The bot has reached today's spending cap of $0.05; {until}"
    )


async def test_failed_turns_do_not_count(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=1), store, clock)
    for _ in range(3):
        assert await check(limiter) is None  # admitted, nothing recorded (the generation failed)


def test_calendar_helpers() -> None:
    assert datetime.fromtimestamp(start_of_day(NOW), UTC) == datetime(2026, 11, 21, tzinfo=UTC)
    assert datetime.fromtimestamp(month_start(NOW), UTC) == datetime(2026, 11, 1, tzinfo=UTC)
    odd = datetime(2026, 11, 21, 18, 30, 45, 123456, tzinfo=UTC).timestamp()
    assert start_of_day(odd) == datetime(2026, 11, 21, tzinfo=UTC).timestamp()
    assert month_start(odd) == datetime(2026, 11, 1, tzinfo=UTC).timestamp()


@pytest.fixture
def far_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host's clock set to New Zealand, where the local day and month differ from UTC's."""
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_timezone")
def test_days_and_months_are_utc_whatever_the_hosts_timezone() -> None:
    # 2026-11-30 20:00 UTC is already December 1st in Auckland.
    late = datetime(2026, 11, 30, 20, 0, tzinfo=UTC).timestamp()
    assert start_of_day(late) == datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    assert month_start(late) == datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def test_limit_defaults_match_the_configuration_defaults() -> None:
    assert LimitPolicy() == LimitPolicy.from_config(load_config({}))


async def test_waits_are_rounded_up_to_whole_minutes_and_hours(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=1, user_per_day=0), store, clock)
    clock.now = NOW - HOUR_S + 30
    await record(store)
    clock.now = NOW
    assert await check(limiter) == (
        "You've made 1 image in the last hour, the limit for each person; you can make more in about 1 min."
    )
    daily = RateLimiter(LimitPolicy(user_per_hour=0, user_per_day=1), store, clock)
    clock.now = datetime(2026, 11, 21, 19, 0, tzinfo=UTC).timestamp()
    assert await check(daily) == (
        "You've made 1 image today, the daily limit for each person; it resets at midnight UTC (in 5 h)."
    )


async def test_the_hourly_limit_counts_each_platform_apart(store: SqliteStore, clock: Clock) -> None:
    """The same id on Slack and on Discord is two different people."""
    limiter = RateLimiter(LimitPolicy(user_per_hour=1, user_per_day=0), store, clock)
    await record(store, ConversationKey("slack", "T1", "C1", "t"), author="alice")
    assert await check(limiter) is None
    assert await check(limiter, ConversationKey("slack", "T1", "C2", "t")) == (
        "You've made 1 image in the last hour, the limit for each person; you can make more in about 1 h."
    )


async def test_a_turn_of_several_takes_needs_room_for_all_of_them(store: SqliteStore, clock: Clock) -> None:
    limiter = RateLimiter(LimitPolicy(user_per_hour=5, user_per_day=0), store, clock)
    await record(store, images=3)
    async with limiter.admit(KEY, Author("alice"), images=3) as refusal:
        assert refusal is not None and "You've made 5 images in the last hour" in refusal
    async with limiter.admit(KEY, Author("alice"), images=2) as refusal:
        assert refusal is None  # exactly the room that is left
        async with limiter.admit(KEY, Author("alice")) as another:
            assert another is not None  # the two takes in flight count
