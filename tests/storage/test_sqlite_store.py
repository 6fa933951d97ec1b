"""The store contract run against SqliteStore, plus what only SQLite files can show."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from bot.vocabulary import SettingScope
from storage.blob_cache import BlobCache
from storage.content import Blob
from storage.errors import StoreError
from storage.migrations import LATEST_VERSION
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import (
    FakeClock,
    StoreContract,
    StoreFactory,
    make_blob,
    make_key,
)

MB = 1024 * 1024


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, plain connection to the same file (WAL lets it read next to the store)."""
    with closing(sqlite3.connect(path)) as conn:
        yield conn


def file_bytes(path: Path) -> bytes:
    """The database file and its WAL, as raw bytes."""
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


def slices(blob: Blob) -> list[bytes]:
    data = blob.data
    middle = len(data) // 2
    return [data[8:72], data[middle : middle + 64], data[-64:]]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestSqliteStore(StoreContract):
    # One open store per file (one process): sharing across processes is PostgreSQL's to show.
    shares_across_stores = False

    @pytest.fixture
    def store_factory(self, db_path: Path, clock: FakeClock) -> StoreFactory:
        async def factory() -> SqliteStore:
            store = SqliteStore(db_path, clock=clock, blob_cache=BlobCache(MB))
            await store.open()
            return store

        return factory

    async def test_schema_version_is_the_latest_migration(self, store: SqliteStore, db_path: Path) -> None:
        assert await store.schema_version() == LATEST_VERSION
        with raw(db_path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION

    async def test_wal_mode_is_on(self, store: SqliteStore, db_path: Path) -> None:
        with raw(db_path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def test_one_process_has_the_file_so_there_are_no_leases(self, store: SqliteStore) -> None:
        assert await store.processes() == []

    async def test_files_are_owner_only(self, store: SqliteStore, db_path: Path) -> None:
        await self.add(store, make_key(), images=[make_blob("x")])
        wal = db_path.with_name(db_path.name + "-wal")
        shm = db_path.with_name(db_path.name + "-shm")
        assert wal.exists()
        assert shm.exists()
        assert mode(db_path) == 0o600
        assert mode(wal) == 0o600
        assert mode(shm) == 0o600
        assert mode(db_path.parent) == 0o700

    async def test_leftover_side_files_get_the_database_mode(
        self, open_store: StoreFactory, db_path: Path
    ) -> None:
        await (await open_store()).close()
        wal = db_path.with_name(db_path.name + "-wal")
        assert not wal.exists()
        wal.touch()
        os.chmod(wal, 0o644)
        store = await open_store()
        await self.add(store, make_key())
        assert mode(wal) == 0o600

    async def test_integrity_check(self, store: SqliteStore) -> None:
        a, b = make_key("a"), make_key("b")
        shared = make_blob("shared")
        t = await self.add(store, a, images=[shared, make_blob("a")])
        await self.add(store, a, t, outputs=[make_blob("a2")])
        await self.add(store, b, images=[shared])
        await store.forget(a)
        assert await store.integrity_check() == ["ok"]

    async def test_blobs_are_stored_once_as_raw_bytes(self, store: SqliteStore, db_path: Path) -> None:
        shared = make_blob("shared", 4096, "image/webp")
        t = await self.add(store, make_key("a"), images=[shared], outputs=[shared])
        await self.add(store, make_key("a"), t, images=[shared])
        await self.add(store, make_key("b"), images=[shared], blobs=[shared, shared])
        with raw(db_path) as conn:
            rows = conn.execute("SELECT sha256, mime_type, size, typeof(data), data FROM blobs")
            assert rows.fetchall() == [(shared.sha256, "image/webp", 4096, "blob", shared.data)]
            refs = conn.execute("SELECT COUNT(*) FROM turn_blobs WHERE sha256 = ?", [shared.sha256])
            assert refs.fetchone()[0] == 3
            # Records hold the hash, never the bytes or base64 of them.
            text = conn.execute("SELECT group_concat(user_content || model_content) FROM turns")
            assert "base64" not in text.fetchone()[0]

    async def test_forget_removes_rows_through_foreign_keys(self, store: SqliteStore, db_path: Path) -> None:
        key = make_key("gone")
        t = await self.add(store, key, images=[make_blob("g1")])
        await self.add(store, key, t, outputs=[make_blob("g2")])
        kept = await self.add(store, make_key("kept"), images=[make_blob("k")])
        await store.forget(key)
        with raw(db_path) as conn:
            assert conn.execute("SELECT id FROM turns").fetchall() == [(kept.id,)]
            assert conn.execute("SELECT turn_id FROM turn_blobs").fetchall() == [(kept.id,)]
            assert conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 1
            assert conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

    async def test_forget_leaves_no_image_bytes_in_the_files(self, store: SqliteStore, db_path: Path) -> None:
        secret = Blob("image/png", os.urandom(50 * 1024))
        kept = Blob("image/png", os.urandom(50 * 1024))
        doomed, survivor = make_key("doomed"), make_key("survivor")
        first = await self.add(store, doomed, images=[secret])
        await self.add(store, doomed, first, outputs=[make_blob("render", 30_000)])
        await self.add(store, survivor, images=[kept])
        await store.set_setting(SettingScope.for_thread(doomed), "aspect_ratio", "1:1")
        await store.checkpoint()
        before = file_bytes(db_path)
        # The scan does find bytes that are there, or the check below would prove nothing.
        assert all(piece in before for piece in slices(secret))

        assert await store.forget(doomed) == 2
        after = file_bytes(db_path)
        assert not any(piece in after for piece in slices(secret))
        assert not any(piece in after for piece in slices(make_blob("render", 30_000)))
        assert all(piece in after for piece in slices(kept))

        await store.checkpoint()
        with raw(db_path) as conn:
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        after = file_bytes(db_path)
        assert not any(piece in after for piece in slices(secret))
        assert all(piece in after for piece in slices(kept))

        await store.close()
        assert not any(piece in file_bytes(db_path) for piece in slices(secret))

    async def test_records_must_be_plain_json(self, store: SqliteStore) -> None:
        key = make_key()
        with pytest.raises(TypeError):
            await store.append_turn(
                NewTurn(
                    key=key,
                    parent_id=None,
                    user_content={"role": "user", "parts": [{"data": b"raw"}]},
                    model_content={},
                    model="m",
                    author_id="a",
                ),
                expected_head=None,
            )
        assert await store.conversation(key) is None
        assert (await self.add(store, key)).parent_id is None

    async def test_open_twice_and_use_after_close_are_errors(self, store: SqliteStore, db_path: Path) -> None:
        with pytest.raises(StoreError, match="already open"):
            await store.open()
        await store.close()
        with pytest.raises(StoreError, match="not open"):
            await store.history(make_key())
        with pytest.raises(StoreError, match="not open"):
            await store.claim_message("slack", "C", "1")


async def test_an_existing_file_keeps_its_mode_and_parent(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    path.touch()
    os.chmod(path, 0o640)
    store = SqliteStore(path)
    await store.open()
    try:
        assert mode(path) == 0o640
        assert await store.schema_version() == LATEST_VERSION
    finally:
        await store.close()


async def test_real_clock_timestamps(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "clock.sqlite3")
    await store.open()
    try:
        before = time.time()
        turn = await StoreContract.add(store, make_key())
        assert before <= turn.created_at <= time.time()
    finally:
        await store.close()
