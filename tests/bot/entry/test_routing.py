"""One entry per message: the core decides, takes the message's place in order, runs it and leaves."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.composition import build_service, sole_process
from bot.entry.routing import Inbound
from bot.entry.service import TurnStatus
from bot.turns.order import LocalTurnOrder
from bot.vocabulary import ConversationKey, Position, Reply, Turn
from storage.sqlite_store import SqliteStore
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.sinks import RecordingSink

SOON = 10.0
ADAPTERS = Path(__file__).resolve().parents[3] / "adapters"


class SlowLookups:
    """The core's store, whose "is this a conversation?" lookups wait until ``released``."""

    def __init__(self, store: SqliteStore) -> None:
        self.inner = store
        self.released = asyncio.Event()
        self.released.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def claim_turn(self, key: ConversationKey, message_id: str, **how: Any) -> object:
        if how.get("known_only"):  # the look that tells whether a plain message is a turn
            await self.released.wait()
        return await self.inner.claim_turn(key, message_id, **how)


class Entry:
    """A service whose turn order the test can look into, and a way to hand it messages."""

    def __init__(self, core: Core) -> None:
        self.order = LocalTurnOrder(core.config.storage.turn_order_settle_s)
        self.store = SlowLookups(core.store)
        coordination = replace(sole_process(core.config), order=self.order)
        self.service = build_service(core.config, self.store, core.engine, coordination)  # type: ignore[arg-type]
        self.became_turns: list[str] = []

    def message(self, text: str, addressed: bool, replying_to: str | None = None) -> Inbound:
        turn = Turn(KEY, uuid.uuid4().hex, ALICE, text, position=Position.now())
        return Inbound(turn, addressed, replying_to)

    async def receive(self, inbound: Inbound, sink: RecordingSink) -> object:
        def on_turn() -> None:
            sink.events.append(("on_turn", inbound.turn.text))
            self.became_turns.append(inbound.turn.text)

        return await self.service.receive(inbound, sink, on_turn=on_turn)


class BrokenSink(RecordingSink):
    """A sink whose platform fails: every post raises, after ``opened`` lets it start."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        await self.opened.wait()
        yield

    async def send(self, reply: Reply) -> list[str]:
        raise RuntimeError("the platform is down")


@pytest.fixture
def entry(core: Core) -> Entry:
    return Entry(core)


def posted_ids(sink: RecordingSink) -> list[str]:
    """The ids RecordingSink returned for its posts."""
    return [f"posted-{n}" for n, (kind, _) in enumerate(sink.events, 1) if kind == "send"]


async def test_a_message_that_is_not_a_turn_leaves_no_place_behind(entry: Entry, core: Core) -> None:
    sink = RecordingSink()
    assert await entry.receive(entry.message("just chatting", addressed=False), sink) is None
    assert len(entry.order) == 0
    assert entry.became_turns == [] and sink.events == []
    assert core.fake.requests == []


async def test_a_turn_runs_once_and_says_so_before_it_runs(entry: Entry) -> None:
    sink = RecordingSink()
    result = await entry.receive(entry.message("a red bicycle", addressed=True), sink)
    assert getattr(result, "status", None) is TurnStatus.ANSWERED
    assert [kind for kind, _ in sink.events] == ["on_turn", "working", "send", "working"]
    # A plain reply is a turn now that the conversation has history.
    again = await entry.receive(entry.message("make it blue", addressed=False), RecordingSink())
    assert getattr(again, "status", None) is TurnStatus.ANSWERED
    assert entry.became_turns == ["a red bicycle", "make it blue"]
    assert len(entry.order) == 0


async def test_a_turn_whose_sink_raises_still_lets_the_next_message_run(entry: Entry) -> None:
    broken = BrokenSink()
    first = asyncio.create_task(entry.receive(entry.message("a house", addressed=True), broken))
    await asyncio.sleep(0)
    # Posted later, waiting behind the first turn's place.
    second = asyncio.create_task(entry.receive(entry.message("a boat", addressed=True), RecordingSink()))
    await asyncio.sleep(0)
    assert len(entry.order.lane(KEY).waiting) == 2  # type: ignore[union-attr]
    broken.opened.set()
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(first, SOON)
    result = await asyncio.wait_for(second, SOON)
    assert getattr(result, "status", None) is TurnStatus.ANSWERED
    assert len(entry.order) == 0


async def test_a_message_takes_its_place_on_arrival_so_a_later_one_cannot_overtake(
    entry: Entry, core: Core
) -> None:
    await entry.receive(entry.message("a lighthouse", addressed=True), RecordingSink())
    # The first needs the store to tell it is a turn; the second is addressed and needs nothing.
    entry.store.released.clear()
    first = asyncio.create_task(entry.receive(entry.message("at dusk", addressed=False), RecordingSink()))
    await asyncio.sleep(0)
    second = asyncio.create_task(entry.receive(entry.message("with gulls", addressed=True), RecordingSink()))
    await asyncio.sleep(0.3)
    assert not second.done()
    entry.store.released.set()
    await asyncio.wait_for(asyncio.gather(first, second), SOON)
    prompts = [r.contents[-1]["parts"][-1]["text"] for r in core.fake.requests]
    assert prompts == ["a lighthouse", "at dusk", "with gulls"]


async def test_a_reply_to_an_earlier_image_continues_from_it(entry: Entry, core: Core) -> None:
    sink = RecordingSink()  # one sink, so each post has its own id
    await entry.receive(entry.message("a house", addressed=True), sink)
    await entry.receive(entry.message("paint it red", addressed=True), sink)
    house_post, _ = posted_ids(sink)
    await entry.receive(
        entry.message("paint it green", addressed=False, replying_to=house_post), RecordingSink()
    )
    request = core.fake.requests[-1]
    assert len(request.contents) == 3  # the house turn, then the new prompt
    assert request.contents[0]["parts"][-1]["text"] == "a house"


def test_no_adapter_holds_a_place_in_order() -> None:
    modules = sorted(ADAPTERS.rglob("*.py"))
    assert len(modules) > 20  # every adapter module, in every platform's package
    for module in modules:
        source = module.read_text()
        assert "OrderTicket" not in source, module.name
        assert "turns.order" not in source, module.name
        assert not re.search(r"\.leave\(\)|\bticket\b|\bDecision\b", source), module.name
