"""The store contract run against PostgresStore on a real server, plus what only PostgreSQL shows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.vocabulary import Usage
from storage.blob_cache import BlobCache
from storage.errors import HeadMoved, StoreError
from storage.pg_migrations import PG_LATEST_VERSION
from storage.pg_processes import FORGOTTEN_AFTER_S, NOW, ProcessLease
from storage.postgres_store import PostgresStore
from storage.protocol import NewTurn, StoredTurn
from tests.auxil.pausing_pool import PausingPool
from tests.auxil.tcp_proxy import FreezableProxy
from tests.auxil.waiting import settled
from tests.storage.store_contract import (
    FakeClock,
    StoreContract,
    StoreFactory,
    make_blob,
    make_key,
    model_record,
    user_content,
)
from tests.storage.store_contract_one_call import every_blob

MB = 1024 * 1024


@pytest.fixture
async def raw(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test's schema, next to the store."""
    conn = await asyncpg.connect(postgres_url)
    yield conn
    await conn.close()


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store_factory(self, postgres_url: str, clock: FakeClock) -> StoreFactory:
        async def factory() -> PostgresStore:
            store = PostgresStore(postgres_url, clock=clock, blob_cache=BlobCache(MB))
            await store.open()
            return store

        return factory

    async def test_schema_version_is_the_latest_migration(
        self, store: PostgresStore, raw: asyncpg.Connection
    ) -> None:
        assert await store.schema_version() == PG_LATEST_VERSION
        versions = await raw.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in versions] == list(range(1, PG_LATEST_VERSION + 1))

    async def test_records_are_stored_as_the_exact_json_text(
        self, store: PostgresStore, raw: asyncpg.Connection
    ) -> None:
        record = model_record("done", signature="CiQB0e2Kb+/x9==")
        record["parts"].append({"text": "nul \u0000 🍌", "zeta": 1, "alpha": {"b": 2, "a": 1}})
        turn = await store.append_turn(
            NewTurn(
                key=make_key(),
                parent_id=None,
                user_content=user_content("hi"),
                model_content=record,
                model="m",
                author_id="alice",
            ),
            expected_head=None,
        )
        text = await raw.fetchval("SELECT model_content FROM turns WHERE id = $1", turn.id)
        # Key order, escapes and signatures exactly as written: not re-encoded by jsonb.
        assert text == json.dumps(record, separators=(",", ":"))
        assert json.loads(text) == record == turn.model_content

    async def test_blobs_are_stored_once_as_bytea(
        self, store: PostgresStore, raw: asyncpg.Connection
    ) -> None:
        shared = make_blob("shared", 4096, "image/webp")
        t = await self.add(store, make_key("a"), images=[shared], outputs=[shared])
        await self.add(store, make_key("a"), t, images=[shared])
        await self.add(store, make_key("b"), images=[shared], blobs=[shared, shared])
        rows = await raw.fetch("SELECT sha256, mime_type, size, pg_typeof(data)::text, data FROM blobs")
        assert [tuple(r) for r in rows] == [(shared.sha256, "image/webp", 4096, "bytea", shared.data)]
        assert await raw.fetchval("SELECT COUNT(*) FROM turn_blobs WHERE sha256 = $1", shared.sha256) == 3
        text = await raw.fetchval("SELECT string_agg(user_content || model_content, '') FROM turns")
        assert "base64" not in text

    async def test_images_another_process_stored_are_read_once_and_forgetting_drops_its_own_copy(
        self, store: PostgresStore, open_store: StoreFactory
    ) -> None:
        other = await open_store()
        key = make_key()
        one, two = make_blob("one"), make_blob("two")
        first = await self.add(store, key, outputs=[one])
        await self.add(other, key, first, outputs=[two])
        read = await store.turn_context(key, blobs=every_blob)
        assert read.blobs == {one.sha256: one.data, two.sha256: two.data}
        assert store.blob_cache.held_bytes == len(one.data) + len(two.data)
        await other.forget(key)  # another process forgets: the rows are gone for everyone
        assert (await store.turn_context(key, blobs=every_blob)).blobs == {}
        assert await store.history(key) == []

    async def test_open_twice_and_use_after_close_are_errors(self, store: PostgresStore) -> None:
        with pytest.raises(StoreError, match="already open"):
            await store.open()
        await store.close()
        with pytest.raises(StoreError, match="not open"):
            await store.history(make_key())
        with pytest.raises(StoreError, match="not open"):
            await store.append_turn(
                NewTurn(
                    key=make_key(),
                    parent_id=None,
                    user_content=user_content("x"),
                    model_content=model_record("y"),
                    model="m",
                    author_id="a",
                ),
                expected_head=None,
            )

    async def test_two_processes_appending_against_one_head_store_one_turn(
        self, open_store: StoreFactory
    ) -> None:
        """Two stores (two pools, as two processes would have) race for the same head."""
        first, second = await open_store(), await open_store()
        key = make_key()
        base = await self.add(first, key)
        for round_ in range(5):
            head = (await self.add(first, key, base)) if round_ else base
            images = [make_blob(f"p{round_}-a"), make_blob(f"p{round_}-b")]
            results = await asyncio.gather(
                self.add(first, key, head, images=[images[0]], expected_head=head.id),
                self.add(second, key, head, images=[images[1]], expected_head=head.id),
                return_exceptions=True,
            )
            stored = [r for r in results if isinstance(r, StoredTurn)]
            refused = [r for r in results if isinstance(r, HeadMoved)]
            assert (len(stored), len(refused)) == (1, 1), results
            assert refused[0].head == stored[0].id
            assert (await second.history(key))[-1] == stored[0]
            loser = images[1 - results.index(stored[0])]
            assert await first.load_blobs([loser.sha256]) == {}

    async def test_processes_are_read_from_the_leases_of_every_process(
        self, open_store: StoreFactory
    ) -> None:
        first, second = await open_store(), await open_store()
        assert isinstance(first, PostgresStore) and isinstance(second, PostgresStore)
        seen = await first.processes()
        assert {(p.id, p.this) for p in seen} == {(first.lease.id, True), (second.lease.id, False)}
        assert all(p.started_at <= p.seen_at for p in seen)
        await second.close()
        assert [p.id for p in await first.processes()] == [first.lease.id]  # a clean stop leaves

    async def test_a_process_starting_removes_rows_of_processes_silent_for_a_week(
        self, open_store: StoreFactory, raw: asyncpg.Connection
    ) -> None:
        first = await open_store()
        assert isinstance(first, PostgresStore)
        now = float(await raw.fetchval(f"SELECT {NOW}"))
        for dead, silent_s in (("died-long-ago", FORGOTTEN_AFTER_S + 60), ("died-yesterday", 86400.0)):
            row = "INSERT INTO bot_processes (id, started_at, seen_at) VALUES ($1, $2, $2)"
            await raw.execute(row, dead, now - silent_s)
        await open_store()
        ids = {p.id for p in await first.processes()}
        assert "died-long-ago" not in ids and "died-yesterday" in ids  # the dashboard shows it gone

    async def test_each_process_platform_states_are_written_with_its_lease_renewal(
        self, open_store: StoreFactory
    ) -> None:
        first, second = await open_store(), await open_store()
        assert isinstance(first, PostgresStore) and isinstance(second, PostgresStore)
        first.report_platforms({"slack": "disconnected", "discord": "connected"})
        # Not written until the lease is renewed.
        assert {p.id: p.platforms for p in await second.processes()} == {
            first.lease.id: (),
            second.lease.id: (),
        }
        assert await first.lease.renew()
        states = {p.id: p.platforms for p in await second.processes()}
        assert states == {
            first.lease.id: (("discord", "connected"), ("slack", "disconnected")),
            second.lease.id: (),
        }
        # A later renewal writes the latest states; a renewal with nothing new keeps them.
        first.report_platforms({"discord": "disconnected", "slack": "connected"})
        assert await first.lease.renew() and await second.lease.renew()
        seen = {p.id: p.platforms for p in await first.processes()}
        assert seen[first.lease.id] == (("discord", "disconnected"), ("slack", "connected"))
        assert seen[second.lease.id] == ()

    async def test_platform_states_another_version_wrote_unreadably_are_left_out(
        self, open_store: StoreFactory, raw: asyncpg.Connection
    ) -> None:
        store = await open_store()
        assert isinstance(store, PostgresStore)
        for stored in ("not json", '["discord"]', '{"discord": 1}'):
            await raw.execute("UPDATE bot_processes SET platforms = $1 WHERE id = $2", stored, store.lease.id)
            [seen] = await store.processes()
            assert seen.platforms == ((("discord", "1"),) if stored.startswith("{") else ())

    async def test_a_forget_waits_for_a_turn_in_flight_that_reuses_its_image(
        self, open_store: StoreFactory
    ) -> None:
        """Forget one thread while another process stores a turn that reuses one of its images
        (the same photo attached in both threads): forgetting succeeds and the image stays."""
        forgetting, appending = await open_store(), await open_store()
        photo = make_blob("the same photo")
        await self.add(forgetting, make_key("forgotten"), images=[photo])
        # The other process's turn stops inside its transaction, right after it locked the photo.
        pausing = PausingPool(appending.pool, "SELECT sha256 FROM blobs")
        appending._pool = pausing  # type: ignore[assignment]
        turn = asyncio.create_task(self.add(appending, make_key("kept"), images=[photo], blobs=[]))
        await asyncio.wait_for(pausing.paused.wait(), 10)
        forget = asyncio.create_task(forgetting.forget(make_key("forgotten")))
        await asyncio.sleep(0.3)
        waited = not forget.done()
        pausing.resume.set()  # before asserting: a failing test must not leave the turn open
        assert waited  # the forget waits for the turn that uses the photo
        assert await asyncio.wait_for(forget, 10) == 1
        stored = await asyncio.wait_for(turn, 10)
        assert await forgetting.load_blobs([photo.sha256]) == {photo.sha256: photo.data}
        assert (await forgetting.history(make_key("kept"))) == [stored]

    async def test_a_turn_whose_parent_is_forgotten_while_it_waits_stores_nothing(
        self, open_store: StoreFactory, raw: asyncpg.Connection
    ) -> None:
        """The append looks its parent up in the statement that waits for the conversation's
        row: a forget that commits meanwhile leaves it a parent its snapshot still sees, in a
        conversation that is gone. The turn must fail as one with a missing parent would."""
        store = await open_store()
        key = make_key()
        first = await self.add(store, key)
        forgetting = raw.transaction()
        await forgetting.start()
        await raw.execute("DELETE FROM conversations WHERE thread = $1", key.thread)  # not committed
        turn = asyncio.create_task(self.add(store, key, first, expected_head=None))
        waiting = await settled(
            lambda: raw.fetchval(
                # The append, waiting for the forget's transaction to end. (Its query text there
                # may read as its transaction's BEGIN: a cached prepared statement.)
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'transactionid' "
                "AND datname = current_database()"
            ),
            timeout_s=15,
        )
        await forgetting.commit()  # before asserting: a failing test must not leave the lock held
        assert waiting
        with pytest.raises(ValueError, match=f"Parent turn {first.id} is not part of conversation"):
            await asyncio.wait_for(turn, 10)
        assert await store.conversation(key) is None and await store.history(key) == []


