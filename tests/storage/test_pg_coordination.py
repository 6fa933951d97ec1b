"""Coordination across processes on one real PostgreSQL: turn order, dead processes, limits, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from bot.limits.quotas import LimitPolicy, RateLimiter
from bot.vocabulary import Author, ConversationKey, Position
from storage.errors import StoreUnavailable
from storage.patience import Patience
from storage.pg_coordination import PgJobLeases, PgReservations, PgTurnOrder
from storage.pg_processes import NOW
from storage.postgres_store import PostgresStore
from tests.auxil.order_recorder import Recorder
from tests.auxil.postgres import past_restart_settle
from tests.auxil.tcp_proxy import FreezableProxy
from tests.auxil.waiting import settled

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000001")
BASE = 1_700_000_000_000_000
# What a step that should be quick may take before the test fails instead of hanging.
SOON = 10


def at(n: int) -> Position:
    """The n-th message of the thread (long posted: no settle wait)."""
    return Position(BASE + n, settle=True)


Processes = Callable[..., Awaitable[PostgresStore]]


@pytest.fixture
async def processes(postgres_url: str) -> AsyncIterator[Processes]:
    """Open stores as separate processes would (each its own pool and lease)."""
    opened: list[PostgresStore] = []

    async def open_one(lease_s: float = 30.0) -> PostgresStore:
        store = PostgresStore(postgres_url, lease_s=lease_s)
        await store.open()
        opened.append(store)
        await past_restart_settle(store.pool)
        return store

    yield open_one
    for store in opened:
        await store.close()


async def queued(store: PostgresStore, rows: int) -> bool:
    """Whether the turn queue holds exactly ``rows`` rows."""
    return await store.pool.fetchval("SELECT count(*) FROM turn_queue") == rows


def die(store: PostgresStore) -> None:
    """Like SIGKILL for the lease: it stops being renewed, and nothing is cleaned up."""
    task = store.lease._renewing
    assert task is not None
    task.cancel()


async def test_turns_spread_over_processes_run_one_at_a_time_in_posting_order(processes: Processes) -> None:
    stores = [await processes() for _ in range(3)]
    orders = [PgTurnOrder(s) for s in stores]
    recorder = Recorder(pause_s=0.01)
    # Six messages of one thread land on three processes, in no particular order.
    arrivals = [(5, 0), (1, 1), (4, 2), (0, 0), (3, 1), (2, 2)]
    tickets = [(n, orders[p].enter(KEY, at(n))) for n, p in arrivals]
    for _, ticket in tickets:
        await asyncio.wait_for(ticket.placed(), SOON)
    async with asyncio.timeout(20):
        await asyncio.gather(*(recorder.run(t, f"m{n}") for n, t in tickets))
    assert recorder.ran == [f"m{n}" for n in range(6)]
    assert recorder.overlaps == 0
    assert await stores[0].pool.fetchval("SELECT count(*) FROM turn_queue") == 0


async def test_a_turn_on_another_process_waits_for_the_running_one(processes: Processes) -> None:
    a, b = await processes(), await processes()
    order_a, order_b = PgTurnOrder(a), PgTurnOrder(b)
    hold = asyncio.Event()
    recorder = Recorder(pause_s=0.01)
    first = order_a.enter(KEY, at(1))
    await asyncio.wait_for(first.placed(), SOON)
    running = asyncio.create_task(recorder.run(first, "first", hold))
    await asyncio.sleep(0.2)
    later = order_b.enter(KEY, at(2))
    waiting = asyncio.create_task(recorder.run(later, "second"))
    await asyncio.sleep(0.5)
    assert recorder.ran == ["first"]  # the second waits on the other process's running turn
    hold.set()
    async with asyncio.timeout(10):
        await asyncio.gather(running, waiting)
    assert recorder.ran == ["first", "second"] and recorder.overlaps == 0


async def test_a_dead_process_blocks_its_conversations_only_until_its_lease_runs_out(
    processes: Processes,
) -> None:
    a, b = await processes(lease_s=1.5), await processes(lease_s=1.5)
    order_a, order_b = PgTurnOrder(a), PgTurnOrder(b)
    stuck = order_a.enter(KEY, at(1))
    await asyncio.wait_for(stuck.__aenter__(), SOON)  # running on A when A is killed
    die(a)
    started = time.monotonic()
    async with asyncio.timeout(15), order_b.enter(KEY, at(2)):
        waited = time.monotonic() - started
    assert 0.5 < waited < 6  # blocked while A's lease lasted, not longer
    assert await b.pool.fetchval("SELECT count(*) FROM turn_queue WHERE owner = $1", a.lease.id) == 0


async def test_a_late_message_on_another_process_is_marked_late(processes: Processes) -> None:
    a, b = await processes(), await processes()
    async with PgTurnOrder(a).enter(KEY, at(2)) as newer:
        assert not newer.late
    async with PgTurnOrder(b).enter(KEY, at(1)) as straggler:
        assert straggler.late


async def test_a_withdrawn_place_does_not_block(processes: Processes) -> None:
    a, b = await processes(), await processes()
    refused = PgTurnOrder(a).enter(KEY, at(1))  # a duplicate delivery, say
    await asyncio.wait_for(refused.placed(), SOON)
    refused.leave()
    async with asyncio.timeout(10), PgTurnOrder(b).enter(KEY, at(2)):
        pass


async def test_cut_off_turns_are_taken_only_once_their_process_is_gone(processes: Processes) -> None:
    a, b = await processes(lease_s=1.5), await processes(lease_s=1.5)
    assert await a.claim_message("slack", "C1", "m1", KEY)
    assert await b.take_interrupted("slack", 0) == []  # A is alive: a rolling deploy's old half
    die(a)
    taken: list[tuple[ConversationKey, str]] = []
    for _ in range(75):  # A's lease runs out within 1.5 s
        if taken := await b.take_interrupted("slack", 0):
            break
        await asyncio.sleep(0.2)
    assert taken == [(KEY, "m1")]
    assert await b.take_interrupted("slack", 0) == []
    c = await processes(lease_s=1.5)
    assert await c.take_interrupted("slack", 0) == []  # announced once, not again on restart


async def test_limits_hold_across_processes(processes: Processes) -> None:
    stores = [await processes() for _ in range(3)]
    policy = LimitPolicy(user_per_hour=3, user_per_day=0)
    limiters = [RateLimiter(policy, s, reservations=PgReservations(s)) for s in stores]
    alice = Author("U1")
    admitted: list[int] = []
    release = asyncio.Event()

    async def turn(i: int) -> None:
        async with limiters[i % 3].admit(KEY, alice) as refusal:
            if refusal is None:
                admitted.append(i)
                await release.wait()

    tasks = [asyncio.create_task(turn(i)) for i in range(9)]
    await asyncio.sleep(1.0)
    assert len(admitted) == 3  # nine at once over three processes: only three get through
    release.set()
    await asyncio.gather(*tasks)
    assert await stores[0].pool.fetchval("SELECT count(*) FROM limit_reservations") == 0


async def test_a_turn_of_n_takes_reserves_n_across_processes(processes: Processes) -> None:
    a, b = await processes(), await processes()
    policy = LimitPolicy(user_per_hour=4, user_per_day=0)
    limiter_a = RateLimiter(policy, a, reservations=PgReservations(a))
    limiter_b = RateLimiter(policy, b, reservations=PgReservations(b))
    alice = Author("U1")
    async with limiter_a.admit(KEY, alice, images=3) as refusal:
        assert refusal is None
        assert (
            await a.pool.fetchval("SELECT count(*) FROM limit_reservations WHERE scope = 'user|slack|U1'")
            == 3
        )
        async with limiter_b.admit(KEY, alice, images=2) as second:
            assert second is not None and "the limit for each person" in second
        async with limiter_b.admit(KEY, alice) as third:
            assert third is None  # room for one more, not for two
    assert await a.pool.fetchval("SELECT count(*) FROM limit_reservations") == 0


async def test_a_dead_process_reservations_stop_counting(processes: Processes) -> None:
    a, b = await processes(lease_s=1.5), await processes(lease_s=1.5)
    policy = LimitPolicy(user_per_hour=1, user_per_day=0)
    hold = asyncio.Event()

    async def held() -> None:
        async with RateLimiter(policy, a, reservations=PgReservations(a)).admit(KEY, Author("U1")) as r:
            assert r is None
            await hold.wait()

    holder = asyncio.create_task(held())
    await asyncio.sleep(0.3)
    limiter_b = RateLimiter(policy, b, reservations=PgReservations(b))
    async with limiter_b.admit(KEY, Author("U1")) as refusal:
        assert refusal is not None and "the limit for each person" in refusal
    die(a)
    await asyncio.sleep(2.0)
    async with limiter_b.admit(KEY, Author("U1")) as refusal:
        assert refusal is None  # A died mid-turn: its image was never made
    hold.set()
    await holder


async def test_periodic_jobs_run_on_one_process_at_a_time(processes: Processes) -> None:
    a, b = await processes(), await processes()
    jobs_a, jobs_b = PgJobLeases(a), PgJobLeases(b)
    assert await jobs_a.acquire("retention", 1.0)
    assert not await jobs_b.acquire("retention", 1.0)
    assert await jobs_a.acquire("retention", 1.0)  # renewed by its holder
    assert await jobs_b.acquire("other-job", 1.0)
    await asyncio.sleep(1.2)
    assert await jobs_b.acquire("retention", 1.0)  # A stopped renewing: B takes over
    assert not await jobs_a.acquire("retention", 1.0)


async def test_more_turns_at_once_than_pooled_connections_all_get_a_limit_decision(
    processes: Processes,
) -> None:
    # Each check holds a connection while it waits for the deployment-wide lock, and the one
    # holding the lock needs a second connection to count usage: with as many turns checking at
    # once as the pool has connections, that second connection must still be available.
    store = await processes()
    limiter = RateLimiter(
        LimitPolicy(user_per_hour=60, user_per_day=0), store, reservations=PgReservations(store)
    )
    decided: list[str | None] = []

    async def turn(i: int) -> None:
        async with limiter.admit(KEY, Author(f"U{i}")) as refusal:
            decided.append(refusal)

    async with asyncio.timeout(10):
        await asyncio.gather(*(turn(i) for i in range(3 * 10)))  # the pool holds 10
    assert decided == [None] * 30


async def test_a_burst_takes_its_places_even_while_every_pooled_connection_is_busy(
    processes: Processes,
) -> None:
    # A place that becomes visible only after the settle window lets a later message on another
    # process start first; arrivals therefore never wait for the main pool.
    a, b = await processes(), await processes()
    busy = [await a.pool.acquire() for _ in range(10)]  # the whole pool
    try:
        order = PgTurnOrder(a)
        tickets = [order.enter(ConversationKey("slack", "T1", "C1", f"t{n}"), at(n)) for n in range(30)]
        async with asyncio.timeout(5):
            await asyncio.gather(*(t.placed() for t in tickets))
        assert await b.pool.fetchval("SELECT count(*) FROM turn_queue") == 30
    finally:
        for conn in busy:
            await a.pool.release(conn)
    for ticket in tickets:
        ticket.leave()


async def test_a_place_whose_turn_was_cancelled_while_queued_is_removed(processes: Processes) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    ticket = order.enter(KEY, at(1))
    ticket._row.cancel()  # the turn's task is cancelled (a stop) before its place is stored
    ticket.leave()  # as the pipeline does when its task ends
    kept = order.enter(KEY, at(2))
    await asyncio.wait_for(kept.placed(), SOON)
    assert await settled(lambda: queued(store, 1))  # nothing of the cancelled turn stays queued
    async with asyncio.timeout(10), kept:
        pass  # nothing of the cancelled turn blocks the next one


async def test_a_place_insert_the_database_refuses_for_too_long_fails_that_turn_and_the_next_ones_still_queue(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await processes()
    order = PgTurnOrder(store, patience=Patience(0.3))  # DATABASE_OUTAGE_S of 0.3 s
    real = store.arrivals_pool
    tries = 0

    class Broken:
        async def fetch(self, *args: object) -> list[object]:
            nonlocal tries
            tries += 1
            raise asyncpg.PostgresConnectionError("connection lost")

    monkeypatch.setattr(type(store), "arrivals_pool", property(lambda _: Broken()))
    failed = order.enter(KEY, at(1))
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(failed.placed(), SOON)
    assert tries > 1  # it was held and tried again before giving up
    failed.leave()  # the turn failed; the pipeline leaves its place
    monkeypatch.setattr(type(store), "arrivals_pool", property(lambda _: real))
    async with asyncio.timeout(10), order.enter(KEY, at(2)):
        assert await store.pool.fetchval("SELECT count(*) FROM turn_queue") == 1


async def test_a_place_insert_that_fails_while_the_database_is_away_is_placed_once_it_is_back(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    real = store.arrivals_pool
    tries = 0

    class Restarting:
        """PostgreSQL restarting: the first inserts are refused, then it answers again."""

        async def fetch(self, *args: object) -> list[object]:
            nonlocal tries
            tries += 1
            if tries < 4:
                raise asyncpg.CannotConnectNowError("the database system is starting up")
            return await real.fetch(*args)

    monkeypatch.setattr(type(store), "arrivals_pool", property(lambda _: Restarting()))
    held = order.enter(KEY, at(1))
    await asyncio.wait_for(held.placed(), SOON)
    assert tries == 4
    async with asyncio.timeout(10), held:
        assert await store.pool.fetchval("SELECT count(*) FROM turn_queue") == 1


OTHER = ConversationKey("slack", "T1", "C1", "1700000000.000999")


@pytest.mark.parametrize("where", ["same process", "another process"])
async def test_a_running_turn_does_not_hold_up_another_conversation(processes: Processes, where: str) -> None:
    a = await processes()
    order_a = PgTurnOrder(a)
    order_b = order_a if where == "same process" else PgTurnOrder(await processes())
    hold = asyncio.Event()
    recorder = Recorder()
    running = asyncio.create_task(recorder.run(order_a.enter(KEY, at(1)), "long turn", hold))

    assert await settled(lambda: recorder.ran == ["long turn"])
    # posted later, in another thread: it must not wait for the long turn
    async with asyncio.timeout(10), order_b.enter(OTHER, at(2)):
        assert not running.done()
    hold.set()
    await asyncio.wait_for(running, SOON)


async def test_withdrawn_places_leave_nothing_behind_in_memory(processes: Processes) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    for n in range(50):  # duplicate deliveries, refused turns: each place is withdrawn
        ticket = order.enter(KEY, at(n))
        await asyncio.wait_for(ticket.placed(), SOON)
        ticket.leave()

    assert await settled(lambda: queued(store, 0))
    # the background withdrawals drop their own bookkeeping once done
    assert await settled(lambda: len(order.aftercare) == 0)
    assert store.lease._held["turn_queue"] == set()  # nor does the lease renew them


async def test_turns_arriving_while_a_place_insert_fails_still_take_their_places(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    real = store.arrivals_pool
    failing = asyncio.Event()
    give_up = asyncio.Event()

    class Blip:
        """The connection drops while the first insert is in flight, then comes back."""

        async def fetch(self, *args: object) -> list[object]:
            failing.set()
            await give_up.wait()
            monkeypatch.setattr(type(store), "arrivals_pool", property(lambda _: real))
            raise asyncpg.PostgresConnectionError("connection lost")

    monkeypatch.setattr(type(store), "arrivals_pool", property(lambda _: Blip()))
    blipped = order.enter(KEY, at(1))
    await failing.wait()
    arrived_meanwhile = order.enter(KEY, at(2))  # queued behind the failing insert
    give_up.set()
    async with asyncio.timeout(5):  # the failed insert is tried again, and both are placed
        await asyncio.gather(blipped.placed(), arrived_meanwhile.placed())
    assert await store.pool.fetchval("SELECT count(*) FROM turn_queue") == 2
    recorder = Recorder()
    async with asyncio.timeout(10):
        await asyncio.gather(recorder.run(arrived_meanwhile, "second"), recorder.run(blipped, "first"))
    assert recorder.ran == ["first", "second"]


@pytest.mark.parametrize("first_to_arrive", ["the earlier", "the later"])
async def test_messages_of_the_same_instant_run_in_their_tiebreak_order_across_processes(
    processes: Processes, first_to_arrive: str
) -> None:
    # Two Discord messages of the same millisecond: the snowflake's increment decides.
    a, b = await processes(), await processes()
    first, second = Position(BASE, tiebreak=1), Position(BASE, tiebreak=2)
    arrivals = [(first, a), (second, b)] if first_to_arrive == "the earlier" else [(second, b), (first, a)]
    recorder = Recorder(pause_s=0.05)
    tickets = [(p.tiebreak, PgTurnOrder(s).enter(KEY, p)) for p, s in arrivals]
    for _, ticket in tickets:
        await asyncio.wait_for(ticket.placed(), SOON)
    async with asyncio.timeout(SOON):
        await asyncio.gather(*(recorder.run(t, f"tiebreak {n}") for n, t in tickets))
    assert recorder.ran == ["tiebreak 1", "tiebreak 2"] and recorder.overlaps == 0


async def test_a_message_of_the_same_instant_answered_after_a_later_one_is_late(processes: Processes) -> None:
    a, b = await processes(), await processes()
    async with asyncio.timeout(SOON), PgTurnOrder(a).enter(KEY, Position(BASE, tiebreak=2)) as newer:
        assert newer.late is False
    async with asyncio.timeout(SOON), PgTurnOrder(b).enter(KEY, Position(BASE, tiebreak=1)) as straggler:
        assert straggler.late is True


async def test_an_earlier_message_arriving_while_a_later_one_runs_waits_for_it(processes: Processes) -> None:
    a, b = await processes(), await processes()
    hold = asyncio.Event()
    recorder = Recorder(pause_s=0.01)
    running = asyncio.create_task(recorder.run(PgTurnOrder(a).enter(KEY, at(2)), "later", hold))

    assert await settled(lambda: recorder.ran == ["later"])
    straggler = PgTurnOrder(b).enter(KEY, at(1))  # posted first, delivered late, elsewhere
    waiting = asyncio.create_task(recorder.run(straggler, "earlier"))
    await asyncio.sleep(0.5)
    assert recorder.ran == ["later"]  # it does not start beside the running turn
    hold.set()
    await asyncio.wait_for(asyncio.gather(running, waiting), SOON)
    assert recorder.ran == ["later", "earlier"] and recorder.overlaps == 0
    assert straggler.late


@pytest.mark.parametrize("next_turn_arrives", ["after A's start is committed", "while A is starting"])
async def test_a_process_taken_for_dead_that_comes_back_still_holds_its_conversation(
    processes: Processes, next_turn_arrives: str
) -> None:
    # A long pause (a stalled host, a network partition) outlasts A's lease: B sweeps A's place
    # away. When A resumes and starts that turn, other processes must see it running again.
    a, b = await processes(lease_s=1.0), await processes(lease_s=1.0)
    order_a, order_b = PgTurnOrder(a), PgTurnOrder(b)
    paused = order_a.enter(KEY, at(1))
    await asyncio.wait_for(paused.placed(), SOON)
    die(a)
    await asyncio.sleep(1.3)
    async with asyncio.timeout(SOON), order_b.enter(KEY, at(2)):
        pass  # A's place no longer blocks: its lease ran out (and B removed the place)
    assert await b.pool.fetchval("SELECT count(*) FROM turn_queue WHERE owner = $1", a.lease.id) == 0
    # A is back: its lease is renewed again, as its renewal task would once the pause ends.
    await a.pool.execute(f"UPDATE bot_processes SET seen_at = {NOW} WHERE id = $1", a.lease.id)
    a.lease._renewing = asyncio.create_task(a.lease._renew_forever())
    recorder = Recorder(pause_s=0.01)
    hold = asyncio.Event()
    if next_turn_arrives == "while A is starting":
        # A stops inside the call that puts its place back, holding the conversation's lock: a
        # transaction of the test's holds that very row id uncommitted, so A's insert waits on
        # it. B's next turn decides then.
        blocker = await asyncpg.connect(a.url)
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute(
            "INSERT INTO turn_queue (id, conversation, posted_us, tiebreak, owner) "
            "OVERRIDING SYSTEM VALUE VALUES ($1, 'test', 0, 0, 'test')",
            await paused._row,  # type: ignore[attr-defined]
        )
        resumed = asyncio.create_task(recorder.run(paused, "resumed on A", hold))
        assert await settled(lambda: _inserting_waits(b))
        waiting = asyncio.create_task(recorder.run(order_b.enter(KEY, at(3)), "next on B"))
        await asyncio.sleep(0.5)
        beside_a = list(recorder.ran)
        await holding.rollback()  # before asserting: a failing test must not leave A waiting
        await blocker.close()
        assert beside_a == []  # B waits for A's decision rather than deciding beside it
    else:
        resumed = asyncio.create_task(recorder.run(paused, "resumed on A", hold))

    assert await settled(lambda: recorder.ran[:1] == ["resumed on A"])
    assert paused.late  # B answered a later message meanwhile
    if next_turn_arrives == "after A's start is committed":
        waiting = asyncio.create_task(recorder.run(order_b.enter(KEY, at(3)), "next on B"))
    await asyncio.sleep(0.5)
    assert recorder.ran == ["resumed on A"]
    hold.set()
    await asyncio.wait_for(asyncio.gather(resumed, waiting), SOON)
    assert recorder.ran == ["resumed on A", "next on B"] and recorder.overlaps == 0


async def _inserting_waits(store: PostgresStore) -> bool:
    """Whether a process's start of a queued turn waits on a row lock inside the database."""
    return bool(
        await store.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'SELECT turn_queue_start%'"
        )
    )


