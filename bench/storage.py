"""Storage efficiency: database bytes per stored image against the image bytes themselves."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot, conversation
from storage.sqlite_store import SqliteStore


@dataclass(frozen=True, slots=True)
class StorageResult:
    db_bytes: int
    image_bytes: int
    images: int
    references: int

    @property
    def ratio(self) -> float:
        return self.db_bytes / self.image_bytes


async def add_duplicates(fake: FakeGeminiProcess, db_path: Path, prompts: list[str]) -> None:
    """A second thread that asks for images the first already has: same bytes, stored once."""
    async with Bot(fake.base_url, db_path) as bot:
        key = conversation("storage-repeats")
        for text in prompts:
            await bot.turn(key, text)


async def measure_storage(db_path: Path) -> StorageResult:
    """Checkpoint the WAL into the file, then compare the file with the distinct image bytes."""
    store = SqliteStore(db_path)
    await store.open()
    try:
        await store.checkpoint()
    finally:
        await store.close()
    return await asyncio.to_thread(_figures, db_path)


def _figures(db_path: Path) -> StorageResult:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        images, image_bytes = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs").fetchone()
        (references,) = db.execute("SELECT COUNT(*) FROM turn_blobs").fetchone()
    wal = db_path.with_name(db_path.name + "-wal")
    if wal.exists() and wal.stat().st_size:
        raise RuntimeError("the WAL was not checkpointed into the database file")
    return StorageResult(db_path.stat().st_size, int(image_bytes), int(images), int(references))
