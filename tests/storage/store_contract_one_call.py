"""The store's one-call reads and writes a turn is made of: each does what its separate calls did."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from bot.vocabulary import ConversationKey, SettingScope, Usage
from storage import sql_reads
from storage.content import blob_refs
from storage.protocol import Store, StoredTurn, UsageCount, UsageQuery
from storage.sql_session import Session
from tests.storage.store_contract import START, ContractBase, FakeClock, StoreFactory, make_blob, make_key


def every_blob(_settings: Mapping[str, str], history: Sequence[StoredTurn]) -> list[str]:
    return [
        h for turn in history for record in (turn.user_content, turn.model_content) for h in blob_refs(record)
    ]


class OneCallContract(ContractBase):
    """``claim_turn``, ``turn_context``, ``finish_message`` with posted ids, ``usage_counts``."""

    async def test_claim_turn_claims_once_and_reads_the_settings(self, store: Store) -> None:
        key = make_key()
        await store.set_setting(SettingScope.everywhere(), "aspect_ratio", "1:1")
        await store.set_setting(SettingScope.everywhere(), "variations", "2")
        await store.set_setting(SettingScope.for_channel(key), "aspect_ratio", "16:9")
        await store.set_setting(SettingScope.for_thread(key), "image_size", "2K")
        await store.set_setting(SettingScope.for_thread(make_key("elsewhere")), "image_size", "4K")
        expected = {"aspect_ratio": "16:9", "image_size": "2K", "variations": "2"}
        claim = await store.claim_turn(key, "m1", token="a")
        assert (claim.known, claim.claimed, claim.shown_turn) == (True, True, None)
        assert claim.settings == await store.settings(key) == expected
        assert (await store.claim_turn(key, "m1", token="a")).claimed  # the same attempt, retried
        taken = await store.claim_turn(key, "m1", token="b")
        assert not taken.claimed and taken.settings == expected  # read on their own then
        assert not await store.claim_message(key.platform, key.channel, "m1", key)
        assert await store.unfinished_messages(key.platform, 0) == [(key, "m1")]

    async def test_claiming_or_reading_a_later_turn_reads_settings_in_the_same_statement(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = make_key()
        await store.set_setting(SettingScope.for_thread(key), "aspect_ratio", "3:2")
        first = await self.add(store, key)
        alone: list[list[str]] = []
        read_alone = sql_reads.scoped_settings

        async def spying(session: Session, scopes: Sequence[SettingScope]) -> dict[str, dict[str, str]]:
            alone.append([scope.as_text() for scope in scopes])
            return await read_alone(session, scopes)

        monkeypatch.setattr(sql_reads, "scoped_settings", spying)
        claim = await store.claim_turn(key, "m1", token="a")
        context = await store.turn_context(key, blobs=every_blob)
        assert claim.settings == context.settings == {"aspect_ratio": "3:2"}
        assert context.head == first.id
        assert alone == []  # no statement of their own
        assert not (await store.claim_turn(key, "m1", token="b")).claimed
        assert (await store.turn_context(make_key("new"))).history == []
        assert len(alone) == 2  # a claim it lost, and a conversation with no turn, read them apart

    async def test_claim_turn_known_only_claims_nothing_in_an_unknown_conversation(
        self, store: Store
    ) -> None:
        key = make_key()
        claim = await store.claim_turn(key, "m1", token="a", known_only=True, shown_by="p1")
        assert (claim.known, claim.claimed, claim.shown_turn) == (False, False, None)
        assert await store.claim_message(key.platform, key.channel, "m1", key)  # still free
        first = await self.add(store, key)
        claim = await store.claim_turn(key, "m2", token="a", known_only=True)
        assert (claim.known, claim.claimed, claim.shown_turn) == (True, True, None)
        await store.forget(key)
        assert not (await store.claim_turn(key, "m3", token="a", known_only=True)).known
        assert first.id

    async def test_claim_turn_finds_the_turn_a_message_shows_only_in_its_conversation(
        self, store: Store
    ) -> None:
        key, other = make_key("t1"), make_key("t2")
        first = await self.add(store, key)
        elsewhere = await self.add(store, other)
        await store.record_posted(key.platform, key.channel, ["p1"], first.id)
        await store.record_posted(key.platform, key.channel, ["p2"], elsewhere.id)
        assert (await store.claim_turn(key, "m1", token="a", shown_by="p1")).shown_turn == first.id
        assert (await store.claim_turn(key, "m2", token="a", shown_by="p2")).shown_turn is None
        assert (await store.claim_turn(key, "m3", token="a", shown_by="nothing")).shown_turn is None
        claim = await store.claim_turn(make_key("t9"), "m4", token="a", shown_by="p1")
        assert (claim.known, claim.claimed, claim.shown_turn) == (False, True, None)

    async def test_turn_context_reads_head_settings_history_and_chosen_blobs(self, store: Store) -> None:
        key = make_key()
        await store.set_setting(SettingScope.for_thread(key), "aspect_ratio", "3:2")
        await store.set_setting(SettingScope.for_channel(key), "aspect_ratio", "16:9")  # the thread's wins
        empty = await store.turn_context(key, blobs=every_blob)
        assert (empty.head, empty.history, empty.blobs, dict(empty.settings)) == (
            None,
            [],
            {},
            {"aspect_ratio": "3:2"},
        )
        one, two = make_blob("one"), make_blob("two")
        first = await self.add(store, key, outputs=[one])
        second = await self.add(store, key, first, outputs=[two])
        seen: list[tuple[dict[str, str], list[int]]] = []

        def latest(settings: Mapping[str, str], history: Sequence[StoredTurn]) -> list[str]:
            seen.append((dict(settings), [t.id for t in history]))
            return [*blob_refs(history[-1].model_content), "unknown-hash"]

        await store.set_setting(SettingScope.for_channel(key), "image_size", "2K")
        read = await store.turn_context(key, blobs=latest)
        assert read.head == second.id and read.history == await store.history(key)
        assert seen == [({"aspect_ratio": "3:2", "image_size": "2K"}, [first.id, second.id])]
        assert read.settings == await store.settings(key)
        assert read.blobs == {two.sha256: two.data}
        early = await store.turn_context(key, upto=first.id, blobs=every_blob)
        assert (early.head, [t.id for t in early.history], early.blobs) == (
            second.id,
            [first.id],
            {one.sha256: one.data},
        )
        bare = await store.turn_context(key, branch=False)
        assert (bare.head, bare.history, bare.blobs) == (second.id, [], {})

    async def test_a_later_turn_reads_its_history_images_from_memory_not_the_database(
        self, store: Store, open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = make_key()
        one, two = make_blob("one"), make_blob("two")
        first = await self.add(store, key, outputs=[one])
        asked: list[list[str]] = []
        read_from_database = sql_reads.load_blobs

        async def spying(session: Session, hashes: Sequence[str]) -> dict[str, bytes]:
            asked.append(list(hashes))
            return await read_from_database(session, hashes)

        monkeypatch.setattr(sql_reads, "load_blobs", spying)
        assert (await store.turn_context(key, blobs=every_blob)).blobs == {one.sha256: one.data}
        assert asked == [[]]  # written by this store a moment ago: already in memory
        await store.close()
        restarted = await open_store()  # nothing in memory yet
        assert (await restarted.turn_context(key, blobs=every_blob)).blobs == {one.sha256: one.data}
        assert await restarted.load_blobs([one.sha256]) == {one.sha256: one.data}
        assert asked == [[], [one.sha256]]  # read once, then kept
        await self.add(restarted, key, first, outputs=[two])
        both = await restarted.turn_context(key, blobs=every_blob)
        assert both.blobs == {one.sha256: one.data, two.sha256: two.data}
        assert asked[-1] == []
        await restarted.forget(key)
        assert restarted.blob_cache.held_bytes == 0  # a forgotten image leaves memory too

    async def test_a_turn_with_several_large_images_stores_each_whole_once(
        self, store: Store, open_store: StoreFactory
    ) -> None:
        """Images of 1.5 MB, as Gemini answers with, in one turn: written row by row on
        PostgreSQL (``storage.pg_session``), with a small one among them and one already stored."""
        key = make_key()
        stored_before = make_blob("stored before", 1_500_000)
        first = await self.add(store, key, outputs=[stored_before])
        outputs = [make_blob(f"take {n}", 1_500_000) for n in range(3)] + [make_blob("small"), stored_before]
        second = await self.add(store, key, first, outputs=outputs)
        await store.close()
        reopened = await open_store()  # read from the database, not the image cache
        wanted = [blob.sha256 for blob in outputs]
        assert await reopened.load_blobs(wanted) == {blob.sha256: blob.data for blob in outputs}
        assert [t.id for t in await reopened.history(key)] == [first.id, second.id]

    async def test_turn_context_upto_must_belong_to_the_key(self, store: Store) -> None:
        mine, other = make_key("t1"), make_key("t2")
        theirs = await self.add(store, other)
        await self.add(store, mine)
        with pytest.raises(ValueError):
            await store.turn_context(mine, upto=theirs.id)
        with pytest.raises(ValueError):
            await store.turn_context(make_key("t3"), upto=theirs.id)

    async def test_finish_message_records_the_posted_messages_with_it(self, store: Store) -> None:
        key = make_key()
        first = await self.add(store, key)
        second = await self.add(store, key, first)
        assert await store.claim_message(key.platform, key.channel, "m1", key)
        await store.finish_message(key.platform, key.channel, "m1", [("p1", first.id), ("p2", second.id)])
        assert await store.unfinished_messages(key.platform, 0) == []
        assert await store.turn_for_message(key.platform, key.channel, "p1") == first.id
        assert await store.turn_for_message(key.platform, key.channel, "p2") == second.id
        # Again (a retry whose first COMMIT's answer was lost): harmless.
        await store.finish_message(key.platform, key.channel, "m1", [("p1", second.id)])
        assert await store.turn_for_message(key.platform, key.channel, "p1") == second.id

    async def test_finish_message_with_a_missing_turn_writes_nothing(self, store: Store) -> None:
        key = make_key()
        assert await store.claim_message(key.platform, key.channel, "m1", key)
        with pytest.raises(Exception):  # noqa: B017  # each driver's foreign key error
            await store.finish_message(key.platform, key.channel, "m1", [("p1", 999_999)])
        assert await store.unfinished_messages(key.platform, 0) == [(key, "m1")]

    async def test_usage_counts_count_every_query_at_once(self, store: Store, clock: FakeClock) -> None:
        two = Usage(images_generated=2, cost_usd=0.078)
        one = Usage(images_generated=1, cost_usd=0.039)
        clock.now = START + 10
        await self.add(store, make_key("a", channel="c1"), usage=two, author="alice")
        clock.now = START + 20
        await self.add(store, make_key("b", channel="c2"), usage=one, author="alice")
        clock.now = START + 30
        await self.add(store, make_key("c", channel="c2"), usage=Usage(cost_usd=0.01), author="bob")
        queries = [
            UsageQuery(0),
            UsageQuery(0, author_id="alice", platform="discord"),
            UsageQuery(START + 15, author_id="alice", platform="discord"),
            UsageQuery(0, platform="discord", workspace="w1", channel="c2"),
            UsageQuery(0, author_id="bob"),
            UsageQuery(START + 31),
            UsageQuery(0, platform="slack", workspace="w1"),
        ]
        counts = await store.usage_counts(queries)
        assert [(c.images, c.oldest) for c in counts] == [
            await store.count_images(
                q.since, author_id=q.author_id, platform=q.platform, workspace=q.workspace, channel=q.channel
            )
            for q in queries
        ]
        assert [(c.images, c.oldest) for c in counts] == [
            (3, START + 10),
            (3, START + 10),
            (1, START + 20),
            (1, START + 20),
            (0, None),
            (0, None),
            (0, None),
        ]
        assert counts[0].cost_usd == pytest.approx(await store.cost_since(0)) and counts[
            0
        ].cost_usd == pytest.approx(0.127)
        assert counts[2].cost_usd == pytest.approx(0.039) and counts[5] == UsageCount()
        assert await store.usage_counts([]) == []

    async def test_one_call_reads_run_concurrently(self, store: Store) -> None:
        key: ConversationKey = make_key()
        await self.add(store, key)
        claims = await asyncio.gather(*(store.claim_turn(key, "m1", token=f"t{i}") for i in range(8)))
        assert sum(c.claimed for c in claims) == 1
        reads = await asyncio.gather(*(store.turn_context(key) for _ in range(8)))
        assert len({r.head for r in reads}) == 1