async def test_a_limit_check_that_fails_midway_reserves_nothing_and_lets_the_next_one_decide(
    processes: Processes,
) -> None:
    a = await processes()
    reservations = PgReservations(a)
    complaints: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: complaints.append(str(context.get("message"))))
    try:
        with pytest.raises(RuntimeError, match="mid-check"):
            async with reservations.checking() as ledger:
                await ledger.reserve([("user", "slack", "U1")])
                raise RuntimeError("mid-check")
        async with asyncio.timeout(SOON), reservations.checking() as ledger:  # the lock is free
            assert await ledger.pending(("user", "slack", "U1")) == 0
        assert await a.pool.fetchval("SELECT count(*) FROM limit_reservations") == 0
        assert complaints == []  # rolled back by the check, not by the pool's clean-up
    finally:
        loop.set_exception_handler(None)


async def test_a_limit_check_on_another_process_waits_for_one_being_decided(processes: Processes) -> None:
    a, b = await processes(), await processes()
    policy = LimitPolicy(user_per_hour=1, user_per_day=0)
    deciding = asyncio.Event()
    decide = asyncio.Event()

    class PausedBeforeCommit(PgReservations):
        @contextlib.asynccontextmanager
        async def checking(self, usage: object = None) -> AsyncIterator[object]:  # type: ignore[override]
            async with super().checking(usage) as ledger:
                yield ledger
                deciding.set()  # A has reserved its image; its transaction is still open
                await decide.wait()

    limiter_a = RateLimiter(policy, a, reservations=PausedBeforeCommit(a))
    limiter_b = RateLimiter(policy, b, reservations=PgReservations(b))
    alice = Author("U1")
    outcomes: dict[str, str | None] = {}
    release = asyncio.Event()

    async def turn(name: str, limiter: RateLimiter) -> None:
        async with limiter.admit(KEY, alice) as refusal:
            outcomes[name] = refusal
            await release.wait()

    on_a = asyncio.create_task(turn("A", limiter_a))
    await asyncio.wait_for(deciding.wait(), SOON)
    on_b = asyncio.create_task(turn("B", limiter_b))
    await asyncio.sleep(0.5)
    beside_a = dict(outcomes)
    decide.set()  # before asserting: a failing test must not leave A's transaction open
    assert beside_a == {}  # B's check waits for A's to be committed

    assert await settled(lambda: "B" in outcomes)  # A is still generating meanwhile
    release.set()
    await asyncio.wait_for(asyncio.gather(on_a, on_b), SOON)
    assert outcomes == {
        "A": None,
        "B": "You've made 1 image in the last hour, the limit for each person; "
        "you can make more in about 1 h.",
    }


