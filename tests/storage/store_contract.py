"""The contract every store backend passes, one class per role; ``StoreContract`` is all of them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from bot.vocabulary import ConversationKey, SettingScope, Usage
from storage.content import Blob, ContentRecord, image_part, user_record
from storage.errors import HeadMoved, StoreError
from storage.protocol import NewTurn, Store, StoredTurn

StoreFactory = Callable[[], Awaitable[Store]]

START = 1_700_000_000.0


class FakeClock:
    """A clock the tests set by hand; backends take it so timestamps are deterministic."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_key(thread: str = "t1", channel: str = "c1", platform: str = "discord") -> ConversationKey:
    return ConversationKey(platform=platform, workspace="w1", channel=channel, thread=thread)


def make_blob(seed: str, size: int = 2048, mime_type: str = "image/png") -> Blob:
    """Deterministic, incompressible image-like bytes (a PNG signature, then hash output)."""
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return Blob(mime_type=mime_type, data=bytes(out[:size]))


def model_record(text: str, images: Sequence[Blob] = (), signature: str = "c2ln") -> ContentRecord:
    """A Gemini 3 style answer: a thought part, text and images, all with thought signatures."""
    parts: list[dict[str, Any]] = [
        {"text": "Planning the composition…", "thought": True, "thought_signature": signature},
        {"text": text, "thought_signature": signature + "/text"},
    ]
    for i, blob in enumerate(images):
        part = image_part(blob.sha256, blob.mime_type)
        part["thought_signature"] = f"{signature}/image{i}"
        parts.append(part)
    return {"role": "model", "parts": parts}


def user_content(text: str, images: Sequence[Blob] = ()) -> ContentRecord:
    return user_record(text, [(b.sha256, b.mime_type) for b in images])


def hashes(*blobs: Blob) -> list[str]:
    return [b.sha256 for b in blobs]


class Current:
    """Marker: compute the turn against whatever the head is right now."""


CURRENT = Current()


async def current_head(store: Store, key: ConversationKey) -> int | None:
    info = await store.conversation(key)
    return info.head_turn_id if info is not None else None


class ContractBase:
    """Fixtures and helpers shared by the role contracts below.

    A backend's test class subclasses ``StoreContract`` (or one role's contract) and
    overrides the ``store_factory`` fixture: it returns a coroutine function that opens
    (``await s.open()``) and returns a *new* store instance on the same per-test database,
    built with the ``clock`` fixture as its clock.
    The base class opens ``store`` through it and closes every store it opened.
    """

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store_factory(self, clock: FakeClock) -> StoreFactory:
        raise NotImplementedError("A backend's contract subclass provides store_factory.")

    @pytest.fixture
    async def open_store(self, store_factory: StoreFactory) -> AsyncIterator[StoreFactory]:
        opened: list[Store] = []

        async def _open() -> Store:
            store = await store_factory()
            opened.append(store)
            return store

        yield _open
        for store in opened:
            await store.close()

    @pytest.fixture
    async def store(self, open_store: StoreFactory) -> Store:
        return await open_store()

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    async def add(
        store: Store,
        key: ConversationKey,
        parent: StoredTurn | int | None = None,
        *,
        text: str = "draw a banana",
        images: Sequence[Blob] = (),
        outputs: Sequence[Blob] = (),
        blobs: Sequence[Blob] | None = None,
        usage: Usage | None = None,
        author: str = "alice",
        model: str = "gemini-2.5-flash-image",
        expected_head: int | Current | None = CURRENT,
        interaction: str | None = None,
    ) -> StoredTurn:
        """Append a turn; unless ``expected_head`` is given, computed against the current head.
        ``interaction``: the id of the interaction Google keeps for its answer (Interactions API)."""
        parent_id = parent.id if isinstance(parent, StoredTurn) else parent
        answer = model_record(f"Here you go: {text}", outputs)
        if interaction is not None:
            answer["interaction"] = {"id": interaction, "model": model}
        if isinstance(expected_head, Current):
            expected_head = await current_head(store, key)
        return await store.append_turn(
            NewTurn(
                key=key,
                parent_id=parent_id,
                user_content=user_content(text, images),
                model_content=answer,
                model=model,
                author_id=author,
                usage=usage or Usage(),
                blobs=tuple(list(images) + list(outputs) if blobs is None else blobs),
            ),
            expected_head=expected_head,
        )


