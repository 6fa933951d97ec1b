"""The reference board's contract: pins per workspace, each image stored once, kept while pinned."""

from __future__ import annotations

import asyncio

import pytest

from storage.protocol import Store
from tests.storage.store_contract import START, ContractBase, FakeClock, make_blob, make_key


class PinsContract(ContractBase):
    """``storage.protocol.PinBoard``."""

    async def test_a_pin_is_listed_by_name_with_its_image(self, store: Store, clock: FakeClock) -> None:
        alice, bob = make_blob("alice", mime_type="image/jpeg"), make_blob("bob")
        pin = await store.add_pin("discord", "w1", "alice", alice, "u1")
        clock.now = START + 5
        await store.add_pin("discord", "w1", "bob", bob, "u2")
        assert (pin.name, pin.sha256, pin.mime_type, pin.pinned_by, pin.created_at) == (
            "alice",
            alice.sha256,
            "image/jpeg",
            "u1",
            START,
        )
        listed = await store.pins("discord", "w1")
        assert [(p.name, p.pinned_by, p.created_at) for p in listed] == [
            ("alice", "u1", START),
            ("bob", "u2", START + 5),
        ]
        assert [p.name for p in await store.pins("discord", "w1", ["bob", "carol"])] == ["bob"]
        assert await store.load_blobs([alice.sha256]) == {alice.sha256: alice.data}

    async def test_pins_are_per_platform_and_workspace(self, store: Store) -> None:
        await store.add_pin("discord", "w1", "alice", make_blob("a"), "u1")
        assert await store.pins("discord", "w2") == []
        assert await store.pins("slack", "w1") == []

    async def test_a_taken_name_keeps_its_pin(self, store: Store) -> None:
        first, second = make_blob("first"), make_blob("second")
        await store.add_pin("discord", "w1", "alice", first, "u1")
        again = await store.add_pin("discord", "w1", "alice", second, "u2")
        assert (again.sha256, again.pinned_by) == (first.sha256, "u1")
        assert [p.sha256 for p in await store.pins("discord", "w1")] == [first.sha256]
        # The image offered for the taken name is not kept.
        assert await store.load_blobs([second.sha256]) == {}

    async def test_an_image_pinned_in_two_workspaces_and_a_turn_is_stored_once(self, store: Store) -> None:
        image = make_blob("shared")
        turn = await self.add(store, make_key(), images=[image])
        await store.add_pin("discord", "w1", "alice", image.sha256, "u1")
        await store.add_pin("slack", "T2", "alice", image, "u9")
        await store.add_pin("discord", "w1", "alice-too", image, "u1")
        listed = [*await store.pins("discord", "w1"), *await store.pins("slack", "T2")]
        assert {p.sha256 for p in listed} == {image.sha256}
        assert await store.forget(turn.key) == 1
        assert await store.load_blobs([image.sha256]) == {image.sha256: image.data}

    async def test_pinning_a_hash_of_nothing_stored_writes_nothing(self, store: Store) -> None:
        with pytest.raises(ValueError):
            await store.add_pin("discord", "w1", "ghost", make_blob("never").sha256, "u1")
        assert await store.pins("discord", "w1") == []

    async def test_a_pinned_image_outlives_the_conversation_it_came_from(self, store: Store) -> None:
        image = make_blob("drawn")
        key = make_key()
        await self.add(store, key, outputs=[image])
        await store.add_pin("discord", "w1", "alice", image.sha256, "u1")
        assert await store.forget(key) == 1
        assert await store.load_blobs([image.sha256]) == {image.sha256: image.data}
        assert await store.remove_pin("discord", "w1", "alice")
        assert await store.load_blobs([image.sha256]) == {}

    async def test_unpinning_keeps_an_image_a_turn_or_another_pin_holds(self, store: Store) -> None:
        in_turn, twice = make_blob("in-turn"), make_blob("twice")
        await self.add(store, make_key(), images=[in_turn])
        await store.add_pin("discord", "w1", "a", in_turn, "u1")
        await store.add_pin("discord", "w1", "b", twice, "u1")
        await store.add_pin("discord", "w2", "b", twice, "u1")
        assert await store.remove_pin("discord", "w1", "a")
        assert await store.remove_pin("discord", "w1", "b")
        assert not await store.remove_pin("discord", "w1", "b")
        got = await store.load_blobs([in_turn.sha256, twice.sha256])
        assert set(got) == {in_turn.sha256, twice.sha256}

    async def test_a_workspace_forgotten_loses_its_pins_and_their_images(self, store: Store) -> None:
        mine, theirs = make_blob("mine"), make_blob("theirs")
        await store.add_pin("slack", "T1", "a", mine, "u1")
        await store.add_pin("slack", "T1", "b", theirs, "u1")
        await store.add_pin("slack", "T2", "b", theirs, "u2")
        assert await store.forget_pins("slack", "T1") == 2
        assert await store.pins("slack", "T1") == []
        assert [p.name for p in await store.pins("slack", "T2")] == ["b"]
        assert set(await store.load_blobs([mine.sha256, theirs.sha256])) == {theirs.sha256}

    async def test_pins_survive_close_and_reopen(self, store: Store, open_store: object) -> None:
        await store.add_pin("console", "local", "alice", make_blob("kept"), "me")
        await store.close()
        assert callable(open_store)
        reopened = await open_store()
        assert [p.name for p in await reopened.pins("console", "local")] == ["alice"]

    async def test_concurrent_pins_of_one_name_keep_exactly_one(self, store: Store) -> None:
        blobs = [make_blob(f"race{i}") for i in range(4)]
        got = await asyncio.gather(
            *(store.add_pin("discord", "w1", "x", b, f"u{i}") for i, b in enumerate(blobs))
        )
        assert len({p.sha256 for p in got}) == 1
        assert len(await store.pins("discord", "w1")) == 1
