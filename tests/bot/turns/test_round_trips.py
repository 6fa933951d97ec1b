"""How many times a later turn calls into the store, on both stores: at most five."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.composition import build_service, coordination_for, open_store, patience_for
from bot.config import load_config
from bot.entry.routing import Inbound
from bot.entry.service import ConversationService
from bot.gemini import GeminiEngine
from bot.turns.pipeline import TurnStatus
from bot.vocabulary import Author, ConversationKey, Position, Turn
from storage.aftercare import Aftercare
from storage.protocol import Store
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.postgres import PostgresServer
from tests.auxil.process import TEST_MODEL
from tests.auxil.sinks import RecordingSink

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000100")
ALICE = Author("alice", "Alice")
MOST = 5


class CountingStore:
    """The store as the core is given it, noting every call the core makes into it (a call the
    store makes into itself is part of the caller's round trip and is not noted)."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await attribute(*args, **kwargs)

        return call


class Bot:
    """A production-wired core on one store, its store calls counted."""

    def __init__(self, service: ConversationService, store: CountingStore) -> None:
        self.service = service
        self.store = store
        self.sink = RecordingSink()

    async def say(self, text: str, *, addressed: bool = True, replying_to: str | None = None) -> list[str]:
        """The store calls one message costs, from its arrival until its claim is finished."""
        turn = Turn(KEY, uuid.uuid4().hex, ALICE, text, position=Position.now())
        self.store.calls.clear()
        result = await self.service.receive(Inbound(turn, addressed, replying_to), self.sink)
        await asyncio.sleep(0.05)  # anything left to the background
        assert result is not None and result.status is TurnStatus.ANSWERED, result
        return list(self.store.calls)

    def last_post(self) -> str:
        """The id RecordingSink returned for the latest post (the image just answered)."""
        sent = [n for n, (kind, _) in enumerate(self.sink.events, 1) if kind == "send"]
        return f"posted-{sent[-1]}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> PostgresServer | None:
    """The store a test runs on: SQLite, or the tests' PostgreSQL server."""
    return request.getfixturevalue("postgres_server") if request.param == "postgresql" else None


@pytest.fixture
async def bot(database: PostgresServer | None, fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    if database is not None:
        url = await database.create_database()
    config = load_config(
        {
            "GEMINI_API_KEY": "test-key",
            "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
            "GEMINI_MODEL": TEST_MODEL,
            "DATABASE_URL": url,
            "TURN_ORDER_SETTLE_MS": "0",
        }
    )
    store = open_store(config)
    await store.open()
    engine = GeminiEngine(api_key="test-key", model=TEST_MODEL, base_url=fake_gemini.base_url)
    patience, aftercare = patience_for(config), Aftercare()
    coordination = coordination_for(store, config, patience, aftercare)
    counted = CountingStore(store)
    service = build_service(
        config,
        counted,  # type: ignore[arg-type]  # the store, every call noted
        engine,
        coordination,
        patience=patience,
        aftercare=aftercare,
    )
    try:
        yield Bot(service, counted)
    finally:
        await service.drain(5.0)
        await engine.aclose()
        await store.close()


async def test_a_later_turn_that_mentions_the_bot_costs_at_most_five_round_trips(bot: Bot) -> None:
    await bot.say("a cat")
    await bot.say("make it blue")
    calls = await bot.say("bigger")
    assert len(calls) <= MOST, calls
    assert {"append_turn", "finish_message"} <= set(calls)  # the turn was stored and finished


async def test_a_reply_to_the_image_without_a_mention_costs_at_most_five_round_trips(bot: Bot) -> None:
    await bot.say("a cat")
    first = bot.last_post()
    await bot.say("make it blue")
    calls = await bot.say("bigger, in green", addressed=False, replying_to=first)
    assert len(calls) <= MOST, calls
    assert {"append_turn", "finish_message"} <= set(calls)


async def test_the_reply_continued_from_the_image_it_replied_to(bot: Bot, fake_gemini: FakeGemini) -> None:
    await bot.say("a cat")
    first = bot.last_post()
    await bot.say("make it blue")
    await bot.say("now in green", addressed=False, replying_to=first)
    await bot.say("with a hat", addressed=False, replying_to=bot.last_post())
    texts = [
        [part.get("text") for c in r.contents for part in c["parts"] if "text" in part]
        for r in fake_gemini.requests
    ]
    assert [t for t in texts[2] if t in {"a cat", "make it blue", "now in green"}] == [
        "a cat",
        "now in green",
    ]
    assert [t for t in texts[3] if t in {"a cat", "make it blue", "now in green", "with a hat"}] == [
        "a cat",
        "now in green",
        "with a hat",
    ]