class LifecycleContract(ContractBase):
    """Opening, closing and persistence (``storage.protocol.Lifecycle``)."""

    async def test_a_new_store_has_a_schema(self, store: Store) -> None:
        assert await store.schema_version() >= 1

    async def test_ping_answers_while_open_and_raises_once_closed(self, store: Store) -> None:
        assert await store.ping() is None
        await store.close()
        with pytest.raises(StoreError):
            await store.ping()

    async def test_close_is_idempotent(self, store: Store) -> None:
        await store.close()
        await store.close()

    async def test_everything_survives_close_and_reopen(self, store: Store, open_store: StoreFactory) -> None:
        key = make_key()
        photo, render = make_blob("photo", 9000, "image/jpeg"), make_blob("render", 11000)
        exotic: dict[str, Any] = {
            "role": "model",
            "parts": [
                {
                    "text": 'ünïcödé 🍌 "quoted" \\ back\nslash\t\u0000nul',
                    "thought": True,
                    "thought_signature": "CiQB0e2Kb+/x9==",
                },
                {
                    "function_call": {
                        "name": "noop",
                        "args": {
                            "nested": {"list": [1, 2.5, -0.0001, None, True, False, {"deep": []}]},
                            "big": 2**62,
                            "empty": {},
                        },
                    },
                    "thought_signature": "A" * 4096,
                },
                {
                    "inline_data": {"mime_type": "image/png", "blob": render.sha256},
                    "thought_signature": "c2lnbmF0dXJlLWltYWdl",
                },
            ],
        }
        usage = Usage(1, 2, 3, 6, {"TEXT": 1}, {"IMAGE": 2}, 1)
        first = await store.append_turn(
            NewTurn(
                key=key,
                parent_id=None,
                user_content=user_content("make it pop", [photo]),
                model_content=exotic,
                model="gemini-3-pro-image",
                author_id="alice",
                usage=usage,
                blobs=(photo, render),
            ),
            expected_head=None,
        )
        second = await self.add(store, key, first, images=[render], blobs=[])
        await store.set_setting(SettingScope.for_thread(key), "aspect_ratio", "21:9")
        assert await store.claim_message("discord", "c1", "m1")
        before = await store.history(key)
        info_before = await store.conversation(key)
        await store.close()

        reopened = await open_store()
        assert await reopened.history(key) == before == [first, second]
        assert (await reopened.history(key))[0].model_content == exotic
        assert json.dumps((await reopened.history(key))[0].model_content, sort_keys=True) == (
            json.dumps(exotic, sort_keys=True)
        )
        assert await reopened.conversation(key) == info_before
        assert await reopened.turn(second.id) == second
        assert await reopened.load_blobs([photo.sha256, render.sha256]) == {
            photo.sha256: photo.data,
            render.sha256: render.data,
        }
        assert await reopened.settings(key) == {"aspect_ratio": "21:9"}
        assert await reopened.claim_message("discord", "c1", "m1") is False
        assert await reopened.usage_since(0) == usage
        third = await self.add(reopened, key, second)
        assert third.id > second.id


