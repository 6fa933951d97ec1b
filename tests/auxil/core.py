"""A conversation core wired like production (real store, real SDK) against the fake Gemini."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.composition import Editor, build_editor, build_engine, build_service, editor_links
from bot.config import Config, load_config
from bot.entry.service import ConversationService, TurnResult
from bot.gemini import GeminiEngine
from bot.ports import PlatformAdapter, PlatformError
from bot.turns.retention import Retention
from bot.vocabulary import Author, ConversationKey, ImageRef, Turn
from storage.sqlite_store import SqliteStore
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import TEST_MODEL
from tests.auxil.sinks import RecordingSink

KEY = ConversationKey("console", "local", "terminal", "thread-1")
ALICE = Author("alice", "Alice")


async def _no_sleep(_seconds: float) -> None:
    return None


def bytes_ref(filename: str, data: bytes, declared_size: int | None = -1) -> ImageRef:
    """An attachment whose bytes are already in memory (declared size defaults to the real one)."""

    async def load() -> bytes:
        return data

    size = len(data) if declared_size == -1 else declared_size
    return ImageRef(filename=filename, mime_type=None, size=size, load=load)


def failing_ref(filename: str, error: Exception) -> ImageRef:
    async def load() -> bytes:
        raise error

    return ImageRef(filename=filename, mime_type="image/png", size=1000, load=load)


class Core:
    """The service plus handles on its store and the fake, able to restart like a process."""

    def __init__(self, fake: FakeGemini, db_path: Path, env: dict[str, str] | None = None) -> None:
        self.fake = fake
        self.db_path = db_path
        self.env = {
            "GEMINI_API_KEY": "test-key",
            # Discord snowflakes carry the real posting time, so each turn would wait out the
            # 250 ms settle window; ordering tests set their own (longer) window.
            "TURN_ORDER_SETTLE_MS": "20",
            "GOOGLE_GEMINI_BASE_URL": fake.base_url,
            "GEMINI_MODEL": TEST_MODEL,
            "DATABASE_URL": f"sqlite:///{db_path}",
            **(env or {}),
        }
        self.config: Config = load_config(self.env)
        self.store: SqliteStore
        self.engine: GeminiEngine
        self.service: ConversationService
        self.editor: Editor | None = None
        self.sleeps: list[float] = []

    async def start(self) -> Core:
        self.store = SqliteStore(self.config.storage.path)
        await self.store.open()

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.engine = build_engine(self.config, sleep=sleep)
        # With PUBLIC_URL, the region editor as the runtime builds it (links, desk, routes).
        links = editor_links(self.config, self.store)
        self.service = build_service(self.config, self.store, self.engine, links=links)
        self.editor = build_editor(self.config, self.service, links)
        return self

    def retention(self) -> Retention:
        return Retention(self.store, self.config.storage.retention_days, self.service.forget)

    async def stop(self) -> None:
        await self.engine.aclose()
        await self.store.close()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def say(
        self,
        text: str,
        *images: ImageRef,
        key: ConversationKey = KEY,
        message_id: str | None = None,
        continue_from: int | None = None,
        sink: RecordingSink | None = None,
    ) -> tuple[TurnResult, RecordingSink]:
        sink = sink or RecordingSink()
        turn = Turn(
            key=key,
            message_id=message_id or uuid.uuid4().hex,
            author=ALICE,
            text=text,
            images=images,
            continue_from=continue_from,
        )
        result = await self.service.handle_turn(turn, sink)
        return result, sink


CoreFactory = Callable[..., Awaitable[Core]]


async def refusal(
    adapter: Callable[[Config, ConversationService], PlatformAdapter],
    fake: FakeGemini,
    db_path: Path,
    env: dict[str, str],
) -> str:
    """The one line ``adapter(...).run()`` stops with on a core with ``env``; fails if it does not."""
    core = await Core(fake, db_path, env=env).start()
    try:
        with pytest.raises(PlatformError) as caught:
            await adapter(core.config, core.service).run()
    finally:
        await core.stop()
    return str(caught.value)


async def wait_claimed(store: SqliteStore, platform: str, message_id: str, limit_s: float = 10.0) -> None:
    """Return once the bot has claimed ``message_id`` (its turn started and has not finished)."""
    for _ in range(int(limit_s / 0.01)):
        if message_id in {m for _, m in await store.unfinished_messages(platform, 0)}:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{platform} message {message_id} was never claimed")
