"""Schema migrations: an old database is upgraded in place; a newer one is refused."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

import storage.sqlite_store
from bot.vocabulary import ConversationKey, SettingScope, Usage
from storage.errors import StoreError
from storage.migrations import LATEST_VERSION, MIGRATIONS, Migration
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import make_blob, model_record, user_content

KEY = ConversationKey("discord", "guild-1", "chan-1", "thread-1")
PHOTO = make_blob("v1 photo", 3000, "image/jpeg")
RENDER = make_blob("v1 render", 5000)


def build_v1(path: Path) -> None:
    """A database exactly as schema 1 left it: its DDL only, rows written the way v1 wrote them."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO conversations VALUES (1, 'discord', 'guild-1', 'chan-1', 'thread-1', "
            "2, 100.0, 200.0)"
        )
        conn.executemany(
            "INSERT INTO blobs VALUES (?, ?, ?, ?)",
            [(b.sha256, b.mime_type, len(b.data), b.data) for b in (PHOTO, RENDER)],
        )
        turns = [
            (
                1,
                None,
                user_content("a banana", [PHOTO]),
                model_record("ok", [RENDER]),
                100.0,
                (10, 1290, 0, 1300, 1, {"TEXT": 10}, {"IMAGE": 1290}),
            ),
            (
                2,
                1,
                user_content("warmer", [RENDER]),
                model_record("done", []),
                200.0,
                (20, 5, 2, 27, 0, {"TEXT": 20}, {"TEXT": 5}),
            ),
        ]
        for turn_id, parent, user, model, created, usage in turns:
            *counts, prompt_mod, output_mod = usage
            conn.execute(
                "INSERT INTO turns (id, conversation_id, parent_id, user_content, model_content, "
                "model, author_id, created_at, prompt_tokens, output_tokens, thought_tokens, "
                "total_tokens, images_generated, prompt_by_modality, output_by_modality) "
                "VALUES (?, 1, ?, ?, ?, 'gemini-2.5-flash-image', 'alice', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    turn_id,
                    parent,
                    json.dumps(user),
                    json.dumps(model),
                    created,
                    *counts,
                    json.dumps(prompt_mod),
                    json.dumps(output_mod),
                ),
            )
        conn.executemany(
            "INSERT INTO turn_blobs VALUES (?, ?)",
            [(1, PHOTO.sha256), (1, RENDER.sha256), (2, RENDER.sha256)],
        )
        conn.execute(
            "INSERT INTO settings VALUES (?, 'aspect_ratio', '16:9')",
            (SettingScope.for_thread(KEY).as_text(),),
        )
        conn.execute("INSERT INTO settings VALUES ('global', 'image_size', '1K')")
        conn.execute("INSERT INTO processed_messages VALUES ('discord', 'chan-1', 'msg-1', 99.0)")
        conn.execute("COMMIT")


def user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def schema(path: Path) -> set[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    return {(kind, name, " ".join(sql.split())) for kind, name, sql in rows}


def test_migrations_are_numbered_one_by_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert LATEST_VERSION == len(MIGRATIONS) >= 2
    assert all(m.statements and m.description for m in MIGRATIONS)


async def test_a_version_1_database_is_upgraded_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    build_v1(path)
    assert user_version(path) == 1

    store = SqliteStore(path, clock=lambda: 300.0)
    await store.open()
    try:
        assert await store.schema_version() == LATEST_VERSION
        history = await store.history(KEY)
        assert [(t.id, t.parent_id, t.created_at) for t in history] == [
            (1, None, 100.0),
            (2, 1, 200.0),
        ]
        assert history[0].user_content == user_content("a banana", [PHOTO])
        assert history[0].model_content == model_record("ok", [RENDER])
        assert history[1].usage == Usage(20, 5, 2, 27, {"TEXT": 20}, {"TEXT": 5}, 0)
        info = await store.conversation(KEY)
        assert info is not None
        assert (info.head_turn_id, info.turn_count, info.created_at) == (2, 2, 100.0)
        assert await store.load_blobs([PHOTO.sha256, RENDER.sha256]) == {
            PHOTO.sha256: PHOTO.data,
            RENDER.sha256: RENDER.data,
        }
        assert await store.settings(KEY) == {"aspect_ratio": "16:9", "image_size": "1K"}
        assert await store.claim_message("discord", "chan-1", "msg-1") is False
        # Step 5: messages claimed before it count as finished, so nothing is "interrupted".
        assert await store.unfinished_messages("discord", 0) == []
        # Step 2 backfilled the usage ledger from the v1 turns.
        assert await store.usage_since(0, author_id="alice") == Usage(
            30, 1295, 2, 1327, {"TEXT": 30}, {"IMAGE": 1290, "TEXT": 5}, 1
        )
        assert await store.usage_since(150.0) == history[1].usage
        # Step 4 placed the old ledger rows in their conversation's channel.
        assert await store.count_images(0, platform=KEY.platform, channel=KEY.channel) == (1, 100.0)

        third = await store.append_turn(
            NewTurn(
                key=KEY,
                parent_id=2,
                user_content=user_content("sign it"),
                model_content=model_record("signed"),
                model="m",
                author_id="bob",
            ),
            expected_head=2,
        )
        assert third.id == 3
        assert [t.id for t in await store.history(KEY)] == [1, 2, 3]
        assert await store.forget(KEY) == 3
        assert await store.load_blobs([PHOTO.sha256, RENDER.sha256]) == {}
        assert await store.usage_since(0, author_id="alice") != Usage()
        assert await store.integrity_check() == ["ok"]
    finally:
        await store.close()
    assert user_version(path) == LATEST_VERSION


async def test_an_upgraded_schema_equals_a_fresh_one(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.sqlite3", tmp_path / "fresh.sqlite3"
    build_v1(old)
    for path in (old, fresh):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    assert schema(old) == schema(fresh)
    assert any(name == "usage_log" for _, name, _ in schema(fresh))


async def test_reopening_the_latest_schema_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    for _ in range(2):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    assert user_version(path) == LATEST_VERSION
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM usage_log").fetchone()[0] == 0


async def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    future = LATEST_VERSION + 5
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE from_the_future (x)")
        conn.execute(f"PRAGMA user_version = {future}")
        conn.commit()
    before = schema(path)

    store = SqliteStore(path)
    with pytest.raises(StoreError) as raised:
        await store.open()
    assert str(raised.value) == (
        f"The database was written by a newer version of the bot (schema {future}); upgrade the bot."
    )
    assert user_version(path) == future
    assert schema(path) == before
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    with pytest.raises(StoreError, match="not open"):
        await store.schema_version()


async def test_a_failing_step_is_rolled_back_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite3"
    build_v1(path)
    broken = Migration(
        version=LATEST_VERSION + 1,
        description="broken on purpose",
        statements=("CREATE TABLE half_done (x)", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(storage.sqlite_store, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(sqlite3.OperationalError):
        await SqliteStore(path).open()
    # Every good step committed; the broken one left nothing behind.
    assert user_version(path) == LATEST_VERSION
    assert not any(name == "half_done" for _, name, _ in schema(path))

    monkeypatch.setattr(storage.sqlite_store, "MIGRATIONS", MIGRATIONS)
    store = SqliteStore(path)
    await store.open()
    try:
        assert [t.id for t in await store.history(KEY)] == [1, 2]
    finally:
        await store.close()
