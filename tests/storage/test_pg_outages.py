"""PostgreSQL coordination through outages, forced: places and reservations whose clean-up
failed expire on their own, live work never does, nobody is judged dead right after an outage,
and a turn taken over while its process was paused finds out before it stores or posts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from bot.composition import build_service, coordination_for
from bot.config import load_config
from bot.gemini import GeminiEngine
from bot.limits.quotas import LimitPolicy, RateLimiter
from bot.turns.order import InProcessFirst
from bot.vocabulary import Author, ConversationKey, Position
from storage import pg_coordination as coordination
from storage.aftercare import Aftercare
from storage.patience import Patience
from storage.pg_coordination import PgReservations, PgTurnOrder
from storage.pg_fence import PgFence
from storage.postgres_store import PostgresStore
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.order_recorder import Recorder
from tests.auxil.postgres import past_restart_settle, server_uptime_s
from tests.auxil.waiting import settled

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000001")
BASE = 1_700_000_000_000_000
SOON = 10
LEASE_S = 1.5

Processes = Callable[..., Awaitable[PostgresStore]]


def at(n: int) -> Position:
    return Position(BASE + n, settle=True)


@pytest.fixture
async def processes(postgres_url: str) -> AsyncIterator[Processes]:
    opened: list[PostgresStore] = []

    async def open_one(lease_s: float = LEASE_S) -> PostgresStore:
        store = PostgresStore(postgres_url, lease_s=lease_s)
        await store.open()
        opened.append(store)
        await past_restart_settle(store.pool)
        return store

    yield open_one
    for store in opened:
        await store.close()


class Refusing:
    """The pool while the database is away: every statement is refused."""

    async def execute(self, *args: object) -> str:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")

    async def fetchval(self, *args: object) -> object:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")


def pause(store: PostgresStore, for_s: float) -> None:
    """As SIGSTOP would: the lease is not renewed for ``for_s``, then renews again."""
    task = store.lease._renewing
    assert task is not None
    task.cancel()
    store.lease._renewed_at -= for_s


async def count(store: PostgresStore, table: str) -> int:
    return int(await store.pool.fetchval(f"SELECT count(*) FROM {table}"))


async def test_a_place_whose_clean_up_failed_expires_and_the_conversation_goes_on(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await processes(), await processes()
    order_a = PgTurnOrder(a, aftercare=Aftercare(max_waiting=0))  # its retries are lost too
    async with asyncio.timeout(SOON), order_a.enter(KEY, at(1)):
        monkeypatch.setattr(type(order_a), "pool", property(lambda _: Refusing()))
    monkeypatch.undo()
    assert await count(a, "turn_queue") == 1  # left behind, running, under a live process
    async with asyncio.timeout(SOON + LEASE_S), PgTurnOrder(b).enter(KEY, at(2)):
        pass  # it stopped holding the conversation once it went a lease without renewal
    assert await settled(lambda: _empty(b, "turn_queue"))


async def test_a_waiting_place_of_live_work_is_never_taken_for_an_abandoned_one(processes: Processes) -> None:
    a, b = await processes(), await processes()
    hold = asyncio.Event()
    order_a, order_b = PgTurnOrder(a), PgTurnOrder(b)

    async def long_turn() -> None:
        async with order_a.enter(KEY, at(1)):
            await hold.wait()

    running = asyncio.create_task(long_turn())
    assert await settled(lambda: _running(a))
    waiting = order_a.enter(KEY, at(2))  # waits behind it, in the same process, for long
    later = asyncio.create_task(_run(order_b.enter(KEY, at(3))))
    await asyncio.sleep(LEASE_S * 2.5)  # both places are older than a lease, but renewed
    assert not later.done()
    hold.set()
    async with asyncio.timeout(SOON), waiting:
        assert not later.done()  # the second message still goes before the third
    await asyncio.wait_for(asyncio.gather(running, later), SOON)


async def test_a_reservation_whose_release_failed_expires_and_is_deleted_once_the_database_answers(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await processes(), await processes()
    policy = LimitPolicy(user_per_hour=1, user_per_day=0)
    reservations_a = PgReservations(a)
    alice = Author("U1")
    async with RateLimiter(policy, a, reservations=reservations_a).admit(KEY, alice) as refusal:
        assert refusal is None
        monkeypatch.setattr(a, "_pool", Refusing())
    # Its release is waiting for the database; meanwhile the reservation is not renewed.
    assert len(reservations_a.aftercare) == 1
    assert a.lease._held["limit_reservations"] == set()
    limiter_b = RateLimiter(policy, b, reservations=PgReservations(b))
    await asyncio.sleep(LEASE_S * 1.2)
    async with limiter_b.admit(KEY, alice) as refusal:
        assert refusal is None  # the lapsed reservation no longer counts against Alice
    monkeypatch.undo()
    assert await settled(lambda: _empty(b, "limit_reservations"), SOON)


async def test_right_after_an_outage_nobody_is_taken_for_dead_until_everyone_could_renew(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await processes(), await processes()
    assert await a.claim_message("slack", "C1", "m1", KEY)  # A's turn, in flight
    # The database is away longer than the lease, for both: each fails a renewal.
    for store in (a, b):
        monkeypatch.setattr(store.lease, "_pool", Refusing())
        assert await store.lease.renew() is False
    await asyncio.sleep(LEASE_S * 1.2)
    monkeypatch.undo()
    assert await b.lease.renew()  # B is back first; A has not renewed yet
    assert b.lease.may_judge_others() is False
    assert await b.take_interrupted("slack", 0) == []  # A's live turn is not announced
    assert await a.lease.renew()
    await asyncio.sleep(LEASE_S)
    assert b.lease.may_judge_others() is True
    assert await b.take_interrupted("slack", 0) == []  # A renewed meanwhile: alive


async def test_a_paused_process_finds_its_turn_taken_over_before_storing(processes: Processes) -> None:
    a, b = await processes(), await processes()
    assert await a.claim_message("slack", "C1", "m1", KEY)
    fence = PgFence(a, Patience(10.0)).for_turn(KEY, "m1")
    assert await fence.holds()  # no lapse: no database round trip needed
    pause(a, LEASE_S * 3)
    await b.pool.execute("UPDATE bot_processes SET seen_at = seen_at - 100 WHERE id = $1", a.lease.id)
    assert [m for _, m in await b.take_interrupted("slack", 0)] == ["m1"]  # B announces it
    assert await fence.holds() is False  # A, resumed, learns it before storing or posting
    assert await fence.holds() is False


async def test_a_paused_process_whose_turn_nobody_took_keeps_it(processes: Processes) -> None:
    a, b = await processes(), await processes()
    assert await a.claim_message("slack", "C1", "m1", KEY)
    fence = PgFence(a, Patience(10.0)).for_turn(KEY, "m1")
    pause(a, LEASE_S * 3)
    assert a.lease.intact_since(0.0) is False
    assert await fence.holds() is True  # renewed first, then found its own
    assert a.lease.intact_since(0.0) is False  # the lapse is remembered for turns that began before it
    assert await b.take_interrupted("slack", 0) == []  # alive again: nobody takes it now


async def _run(ticket: object) -> None:
    async with ticket:  # type: ignore[attr-defined]
        pass


async def _empty(store: PostgresStore, table: str) -> bool:
    return await count(store, table) == 0


async def _running(store: PostgresStore) -> bool:
    return bool(await store.pool.fetchval("SELECT count(*) FROM turn_queue WHERE running"))


async def test_after_a_server_restart_held_messages_take_their_places_before_any_turn_starts(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes each held a message of one thread through a PostgreSQL restart; the one
    # holding the later message happens to reach the database first.
    a, b = await processes(), await processes()
    uptime = await server_uptime_s(a.pool)
    # As if the server had started just now: it "restarted" 1.5 s before the settle ends.
    monkeypatch.setattr(coordination, "RESTART_SETTLE_S", float(uptime) + 1.5)
    recorder = Recorder()
    later = asyncio.create_task(recorder.run(PgTurnOrder(b).enter(KEY, at(2)), "posted second"))
    await asyncio.sleep(0.8)  # the earlier message's retry comes back a little later
    assert recorder.ran == []
    earlier = asyncio.create_task(recorder.run(PgTurnOrder(a).enter(KEY, at(1)), "posted first"))
    await asyncio.wait_for(asyncio.gather(later, earlier), SOON)
    assert recorder.ran == ["posted first", "posted second"] and recorder.overlaps == 0


async def test_a_limit_check_needs_one_connection_so_a_short_pool_cannot_wedge_it(postgres_url: str) -> None:
    # With connections short, a check holding the deployment-wide lock must not wait for a
    # second connection that other processes, waiting for that lock, will never give back.
    store = PostgresStore(postgres_url, max_connections=2)
    await store.open()
    try:
        busy = await store.pool.acquire()  # the other connection of the pool is taken
        try:
            limiter = RateLimiter(
                LimitPolicy(user_per_hour=5, user_per_day=5, channel_per_day=5, daily_spend_usd=1.0),
                store,
                reservations=PgReservations(store),
            )
            async with asyncio.timeout(SOON), limiter.admit(KEY, Author("U1")) as refusal:
                assert refusal is None
        finally:
            await store.pool.release(busy)
    finally:
        await store.close()


async def test_a_stop_waits_for_bookkeeping_the_coordination_left_in_the_background(
    processes: Processes, fake_gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One Aftercare is built at start-up and shared by the coordination and the service: an empty
    # one (falsy, by its length) must not be swapped for a private one the stop never drains.
    store = await processes()
    config = load_config({"GEMINI_API_KEY": "k", "DATABASE_URL": "postgresql://u@127.0.0.1:1/db"})
    care = Aftercare()
    coordination = coordination_for(store, config, Patience(10.0), care)
    engine = GeminiEngine(api_key="k", model="gemini-2.5-flash-image", base_url=fake_gemini.base_url)
    service = build_service(config, store, engine, coordination, aftercare=care)
    try:
        assert isinstance(coordination.order, InProcessFirst)
        order = coordination.order.shared
        assert isinstance(order, PgTurnOrder) and order.aftercare is care
        ticket = order.enter(KEY, at(1))
        await asyncio.wait_for(ticket.placed(), SOON)
        monkeypatch.setattr(store, "_pool", Refusing())  # the database goes away
        ticket.leave()  # its withdrawal now waits in the background
        assert await settled(lambda: len(care) == 1)
        monkeypatch.undo()
        assert await service.drain(SOON) is True  # the stop waited for it
        assert await count(store, "turn_queue") == 0
    finally:
        await engine.aclose()