async def test_processes_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(6)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        assert [await s.schema_version() for s in stores] == [PG_LATEST_VERSION] * 6
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM schema_migrations") == PG_LATEST_VERSION
    finally:
        await conn.close()


async def test_a_newer_schema_is_refused_untouched(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO schema_migrations (version, description) VALUES (99, 'future')")
        with pytest.raises(StoreError, match=r"newer version of the bot \(schema 99\)"):
            await PostgresStore(postgres_url).open()
        assert await conn.fetchval("SELECT MAX(version) FROM schema_migrations") == 99
    finally:
        await conn.close()


async def test_an_unreachable_server_is_one_sentence(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="Could not connect to PostgreSQL"):
        await PostgresStore(postgres_url.replace("/postgres?", "/no_such_database?")).open()


def named(url: str, name: str) -> str:
    """The same database, with connections the server lists under ``name``."""
    return f"{url}&application_name={name}"


async def connections(url: str, name: str) -> int:
    """How many connections the server holds open under ``name``."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)
        )
    finally:
        await conn.close()


async def test_a_store_is_unusable_before_open_and_after_close(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, lease_s=7.0)
    for use in (lambda: store.pool, lambda: store.arrivals_pool, lambda: store.lease):
        with pytest.raises(StoreError) as refused:
            use()
        assert str(refused.value) == "The store is not open."
    await store.open()
    try:
        with pytest.raises(StoreError) as refused:
            await store.open()
        assert str(refused.value) == "The store is already open."
        assert await store.arrivals_pool.fetchval("SELECT 1") == 1
        assert await store.pool.fetchval("SELECT 1") == 1
        assert store.lease.lease_s == 7.0
    finally:
        await store.close()
    for use in (lambda: store.pool, lambda: store.arrivals_pool, lambda: store.lease):
        with pytest.raises(StoreError) as refused:
            use()
        assert str(refused.value) == "The store is not open."


@pytest.mark.parametrize("pool_size", [None, 3])
async def test_an_idle_process_holds_two_connections_and_a_busy_one_its_pool_size(
    postgres_url: str, pool_size: int | None
) -> None:
    # Several processes share one server's connection limit (README: "Running several
    # processes"): each holds what it needs only, and never more than its pool and one.
    name = f"nbb-budget-{pool_size}"
    store = PostgresStore(named(postgres_url, name), **({"max_connections": pool_size} if pool_size else {}))
    await store.open()
    try:
        assert await connections(postgres_url, name) == 2  # one pooled, one for arriving turns
        most = (pool_size or 10) + 1  # the pool, and the arrivals connection

        async def reached(count: int) -> bool:
            return await connections(postgres_url, name) >= count

        # 16 queries wait on a lock the test holds, so the pool grows as far as it may.
        blocker = await asyncpg.connect(postgres_url)
        await blocker.execute("SELECT pg_advisory_lock(4242)")
        busy = asyncio.gather(
            *(store.pool.fetchval("SELECT pg_advisory_xact_lock_shared(4242)") for _ in range(16))
        )
        try:
            await settled(lambda: reached(most), timeout_s=10)
            await asyncio.sleep(0.2)  # and no further
            assert await connections(postgres_url, name) == most
        finally:
            await blocker.close()  # releases the lock
            await busy
    finally:
        await store.close()
    assert await connections(postgres_url, name) == 0


async def test_an_open_that_fails_half_way_leaves_no_connection_behind(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "nbb-half-open"

    async def refused(self: ProcessLease) -> None:
        raise asyncpg.PostgresConnectionError("connection lost")

    monkeypatch.setattr(ProcessLease, "start", refused)
    store = PostgresStore(named(postgres_url, name))
    with pytest.raises(asyncpg.PostgresConnectionError):
        await store.open()
    assert await connections(postgres_url, name) == 0


async def test_a_dropped_connection_is_one_sentence_from_ping(postgres_url: str) -> None:
    proxy, relayed = await FreezableProxy.in_front_of(postgres_url)
    store = PostgresStore(relayed)
    await store.open()
    try:
        await store.ping()
        await proxy.cut()
        with pytest.raises(StoreError) as down:
            await store.ping()
        assert str(down.value) == "PostgreSQL does not answer: ConnectionDoesNotExistError"
    finally:
        await store.close()
        await proxy.close()


async def test_each_usage_record_names_its_turn(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        turn = await store.append_turn(
            NewTurn(
                key=make_key(),
                parent_id=None,
                user_content=user_content("hi"),
                model_content=model_record("done"),
                model="m",
                author_id="alice",
                usage=Usage(1, 1),
            ),
            expected_head=None,
        )
        # An operator's audit trail: which turn spent what.
        assert await store.pool.fetchval("SELECT turn_id FROM usage_log") == turn.id
    finally:
        await store.close()