class ClaimsContract(ContractBase):
    """One generation per message (``storage.protocol.MessageClaims``)."""

    async def test_claim_message_is_idempotent(self, store: Store) -> None:
        assert await store.claim_message("slack", "C1", "1700000000.000100") is True
        assert await store.claim_message("slack", "C1", "1700000000.000100") is False
        assert await store.claim_message("slack", "C1", "1700000000.000100") is False

    async def test_claims_are_scoped_by_platform_and_channel(self, store: Store) -> None:
        assert await store.claim_message("slack", "C1", "42") is True
        assert await store.claim_message("slack", "C2", "42") is True
        assert await store.claim_message("discord", "C1", "42") is True
        assert await store.claim_message("slack", "C1", "43") is True
        assert await store.claim_message("slack", "C1", "42") is False

    async def test_concurrent_claims_of_one_message_grant_exactly_one(self, store: Store) -> None:
        results = await asyncio.gather(*(store.claim_message("slack", "C1", "dup") for _ in range(20)))
        assert sorted(results) == [False] * 19 + [True]

    async def test_a_claim_retried_by_the_same_attempt_is_still_its_own(self, store: Store) -> None:
        # The connection died after the first call was written: the retry must not read it as
        # a second copy of the message (it would be dropped), while other copies still are.
        key = make_key("t1")
        assert await store.claim_message("slack", "C1", "m1", key, token="attempt-1") is True
        assert await store.claim_message("slack", "C1", "m1", key, token="attempt-1") is True
        assert await store.claim_message("slack", "C1", "m1", key, token="attempt-2") is False
        assert await store.claim_message("slack", "C1", "m1", key) is False
        untokened = await store.claim_message("slack", "C1", "m2", key)
        assert untokened is True
        assert await store.claim_message("slack", "C1", "m2", key, token=None) is False

    async def test_unfinished_claims_are_found_until_finished(self, store: Store, clock: FakeClock) -> None:
        key = make_key("t1")
        other = make_key("t2")
        clock.now = START + 10
        assert await store.claim_message("discord", "c1", "m1", key)
        clock.now = START + 20
        assert await store.claim_message("discord", "c1", "m2", other)
        assert await store.claim_message("discord", "c1", "m3")  # no key: finished at once
        assert not await store.claim_message("discord", "c1", "m1", key)
        assert await store.unfinished_messages("discord", START) == [(key, "m1"), (other, "m2")]
        assert await store.unfinished_messages("discord", START + 10) == [(other, "m2")]
        assert await store.unfinished_messages("slack", START) == []
        await store.finish_message("discord", "c1", "m1")
        await store.finish_message("discord", "c1", "m1")
        await store.finish_message("discord", "c1", "unknown")
        assert await store.unfinished_messages("discord", START) == [(other, "m2")]

    async def test_turns_cut_off_at_the_same_instant_are_taken_in_message_order(
        self, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        first = await store_factory()
        clock.now = START + 10
        for message in ("m3", "m1", "m2"):  # claimed in one instant, in no particular order
            assert await first.claim_message("slack", "c1", message, make_key(message, platform="slack"))
        await first.close()
        clock.now = START + 20
        second = await store_factory()
        try:
            taken = await second.take_interrupted("slack", START)
            assert [message for _, message in taken] == ["m1", "m2", "m3"]
        finally:
            await second.close()

    async def test_turns_cut_off_by_a_process_that_is_gone_are_taken_once(
        self, store_factory: StoreFactory, clock: FakeClock
    ) -> None:
        key, other, slack = make_key("t1"), make_key("t2"), make_key("t3", platform="slack")
        first = await store_factory()
        clock.now = START + 10
        assert await first.claim_message("discord", "c1", "m1", key)
        clock.now = START + 20
        assert await first.claim_message("discord", "c1", "m2", other)
        assert await first.claim_message("slack", "c1", "m3", slack)
        await first.claim_message("discord", "c1", "m4", key)
        await first.finish_message("discord", "c1", "m4")
        assert await first.take_interrupted("discord", START) == []  # its own turns: still running
        await first.close()  # the process stops (or dies) with m1, m2 and m3 unfinished
        clock.now = START + 30
        second = await store_factory()
        try:
            assert await second.claim_message("discord", "c1", "m5", key)  # its own, running
            assert await second.take_interrupted("discord", START + 15) == [(other, "m2")]
            assert await second.take_interrupted("discord", START) == [(key, "m1")]
            assert await second.take_interrupted("discord", START) == []  # now this process's
            assert await second.take_interrupted("slack", START) == [(slack, "m3")]
            # m1 and m2 stay unfinished until the people are told; m1 is told, m2 is not yet
            # when this process stops (dies): the next one takes m2 again, never m1.
            await second.finish_message("discord", "c1", "m1")
            await second.finish_message("slack", "c1", "m3")
        finally:
            await second.close()
        clock.now = START + 40
        third = await store_factory()
        try:
            assert await third.take_interrupted("discord", START) == [(other, "m2"), (key, "m5")]
            assert await third.take_interrupted("slack", START) == []
        finally:
            await third.close()


class HistoryContract(ContractBase):
    """Conversations, turns, blobs and posted messages (``storage.protocol.HistoryStore``)."""

    async def test_unknown_key_has_nothing(self, store: Store) -> None:
        key = make_key("nobody")
        assert await store.conversation(key) is None
        assert await store.history(key) == []
        assert await store.latest_conversation("discord", "w1", "c1") is None
        assert await store.turn(1) is None
        assert await store.settings(key) == {}

    async def test_append_and_history_oldest_first(self, store: Store, clock: FakeClock) -> None:
        key = make_key()
        clock.now = START + 10
        first = await self.add(store, key, None, text="one")
        clock.now = START + 20
        second = await self.add(store, key, first, text="two")
        clock.now = START + 30
        third = await self.add(store, key, second, text="three")

        assert first.id < second.id < third.id
        assert (first.parent_id, second.parent_id, third.parent_id) == (None, first.id, second.id)
        assert [t.created_at for t in (first, second, third)] == [
            START + 10,
            START + 20,
            START + 30,
        ]

        history = await store.history(key)
        assert history == [first, second, third]
        assert [t.user_content["parts"][-1]["text"] for t in history] == ["one", "two", "three"]

        info = await store.conversation(key)
        assert info is not None
        assert info.key == key
        assert info.head_turn_id == third.id
        assert info.turn_count == 3
        assert info.created_at == START + 10
        assert info.updated_at == START + 30

    async def test_append_returns_what_turn_and_history_return(self, store: Store) -> None:
        key = make_key()
        image = make_blob("photo")
        usage = Usage(
            prompt_tokens=300,
            output_tokens=1290,
            thought_tokens=12,
            total_tokens=1602,
            prompt_by_modality={"TEXT": 42, "IMAGE": 258},
            output_by_modality={"IMAGE": 1290},
            images_generated=1,
        )
        stored = await self.add(
            store, key, None, images=[image], usage=usage, author="bob", model="gemini-3-pro-image"
        )
        assert stored.key == key
        assert stored.author_id == "bob"
        assert stored.model == "gemini-3-pro-image"
        assert stored.usage == usage
        assert stored.user_content == user_content("draw a banana", [image])
        assert stored.model_content == model_record("Here you go: draw a banana")
        assert await store.turn(stored.id) == stored
        assert await store.history(key) == [stored]

    async def test_stored_records_do_not_alias_the_callers(self, store: Store) -> None:
        key = make_key()
        record = user_content("original")
        stored = await store.append_turn(
            NewTurn(
                key=key,
                parent_id=None,
                user_content=record,
                model_content=model_record("ok"),
                model="m",
                author_id="alice",
            ),
            expected_head=None,
        )
        record["parts"][0]["text"] = "mutated"
        assert stored.user_content["parts"][0]["text"] == "original"
        loaded = await store.turn(stored.id)
        assert loaded is not None
        assert loaded.user_content["parts"][0]["text"] == "original"

    async def test_branching_moves_the_head_and_keeps_the_old_branch(self, store: Store) -> None:
        key = make_key()
        t1 = await self.add(store, key, None, text="a cat")
        t2 = await self.add(store, key, t1, text="warmer sky")
        t3 = await self.add(store, key, t2, text="watercolor")
        t4 = await self.add(store, key, t1, text="a dog instead")

        assert t4.parent_id == t1.id
        info = await store.conversation(key)
        assert info is not None
        assert info.head_turn_id == t4.id
        assert info.turn_count == 4
        assert [t.id for t in await store.history(key)] == [t1.id, t4.id]
        assert [t.id for t in await store.history(key, upto=t3.id)] == [t1.id, t2.id, t3.id]
        assert [t.id for t in await store.history(key, upto=t2.id)] == [t1.id, t2.id]
        assert [t.id for t in await store.history(key, upto=t1.id)] == [t1.id]

        # Continuing the abandoned branch makes it the head again.
        t5 = await self.add(store, key, t3, text="sign it")
        assert [t.id for t in await store.history(key)] == [t1.id, t2.id, t3.id, t5.id]

    async def test_a_second_root_starts_a_fresh_branch(self, store: Store) -> None:
        key = make_key()
        t1 = await self.add(store, key, None)
        t2 = await self.add(store, key, None, text="start over")
        assert [t.id for t in await store.history(key)] == [t2.id]
        assert [t.id for t in await store.history(key, upto=t1.id)] == [t1.id]

    async def test_upto_must_belong_to_the_key(self, store: Store) -> None:
        mine, theirs = make_key("mine"), make_key("theirs")
        await self.add(store, mine)
        other = await self.add(store, theirs)
        with pytest.raises(ValueError) as refused:
            await store.history(mine, upto=other.id)
        assert str(refused.value) == f"Turn {other.id} is not part of conversation {mine}."
        with pytest.raises(ValueError):
            await store.history(mine, upto=other.id + 1000)
        with pytest.raises(ValueError):
            await store.history(make_key("unknown"), upto=other.id)
        # The other conversation is untouched and still reads fine.
        assert [t.id for t in await store.history(theirs, upto=other.id)] == [other.id]

    async def test_parent_must_belong_to_the_key(self, store: Store) -> None:
        mine, theirs = make_key("mine"), make_key("theirs")
        head = await self.add(store, mine)
        other = await self.add(store, theirs)
        with pytest.raises(ValueError):
            await self.add(store, mine, other, images=[make_blob("leak")])
        with pytest.raises(ValueError):
            await self.add(store, make_key("new"), other.id + 1000)
        info = await store.conversation(mine)
        assert info is not None
        assert (info.head_turn_id, info.turn_count) == (head.id, 1)
        assert await store.conversation(make_key("new")) is None
        assert await store.load_blobs([make_blob("leak").sha256]) == {}

    async def test_a_turn_computed_against_a_moved_head_is_refused(self, store: Store) -> None:
        key = make_key()
        first = await self.add(store, key, usage=Usage(total_tokens=1))
        stale = make_blob("stale")
        with pytest.raises(HeadMoved) as moved:
            await self.add(store, key, first, images=[stale], usage=Usage(total_tokens=7), expected_head=None)
        assert (moved.value.head, moved.value.expected) == (first.id, None)
        second = await self.add(store, key, first)
        with pytest.raises(HeadMoved) as moved:
            await self.add(store, key, second, images=[stale], expected_head=first.id)
        assert moved.value.head == second.id
        # Nothing of a refused turn is written: no row, no blob, no usage, head unchanged.
        assert await store.history(key) == [first, second]
        info = await store.conversation(key)
        assert info is not None
        assert (info.head_turn_id, info.turn_count) == (second.id, 2)
        assert await store.load_blobs([stale.sha256]) == {}
        assert await store.usage_since(0) == Usage(total_tokens=1)
        # A conversation with no turns yet only takes a turn expecting no head.
        with pytest.raises(HeadMoved) as moved:
            await self.add(store, make_key("new"), expected_head=second.id)
        assert moved.value.head is None
        assert await store.conversation(make_key("new")) is None

    async def test_a_branch_from_an_earlier_turn_expects_the_head_it_saw(self, store: Store) -> None:
        key = make_key()
        t1 = await self.add(store, key)
        t2 = await self.add(store, key, t1)
        # Regenerate t2: the parent is t1, the head the turn was computed against is t2.
        regen = await self.add(store, key, t1, text="again", expected_head=t2.id)
        assert [t.id for t in await store.history(key)] == [t1.id, regen.id]
        with pytest.raises(HeadMoved):
            await self.add(store, key, t1, text="again", expected_head=t2.id)
        assert [t.id for t in await store.history(key)] == [t1.id, regen.id]

    async def test_two_turns_computed_against_one_head_store_only_the_first(self, store: Store) -> None:
        key = make_key()
        base = await self.add(store, key)
        seen = await current_head(store, key)
        assert seen == base.id
        late, later = make_blob("late"), make_blob("later")
        # Both turns were computed against the same head; the first to be stored wins.
        won = await self.add(store, key, base, images=[late], usage=Usage(total_tokens=3), expected_head=seen)
        with pytest.raises(HeadMoved) as moved:
            await self.add(store, key, base, images=[later], usage=Usage(total_tokens=5), expected_head=seen)
        assert moved.value.head == won.id
        assert await store.history(key) == [base, won]
        assert await store.load_blobs([later.sha256]) == {}
        assert (await store.usage_since(0)).total_tokens == 3
        # Racing for real: of two concurrent appends against one head exactly one is stored.
        racers = [make_blob("racer-a"), make_blob("racer-b")]
        results = await asyncio.gather(
            *(self.add(store, key, won, images=[b], expected_head=won.id) for b in racers),
            return_exceptions=True,
        )
        stored = [r for r in results if isinstance(r, StoredTurn)]
        refused = [r for r in results if isinstance(r, HeadMoved)]
        assert (len(stored), len(refused)) == (1, 1)
        assert refused[0].head == stored[0].id
        assert await store.history(key) == [base, won, stored[0]]
        loser = racers[1 - results.index(stored[0])]
        assert await store.load_blobs([loser.sha256]) == {}
        info = await store.conversation(key)
        assert info is not None
        assert info.turn_count == 3

    async def test_a_forgotten_conversation_expects_no_head(self, store: Store) -> None:
        key = make_key()
        old = await self.add(store, key)
        await store.forget(key)
        with pytest.raises(HeadMoved) as moved:
            await self.add(store, key, expected_head=old.id)
        assert moved.value.head is None
        assert await store.conversation(key) is None
        assert (await self.add(store, key, expected_head=None)).parent_id is None

    async def test_move_head_to_a_sibling_take(self, store: Store) -> None:
        key = make_key()
        base = await self.add(store, key)
        # A variations turn: three takes with one parent, stored one after another.
        takes = []
        for n in range(3):
            takes.append(await self.add(store, key, base, text=f"take {n + 1}"))
        await store.move_head(key, takes[0].id, expected_head=takes[2].id)
        assert [t.id for t in await store.history(key)] == [base.id, takes[0].id]
        # Continue from take 3: the head moves, nothing else changes.
        await store.move_head(key, takes[2].id, expected_head=takes[0].id)
        assert [t.id for t in await store.history(key)] == [base.id, takes[2].id]
        info = await store.conversation(key)
        assert info is not None
        assert (info.head_turn_id, info.turn_count) == (takes[2].id, 4)
        assert await store.turn(takes[1].id) == takes[1]
        # The next turn continues from the moved head.
        after = await self.add(store, key, takes[2])
        assert [t.id for t in await store.history(key)] == [base.id, takes[2].id, after.id]

    async def test_move_head_expects_the_head_it_saw(self, store: Store) -> None:
        key = make_key()
        base = await self.add(store, key)
        a = await self.add(store, key, base, text="a")
        b = await self.add(store, key, base, text="b")
        with pytest.raises(HeadMoved) as moved:
            await store.move_head(key, a.id, expected_head=a.id)
        assert (moved.value.head, moved.value.expected) == (b.id, a.id)
        info = await store.conversation(key)
        assert info is not None
        assert info.head_turn_id == b.id
        with pytest.raises(HeadMoved) as moved:
            await store.move_head(make_key("none"), a.id, expected_head=b.id)
        assert moved.value.head is None

    async def test_move_head_refuses_a_turn_of_another_conversation(self, store: Store) -> None:
        key, other = make_key(), make_key("other")
        mine = await self.add(store, key)
        theirs = await self.add(store, other)
        with pytest.raises(ValueError) as refused:
            await store.move_head(key, theirs.id, expected_head=mine.id)
        assert str(refused.value) == f"Turn {theirs.id} is not part of conversation {key}."
        with pytest.raises(ValueError):
            await store.move_head(key, theirs.id + 1000, expected_head=mine.id)
        with pytest.raises(ValueError):
            await store.move_head(make_key("new"), mine.id, expected_head=None)
        info = await store.conversation(key)
        assert info is not None
        assert info.head_turn_id == mine.id
        assert await store.conversation(make_key("new")) is None

    async def test_latest_conversation(self, store: Store, clock: FakeClock) -> None:
        older, newer = make_key("older"), make_key("newer")
        elsewhere = make_key("x", channel="c2")
        clock.now = START + 1
        first = await self.add(store, older)
        clock.now = START + 2
        await self.add(store, newer)
        clock.now = START + 3
        await self.add(store, elsewhere)

        latest = await store.latest_conversation("discord", "w1", "c1")
        assert latest is not None
        assert latest.key == newer

        clock.now = START + 4
        await self.add(store, older, first)
        latest = await store.latest_conversation("discord", "w1", "c1")
        assert latest is not None
        assert (latest.key, latest.turn_count, latest.updated_at) == (older, 2, START + 4)

        other = await store.latest_conversation("discord", "w1", "c2")
        assert other is not None
        assert other.key == elsewhere
        assert await store.latest_conversation("slack", "w1", "c1") is None
        assert await store.latest_conversation("discord", "w2", "c1") is None

    async def test_blobs_round_trip_and_unknown_hashes_are_absent(self, store: Store) -> None:
        photo, render = make_blob("photo", 5000, "image/jpeg"), make_blob("render", 7000)
        await self.add(store, make_key(), images=[photo], outputs=[render])
        unknown = make_blob("never stored").sha256
        loaded = await store.load_blobs([photo.sha256, unknown, render.sha256, photo.sha256])
        assert loaded == {photo.sha256: photo.data, render.sha256: render.data}
        assert await store.load_blobs([]) == {}
        assert await store.load_blobs(iter([unknown])) == {}

    async def test_same_bytes_in_two_conversations(self, store: Store) -> None:
        shared = make_blob("shared")
        a, b = make_key("a"), make_key("b")
        ta = await self.add(store, a, images=[shared])
        tb = await self.add(store, b, images=[shared], outputs=[shared])
        tb2 = await self.add(store, b, tb, images=[shared])
        assert await store.load_blobs([shared.sha256]) == {shared.sha256: shared.data}
        assert ta.user_content["parts"][0]["inline_data"]["blob"] == shared.sha256
        assert tb2.user_content["parts"][0]["inline_data"]["blob"] == shared.sha256

    async def test_a_stored_blob_need_not_be_passed_again(self, store: Store) -> None:
        key = make_key()
        render = make_blob("render")
        first = await self.add(store, key, outputs=[render])
        # The next turn edits the previous output; the core only passes new bytes.
        second = await self.add(store, key, first, images=[render], blobs=[])
        assert second.user_content["parts"][0]["inline_data"]["blob"] == render.sha256
        assert await store.load_blobs([render.sha256]) == {render.sha256: render.data}

    async def test_a_missing_blob_raises_and_writes_nothing(self, store: Store) -> None:
        key = make_key()
        passed, missing = make_blob("passed"), make_blob("missing")
        with pytest.raises(ValueError):
            await self.add(store, key, images=[passed, missing], blobs=[passed])
        assert await store.conversation(key) is None
        assert await store.history(key) == []
        assert await store.load_blobs([passed.sha256, missing.sha256]) == {}
        assert await store.usage_since(0) == Usage()

        head = await self.add(store, key, usage=Usage(total_tokens=5))
        with pytest.raises(ValueError):
            await self.add(store, key, head, outputs=[passed, missing], blobs=[passed], usage=Usage(1, 1))
        info = await store.conversation(key)
        assert info is not None
        assert (info.head_turn_id, info.turn_count) == (head.id, 1)
        assert await store.history(key) == [head]
        assert await store.load_blobs([passed.sha256]) == {}
        assert await store.usage_since(0) == Usage(total_tokens=5)

        # The store is still usable after the failed transaction.
        assert await self.add(store, key, head, images=[passed])

    async def test_unreferenced_blobs_are_not_kept(self, store: Store) -> None:
        used, stray = make_blob("used"), make_blob("stray")
        await self.add(store, make_key(), images=[used], blobs=[used, stray])
        assert await store.load_blobs([used.sha256, stray.sha256]) == {used.sha256: used.data}

    async def test_posted_messages_map_back_to_their_turn(self, store: Store) -> None:
        key = make_key()
        first = await self.add(store, key)
        second = await self.add(store, key, first)
        await store.record_posted("discord", "c1", ["m1", "m2"], first.id)
        await store.record_posted("discord", "c1", ["m3"], second.id)
        assert await store.turn_for_message("discord", "c1", "m2") == first.id
        assert await store.turn_for_message("discord", "c1", "m3") == second.id
        assert await store.turn_for_message("discord", "other", "m3") is None
        assert await store.turn_for_message("slack", "c1", "m3") is None
        await store.record_posted("discord", "c1", ["m3"], first.id)
        assert await store.turn_for_message("discord", "c1", "m3") == first.id
        await store.record_posted("discord", "c1", [], first.id)

    async def test_concurrent_appends_claims_and_reads(self, store: Store) -> None:
        shared = make_blob("shared")
        keys = [make_key(f"thread-{i}", channel=f"c{i % 5}") for i in range(50)]

        async def one(i: int) -> StoredTurn:
            own = make_blob(f"own-{i}")
            return await self.add(
                store, keys[i], images=[shared, own], usage=Usage(total_tokens=i), author=f"u{i}"
            )

        results = await asyncio.gather(
            *(one(i) for i in range(50)),
            *(store.claim_message("discord", f"c{i % 5}", f"m{i}") for i in range(50)),
            *(store.history(k) for k in keys),
            *(store.settings(k) for k in keys),
        )
        turns = [r for r in results[:50] if isinstance(r, StoredTurn)]
        assert len(turns) == 50
        assert len({t.id for t in turns}) == 50
        assert results[50:100] == [True] * 50
        for i, key in enumerate(keys):
            assert await store.history(key) == [turns[i]]
            info = await store.conversation(key)
            assert info is not None
            assert (info.turn_count, info.head_turn_id) == (1, turns[i].id)
        assert (await store.usage_since(0)).total_tokens == sum(range(50))
        again = await asyncio.gather(
            *(store.claim_message("discord", f"c{i % 5}", f"m{i}") for i in range(50))
        )
        assert again == [False] * 50
        loaded = await store.load_blobs([shared.sha256, *(make_blob(f"own-{i}").sha256 for i in range(50))])
        assert len(loaded) == 51

    async def test_a_cancelled_append_leaves_all_or_nothing(self, store: Store) -> None:
        """Cancel appends at ever later moments: each leaves the whole turn or no trace."""
        key = make_key()
        loop = asyncio.get_running_loop()
        started = loop.time()
        expected = [await self.add(store, key, images=[make_blob("timing")])]
        full = loop.time() - started
        outcomes: list[str] = []
        for step in range(400):
            if step >= 20 and "all" in outcomes:
                break
            image = make_blob(f"cancel-{step}")
            task = asyncio.ensure_future(self.add(store, key, expected[-1], images=[image]))
            await asyncio.sleep(full * step / 10)
            task.cancel()
            try:
                returned: StoredTurn | None = await task
            except asyncio.CancelledError:
                returned = None
            history = await store.history(key)
            stored = await store.load_blobs([image.sha256])
            if history == expected:
                # Nothing of the turn was written, not even its image.
                assert returned is None
                assert stored == {}
                outcomes.append("nothing")
            else:
                # The whole turn was written (the cancel may have come during COMMIT).
                assert history[:-1] == expected
                assert returned in (None, history[-1])
                assert history[-1].user_content == user_content("draw a banana", [image])
                assert stored == {image.sha256: image.data}
                outcomes.append("all")
            info = await store.conversation(key)
            assert info is not None
            assert (info.turn_count, info.head_turn_id) == (len(history), history[-1].id)
            expected = history
        assert {"nothing", "all"} <= set(outcomes)
        # Whatever happened, the store still takes writes.
        assert await self.add(store, key, expected[-1])


class SettingsContract(ContractBase):
    """Settings per scope and their precedence (``storage.protocol.SettingsStore``)."""

    async def test_settings_precedence(self, store: Store) -> None:
        key = make_key("t1")
        sibling = make_key("t2")
        elsewhere = make_key("t3", channel="c2")
        await store.set_setting(SettingScope.everywhere(), "aspect_ratio", "1:1")
        await store.set_setting(SettingScope.everywhere(), "image_size", "1K")
        await store.set_setting(SettingScope.everywhere(), "response_mode", "text_image")
        await store.set_setting(SettingScope.for_channel(key), "aspect_ratio", "16:9")
        await store.set_setting(SettingScope.for_channel(key), "image_size", "2K")
        await store.set_setting(SettingScope.for_thread(key), "aspect_ratio", "9:16")

        assert await store.settings(key) == {
            "aspect_ratio": "9:16",
            "image_size": "2K",
            "response_mode": "text_image",
        }
        assert await store.settings(sibling) == {
            "aspect_ratio": "16:9",
            "image_size": "2K",
            "response_mode": "text_image",
        }
        assert await store.settings(elsewhere) == {
            "aspect_ratio": "1:1",
            "image_size": "1K",
            "response_mode": "text_image",
        }
        # Same ids on another platform are another scope.
        assert await store.settings(make_key("t1", platform="slack")) == {
            "aspect_ratio": "1:1",
            "image_size": "1K",
            "response_mode": "text_image",
        }

    async def test_settings_overwrite_and_clear(self, store: Store) -> None:
        key = make_key()
        thread, channel = SettingScope.for_thread(key), SettingScope.for_channel(key)
        await store.set_setting(channel, "aspect_ratio", "4:3")
        await store.set_setting(thread, "aspect_ratio", "3:2")
        await store.set_setting(thread, "aspect_ratio", "21:9")
        assert await store.settings(key) == {"aspect_ratio": "21:9"}

        await store.set_setting(thread, "aspect_ratio", None)
        assert await store.settings(key) == {"aspect_ratio": "4:3"}
        await store.set_setting(channel, "aspect_ratio", None)
        assert await store.settings(key) == {}
        # Clearing what is not set is not an error.
        await store.set_setting(thread, "aspect_ratio", None)
        await store.set_setting(SettingScope.everywhere(), "nothing", None)
        assert await store.settings(key) == {}


class UsageContract(ContractBase):
    """The usage ledger (``storage.protocol.UsageLedger``)."""

    async def test_usage_since(self, store: Store, clock: FakeClock) -> None:
        a1 = Usage(100, 1290, 10, 1400, {"TEXT": 100}, {"IMAGE": 1290}, 1)
        b1 = Usage(300, 2580, 0, 2880, {"TEXT": 42, "IMAGE": 258}, {"IMAGE": 2580}, 2)
        a2 = Usage(7, 3, 1, 11, {"TEXT": 7}, {"TEXT": 3}, 0)
        clock.now = START + 1000
        first = await self.add(store, make_key("x"), usage=a1, author="alice")
        clock.now = START + 2000
        await self.add(store, make_key("y"), usage=b1, author="bob")
        clock.now = START + 3000
        await self.add(store, make_key("x"), first, usage=a2, author="alice")

        assert await store.usage_since(START + 2000) == Usage(
            prompt_tokens=307,
            output_tokens=2583,
            thought_tokens=1,
            total_tokens=2891,
            prompt_by_modality={"TEXT": 49, "IMAGE": 258},
            output_by_modality={"IMAGE": 2580, "TEXT": 3},
            images_generated=2,
        )
        assert await store.usage_since(START + 2000, author_id="alice") == a2
        assert await store.usage_since(0, author_id="alice") == Usage(
            prompt_tokens=107,
            output_tokens=1293,
            thought_tokens=11,
            total_tokens=1411,
            prompt_by_modality={"TEXT": 107},
            output_by_modality={"IMAGE": 1290, "TEXT": 3},
            images_generated=1,
        )
        assert (await store.usage_since(0)).images_generated == 3
        assert await store.usage_since(START + 2000.5, author_id="bob") == Usage()
        assert await store.usage_since(START + 3000.5) == Usage()
        assert await store.usage_since(0, author_id="nobody") == Usage()

    async def test_usage_outlives_forget(self, store: Store) -> None:
        """Forgetting a thread must not reset cost reports or per-user image limits."""
        spent = Usage(10, 1290, 0, 1300, {"TEXT": 10}, {"IMAGE": 1290}, 1)
        await self.add(store, make_key(), usage=spent, author="alice")
        assert await store.forget(make_key()) == 1
        assert await store.usage_since(0, author_id="alice") == spent

    async def test_count_images_keeps_workspaces_apart(self, store: Store) -> None:
        # Two Slack workspaces (or Discord servers) may both have a channel of the same id.
        here = ConversationKey(platform="slack", workspace="T1", channel="C1", thread="t")
        there = ConversationKey(platform="slack", workspace="T2", channel="C1", thread="t")
        await self.add(store, here, usage=Usage(images_generated=2), author="alice")
        await self.add(store, there, usage=Usage(images_generated=1), author="alice")
        for workspace, images in (("T1", 2), ("T2", 1)):
            count, _ = await store.count_images(0, platform="slack", workspace=workspace)
            assert count == images
            count, _ = await store.count_images(0, platform="slack", workspace=workspace, channel="C1")
            assert count == images

    async def test_count_images_by_author_place_and_time(self, store: Store, clock: FakeClock) -> None:
        two = Usage(images_generated=2, cost_usd=0.078)
        one = Usage(images_generated=1, cost_usd=0.039)
        clock.now = START + 10
        await self.add(store, make_key("a", channel="c1"), usage=two, author="alice")
        clock.now = START + 20
        await self.add(store, make_key("b", channel="c2"), usage=one, author="alice")
        clock.now = START + 30
        await self.add(store, make_key("c", channel="c2"), usage=Usage(), author="bob")
        clock.now = START + 40
        await self.add(store, make_key("d", channel="c2", platform="slack"), usage=one, author="alice")

        assert await store.count_images(0) == (4, START + 10)
        assert await store.count_images(0, author_id="alice", platform="discord") == (3, START + 10)
        assert await store.count_images(START + 15, author_id="alice", platform="discord") == (1, START + 20)
        assert await store.count_images(0, platform="discord", workspace="w1", channel="c2") == (
            1,
            START + 20,
        )
        # A turn without images does not start the window.
        assert await store.count_images(0, author_id="bob") == (0, None)
        assert await store.count_images(START + 41) == (0, None)
        assert await store.cost_since(0) == pytest.approx(0.156)
        assert await store.cost_since(START + 15) == pytest.approx(0.078)
        assert (await store.usage_since(0, author_id="alice", platform="slack")).images_generated == 1
        assert (await store.usage_since(0, author_id="alice")).cost_usd == pytest.approx(0.156)
        # The cost stays on the turn too.
        assert (await store.history(make_key("a", channel="c1")))[0].usage == two


class MaintenanceContract(ContractBase):
    """Forgetting and retention (``storage.protocol.Maintenance``)."""

    async def test_forget(self, store: Store) -> None:
        a, b = make_key("a"), make_key("b")
        shared, u1, u2, u3, v = (make_blob(s) for s in ("shared", "u1", "u2", "u3", "v"))
        t1 = await self.add(store, a, images=[shared, u1])
        t2 = await self.add(store, a, t1, outputs=[u2])
        t3 = await self.add(store, a, t1, images=[u3])
        tb = await self.add(store, b, images=[shared], outputs=[v])
        await store.set_setting(SettingScope.everywhere(), "response_mode", "image_only")
        await store.set_setting(SettingScope.for_channel(a), "aspect_ratio", "16:9")
        await store.set_setting(SettingScope.for_thread(a), "aspect_ratio", "1:1")
        await store.set_setting(SettingScope.for_thread(a), "image_size", "2K")
        await store.set_setting(SettingScope.for_thread(b), "image_size", "4K")
        assert await store.claim_message("discord", "c1", "msg-a")

        assert await store.forget(a) == 3

        assert await store.conversation(a) is None
        assert await store.history(a) == []
        for turn in (t1, t2, t3):
            assert await store.turn(turn.id) is None
        with pytest.raises(ValueError):
            await store.history(a, upto=t2.id)
        everything = hashes(shared, u1, u2, u3, v)
        assert await store.load_blobs(everything) == {shared.sha256: shared.data, v.sha256: v.data}
        assert await store.settings(a) == {"response_mode": "image_only", "aspect_ratio": "16:9"}
        assert await store.settings(b) == {
            "response_mode": "image_only",
            "aspect_ratio": "16:9",
            "image_size": "4K",
        }
        assert await store.history(b) == [tb]
        latest = await store.latest_conversation("discord", "w1", "c1")
        assert latest is not None
        assert latest.key == b
        # A redelivered message must still not trigger a second generation.
        assert await store.claim_message("discord", "c1", "msg-a") is False

        assert await store.forget(a) == 0
        assert await store.forget(b) == 1
        assert await store.load_blobs(everything) == {}

    async def test_forget_an_unknown_key(self, store: Store) -> None:
        kept = await self.add(store, make_key("kept"), images=[make_blob("k")])
        await store.set_setting(SettingScope.for_thread(make_key("ghost")), "aspect_ratio", "1:1")
        assert await store.forget(make_key("ghost")) == 0
        assert await store.settings(make_key("ghost")) == {}
        assert await store.history(make_key("kept")) == [kept]
        assert await store.load_blobs([make_blob("k").sha256]) != {}

    async def test_a_forgotten_key_starts_fresh_and_ids_are_not_reused(self, store: Store) -> None:
        key = make_key()
        old = [await self.add(store, key, None, images=[make_blob("old")])]
        old.append(await self.add(store, key, old[-1]))
        assert await store.forget(key) == 2
        new = await self.add(store, key, None, text="again", images=[make_blob("old")])
        assert new.id > max(t.id for t in old)
        assert await store.history(key) == [new]
        info = await store.conversation(key)
        assert info is not None
        assert (info.turn_count, info.head_turn_id) == (1, new.id)
        assert await store.load_blobs([make_blob("old").sha256]) != {}

    async def test_forget_drops_posted_message_mappings(self, store: Store) -> None:
        key = make_key()
        turn = await self.add(store, key)
        await store.record_posted("discord", "c1", ["m1"], turn.id)
        await store.forget(key)
        assert await store.turn_for_message("discord", "c1", "m1") is None

    async def test_idle_conversations(self, store: Store, clock: FakeClock) -> None:
        clock.now = START + 100
        await self.add(store, make_key("old"))
        clock.now = START + 200
        fresh = await self.add(store, make_key("busy"))
        clock.now = START + 300
        await self.add(store, make_key("busy"), fresh)
        assert await store.idle_conversations(START + 250) == [make_key("old")]
        assert await store.idle_conversations(START + 301) == [make_key("old"), make_key("busy")]
        assert await store.idle_conversations(START + 301, limit=1) == [make_key("old")]
        assert await store.idle_conversations(START) == []


class SignedLinksContract(ContractBase):
    """The key that signs editor links, and links used once across every process."""

    async def test_a_secret_is_made_once_and_kept(self, store: Store, open_store: StoreFactory) -> None:
        first = await store.secret("editor")
        assert len(first) == 32
        assert await store.secret("editor") == first
        assert await store.secret("other") != first
        await store.close()
        assert await (await open_store()).secret("editor") == first

    async def test_stores_asking_at_once_share_one_secret(self, open_store: StoreFactory) -> None:
        stores = [await open_store() for _ in range(2)] if self.shares_across_stores else [await open_store()]
        got = await asyncio.gather(*(s.secret("editor") for s in stores for _ in range(4)))
        assert len(set(got)) == 1

    async def test_a_link_is_used_once(self, store: Store, open_store: StoreFactory) -> None:
        assert not await store.link_used("abc")
        assert await store.use_link("abc", START + 900)
        assert await store.link_used("abc")
        assert not await store.use_link("abc", START + 900)
        assert await store.use_link("abd", START + 900)
        if self.shares_across_stores:
            other = await open_store()
            assert not await other.use_link("abc", START + 900)

    async def test_concurrent_uses_of_one_link_grant_exactly_one(self, store: Store) -> None:
        results = await asyncio.gather(*(store.use_link("xyz", START + 900) for _ in range(8)))
        assert sorted(results) == [False] * 7 + [True]

    async def test_expired_records_are_purged(self, store: Store, clock: FakeClock) -> None:
        await store.use_link("old", START + 900)
        clock.now = START + 901
        await store.use_link("new", START + 1800)
        assert not await store.link_used("old")
        assert await store.link_used("new")

    # Whether two stores may be open on one database at once (SQLite: one process per file).
    shares_across_stores = True


from tests.storage.store_contract_one_call import OneCallContract  # noqa: E402  # it builds on ContractBase
from tests.storage.store_contract_pins import PinsContract  # noqa: E402  # it builds on ContractBase
from tests.storage.store_contract_reports import ReportsContract  # noqa: E402  # it builds on ContractBase
from tests.storage.store_contract_workspaces import WorkspacesContract  # noqa: E402  # it builds on ContractBase


class StoreContract(
    SignedLinksContract,
    LifecycleContract,
    ClaimsContract,
    HistoryContract,
    SettingsContract,
    UsageContract,
    MaintenanceContract,
    OneCallContract,
    PinsContract,
    ReportsContract,
    WorkspacesContract,
):
    """Every role's contract: what a complete ``Store`` backend passes."""
