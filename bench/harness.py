"""The bot's real core, wired as `python -m bot` wires it, plus the instruments benchmarks read."""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bot.composition import build_engine, build_service, coordination_for, open_store, patience_for
from bot.config import Config, load_config
from bot.entry.service import ConversationService, TurnResult
from bot.gemini import GeminiEngine
from bot.logs import configure_logging
from bot.runtime import tuned_process
from bot.vocabulary import Author, ConversationKey, ImageRef, Position, Reply, Turn
from storage.aftercare import Aftercare
from storage.protocol import Store


class TimingSink:
    """A ReplySink that notes when the core hands over each reply (what an adapter would post)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.sent_at: float | None = None
        self.notices: list[str] = []

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        yield

    async def send(self, reply: Reply) -> list[str]:
        self.sent_at = time.perf_counter()
        self.replies.append(reply)
        return []

    async def notice(self, text: str) -> None:
        self.notices.append(text)


@dataclass
class TimedTurn:
    """One turn's outcome and when it started and was answered (``perf_counter`` seconds)."""

    result: TurnResult
    started: float
    answered: float

    @property
    def wall_s(self) -> float:
        return self.answered - self.started


def database_url(database: Path | str) -> str:
    """A SQLite file path as its URL; a URL (``postgresql://...``) as it is."""
    return f"sqlite:///{database}" if isinstance(database, Path) else database


class Bot:
    """Store, coordination, engine and service built from the environment exactly as
    ``bot.runtime`` does: a SQLite file path, or a ``postgresql://`` URL for PostgreSQL."""

    def __init__(self, base_url: str, database: Path | str, env: dict[str, str] | None = None) -> None:
        self.config: Config = load_config(
            {
                "GEMINI_API_KEY": "bench-key",
                "GOOGLE_GEMINI_BASE_URL": base_url,
                "DATABASE_URL": database_url(database),
                **(env or {}),
            }
        )
        self.store: Store = open_store(self.config)
        self.engine: GeminiEngine | None = None
        self.service: ConversationService | None = None

    async def __aenter__(self) -> Bot:
        await self.store.open()
        self.engine = build_engine(self.config)
        patience, aftercare = patience_for(self.config), Aftercare()
        coordination = coordination_for(self.store, self.config, patience, aftercare)
        # Tuned like the running bot (bot.runtime), so memory and timing figures match it.
        self.service = build_service(
            self.config,
            self.store,
            self.engine,
            coordination,
            in_flight=tuned_process(),
            patience=patience,
            aftercare=aftercare,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.engine is not None:
            await self.engine.aclose()
        await self.store.close()

    async def turn(
        self,
        key: ConversationKey,
        text: str,
        *images: ImageRef,
        continue_from: int | None = None,
        position: Position | None = None,
    ) -> TimedTurn:
        """One inbound message through ``handle_turn``; fails loudly unless it was answered.

        Each conversation has its own person, so per-user limits apply as they would in use.
        """
        assert self.service is not None
        sink = TimingSink()
        turn = Turn(
            key=key,
            message_id=uuid.uuid4().hex,
            author=Author(f"user-{key.thread}", f"User {key.thread}"),
            text=text,
            images=images,
            continue_from=continue_from,
            position=position,
        )
        started = time.perf_counter()
        result = await self.service.handle_turn(turn, sink)
        if result.turn_id is None or sink.sent_at is None or not sink.replies[-1].images:
            said = sink.replies[-1].text if sink.replies else "nothing"
            raise RuntimeError(f"a benchmark turn was not answered with an image ({result.status}: {said})")
        return TimedTurn(result, started, sink.sent_at)


def conversation(name: str) -> ConversationKey:
    """A Discord-shaped key, so stored rows look like production rows."""
    return ConversationKey("discord", "bench-guild", "bench-channel", name)


def bytes_ref(filename: str, data: bytes) -> ImageRef:
    """An attachment already downloaded (what an adapter's ``load`` returns)."""

    async def load() -> bytes:
        return data

    return ImageRef(filename=filename, mime_type=None, size=len(data), load=load)


@dataclass
class StallMonitor:
    """Measures event-loop stalls: how late 10 ms sleeps wake up, while it runs."""

    interval_s: float = 0.01
    max_stall_s: float = 0.0
    ticks: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            late = time.perf_counter() - before - self.interval_s
            self.ticks += 1
            self.max_stall_s = max(self.max_stall_s, late)

    async def __aenter__(self) -> StallMonitor:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank on the sorted values; p100 = the maximum)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


@asynccontextmanager
async def production_logging(stream: IO[str], secrets: tuple[str, ...]) -> AsyncIterator[None]:
    """The bot's JSON logging at INFO (one line per turn, as deployed), into ``stream``."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", secrets, stream)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
