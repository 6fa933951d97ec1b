"""The dashboard served as a deployment serves it: a core wired like production (tests.auxil.core)
on a SQLite file seeded with a known ledger and turn log, and the dashboard's routes on a
HealthServer, built by the composition root from ADMIN_TOKEN."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.composition import build_admin
from bot.health import Health, HealthServer
from bot.vocabulary import ConversationKey, Usage
from storage.content import Blob
from storage.protocol import NewTurn
from storage.reports import TurnRecord
from storage.sqlite_store import SqliteStore
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini, render_png
from tests.storage.store_contract import FakeClock, model_record, user_content

TOKEN = "correct-horse-battery-staple-42"
ZONE = "America/New_York"
FLASH, PRO = "gemini-2.5-flash-image", "gemini-3-pro-image"


@dataclass(frozen=True)
class Seed:
    """One turn of the seeded ledger: where, who, which model, what it made, and when."""

    key: ConversationKey
    author: str
    model: str
    images: int
    cost: float
    at: float
    picture: Blob | None = None


def local_time(now: float, days_ago: int, hour: int, minute: int = 0) -> float:
    day = datetime.fromtimestamp(now, ZoneInfo(ZONE)).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE)).timestamp()


def seeds(now: float) -> list[Seed]:
    picture = Blob("image/png", render_png((200, 120, 40), (256, 256), noisy=True))
    other = Blob("image/png", render_png((40, 90, 200), (256, 256), noisy=True))
    discord = ConversationKey("discord", "g1", "c1", "1200")
    return [
        Seed(discord, "alice", FLASH, 2, 0.078, now - 120, picture),
        Seed(ConversationKey("discord", "g1", "c2", "1300"), "bob", PRO, 1, 0.134, now - 300, other),
        Seed(ConversationKey("slack", "T1", "C9", "1.5"), "U7", FLASH, 3, 0.117, local_time(now, 1, 12)),
        Seed(
            ConversationKey("discord", "g1", "c1", "1400"), "alice", PRO, 2, 0.268, local_time(now, 3, 0, 30)
        ),
        Seed(ConversationKey("slack", "T1", "C9", "1.6"), "U7", PRO, 4, 0.536, local_time(now, 12, 12)),
        Seed(
            ConversationKey("discord", "g1", "c1", "1500"), "carol", FLASH, 1, 0.039, local_time(now, 40, 12)
        ),
    ]


def turn_log(now: float) -> list[TurnRecord]:
    answered = [
        TurnRecord(now - 60 * n, "discord", "new", "image", "image", s)
        for n, s in ((1, 2.0), (2, 6.0), (3, 4.0))
    ]
    return [
        *answered,
        TurnRecord(local_time(now, 1, 12), "slack", "new", "text_only", "text_only", 1.0),
        TurnRecord(now - 30, "discord", "new", "failed", "timeout", 60.0),
        TurnRecord(now - 40, "discord", "new", "failed", "timeout", 60.0),
        TurnRecord(now - 50, "slack", "new", "refused_by_limit", "refused_by_limit", 0.1),
        TurnRecord(now - 70, "discord", "new", "blocked_by_safety", "image_blocked", 3.0),
    ]


async def seed_database(path: Path, now: float) -> list[Seed]:
    """Write the seeded turns (each its own conversation) and turn log; returns the seeds."""
    clock = FakeClock(now)
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        planted = seeds(now)
        for seed in planted:
            clock.now = seed.at
            outputs = [seed.picture] if seed.picture else []
            await store.append_turn(
                NewTurn(
                    key=seed.key,
                    parent_id=None,
                    user_content=user_content("a lighthouse at dusk"),
                    model_content=model_record("Here it is.", outputs),
                    model=seed.model,
                    author_id=seed.author,
                    usage=Usage(images_generated=seed.images, cost_usd=seed.cost),
                    blobs=tuple(outputs),
                ),
                expected_head=None,
            )
        await store.record_turns(turn_log(now))
    finally:
        await store.close()
    return planted


@dataclass
class Dashboard:
    base_url: str
    core: Core
    seeds: list[Seed]
    now: float


@asynccontextmanager
async def serving_dashboard(
    fake: FakeGemini, tmp_path: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Dashboard]:
    """The dashboard on a free port of 127.0.0.1 over a seeded database (ADMIN_TOKEN set unless
    ``env`` says otherwise)."""
    now = time.time()
    path = tmp_path / "bot.sqlite3"
    planted = await seed_database(path, now)
    settings = {"ADMIN_TOKEN": TOKEN, "ADMIN_TIMEZONE": ZONE, "DAILY_SPEND_CAP_USD": "2", **(env or {})}
    core = await Core(fake, path, {k: v for k, v in settings.items() if v}).start()
    health = Health(core.store, [])
    admin = build_admin(core.config, core.store, core.service.forget, health.check)
    server = HealthServer(health, 0, routes=[admin.install] if admin is not None else [])
    try:
        await server.start()
        yield Dashboard(f"http://127.0.0.1:{server.port}", core, planted, now)
    finally:
        await server.close()
        await core.stop()


def utc_midnight(now: float) -> float:
    return datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