async def test_a_waiting_turn_polls_the_database_a_few_times_a_second_at_most(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await processes(), await processes()
    order_b = PgTurnOrder(b)
    tries = 0
    real_try = order_b._try_start

    async def counting(*args: Position | int | str) -> bool:
        nonlocal tries
        tries += 1
        return await real_try(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(order_b, "_try_start", counting)
    hold = asyncio.Event()
    recorder = Recorder()
    running = asyncio.create_task(recorder.run(PgTurnOrder(a).enter(KEY, at(1)), "long", hold))

    assert await settled(lambda: recorder.ran == ["long"])
    waiting = asyncio.create_task(recorder.run(order_b.enter(KEY, at(2)), "waits"))
    await asyncio.sleep(2.0)
    # backing off from 20 ms to 250 ms: about 12 looks in two seconds, not hundreds
    assert 3 <= tries <= 16
    hold.set()
    await asyncio.wait_for(asyncio.gather(running, waiting), SOON)


async def test_a_finished_turn_costs_no_withdrawal(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    withdrawn: list[object] = []

    def withdraw(row: object) -> None:
        withdrawn.append(row)

    monkeypatch.setattr(order, "withdraw", withdraw)
    ticket = order.enter(KEY, at(1))
    async with asyncio.timeout(SOON), ticket:
        pass
    ticket.leave()  # the pipeline always leaves at the end; after a finished turn it is a no-op
    ticket.leave()
    await asyncio.sleep(0)
    assert withdrawn == []
    refused = order.enter(KEY, at(2))
    refused.leave()
    refused.leave()
    await asyncio.sleep(0)
    assert len(withdrawn) == 1  # a place given up is withdrawn once


async def test_a_place_whose_turn_is_cancelled_during_its_insert_is_removed(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    real = store.arrivals_pool
    inserting = asyncio.Event()
    go_on = asyncio.Event()

    class Slow:
        async def fetch(self, *args: object) -> list[asyncpg.Record]:
            inserting.set()
            await go_on.wait()
            return await real.fetch(*args)

    monkeypatch.setattr(type(store), "arrivals_pool", property(lambda _: Slow()))
    cancelled = order.enter(KEY, at(1))
    kept = order.enter(KEY, at(2))
    await asyncio.wait_for(inserting.wait(), SOON)
    cancelled._row.cancel()  # the turn is stopped while its row is being written
    cancelled.leave()
    go_on.set()
    await asyncio.wait_for(kept.placed(), SOON)

    assert await settled(lambda: queued(store, 1))
    async with asyncio.timeout(SOON), kept:
        pass


class _FailingPool:
    """A pool whose statements fail, as when the connection to PostgreSQL drops."""

    async def execute(self, *args: object) -> str:
        raise asyncpg.PostgresConnectionError("connection lost")


async def test_a_withdrawal_that_fails_is_retried_until_the_database_answers_and_not_renewed_meanwhile(
    processes: Processes, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = await processes()
    order = PgTurnOrder(store)
    refused = order.enter(KEY, at(1))
    await asyncio.wait_for(refused.placed(), SOON)
    row = await refused._row
    assert store.lease._held["turn_queue"] == {row}
    monkeypatch.setattr(type(order), "pool", property(lambda _: _FailingPool()))
    caplog.set_level(logging.INFO, logger="storage.aftercare")
    refused.leave()
    assert await settled(
        lambda: any(r.getMessage() == "bookkeeping waits for the database" for r in caplog.records)
    )
    assert store.lease._held["turn_queue"] == set()  # no longer renewed: it would expire on its own
    assert await queued(store, 1)
    monkeypatch.undo()  # the database answers again
    assert await settled(lambda: queued(store, 0))
    assert await settled(lambda: len(order.aftercare) == 0)


async def test_a_process_that_stops_cleanly_frees_its_places_and_reservations_at_once(
    processes: Processes,
) -> None:
    # A deploy stops the old process: its waiting turns and admitted images must not hold the
    # conversation or the limits for a whole lease (30 s by default).
    a, b = await processes(lease_s=30.0), await processes(lease_s=30.0)
    order_a = PgTurnOrder(a)
    waiting = order_a.enter(KEY, at(1))
    await asyncio.wait_for(waiting.placed(), SOON)
    async with PgReservations(a).checking() as ledger:
        await ledger.reserve([("user", "U1")])
    gone = a.lease.id
    await a.close()
    assert await b.pool.fetchval("SELECT count(*) FROM bot_processes WHERE id = $1", gone) == 0
    assert await b.pool.fetchval("SELECT count(*) FROM turn_queue") == 0
    assert await b.pool.fetchval("SELECT count(*) FROM limit_reservations") == 0
    started = time.monotonic()
    async with asyncio.timeout(SOON), PgTurnOrder(b).enter(KEY, at(2)):
        assert time.monotonic() - started < 2


async def test_a_process_stopping_while_the_database_is_gone_still_stops(postgres_url: str) -> None:
    proxy, relayed = await FreezableProxy.in_front_of(postgres_url)
    store = PostgresStore(relayed)
    await store.open()
    await proxy.close()  # the server is unreachable: no connection, no new ones
    await asyncio.wait_for(store.close(), SOON)  # the lease running out cleans up instead


async def test_a_lease_that_cannot_be_renewed_is_logged(
    processes: Processes, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await processes(lease_s=0.3)
    caplog.set_level(logging.WARNING, logger="storage.pg_processes")

    monkeypatch.setattr(store.lease, "_pool", _FailingPool())  # every statement fails

    assert await settled(lambda: bool(caplog.records))
    record = caplog.records[0]
    assert (record.getMessage(), getattr(record, "error", None)) == (
        "could not renew the process lease",
        "PostgresConnectionError",
    )
    monkeypatch.undo()
