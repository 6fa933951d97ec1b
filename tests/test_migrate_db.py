"""`python -m bot migrate-db --to postgresql://...`: SQLite into PostgreSQL, byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.vocabulary import SettingScope, Usage
from storage.postgres_store import PostgresStore
from storage.sqlite_store import SqliteStore
from tests.auxil.process import run_bot
from tests.store_contract import FakeClock, StoreContract, make_blob, make_key, user_content

EXOTIC: dict[str, Any] = {
    "role": "model",
    "parts": [
        {"text": 'ünïcödé 🍌 "q" \\ \u0000', "thought": True, "thought_signature": "CiQB0e2Kb+/x9=="},
        {"text": "done", "zeta": 1, "alpha": {"b": 2, "a": 1}, "thought_signature": "A" * 2048},
    ],
}
KEYS = (make_key("t1"), make_key("t2"), make_key("t3", channel="c2", platform="slack"))


async def build_source(path: Path) -> dict[str, Any]:
    """A SQLite database with branches, shared images, settings, claims, posts, usage and a
    forgotten conversation; returns what was made."""
    clock = FakeClock()
    store = SqliteStore(path, clock=clock)
    await store.open()
    add = StoreContract.add
    shared = make_blob("shared")
    t1 = await add(
        store, KEYS[0], images=[shared], usage=Usage(10, 1290, 2, 1302, {"TEXT": 10}, {"IMAGE": 1290}, 1)
    )
    clock.now += 10
    t2 = await store.append_turn(
        KEYS[0],
        t1.id,
        user_content("exotic"),
        EXOTIC,
        [],
        "gemini-3-pro-image",
        Usage(),
        "bob",
        expected_head=t1.id,
    )
    clock.now += 10
    await add(store, KEYS[0], t1, text="branch", outputs=[make_blob("branch")])  # head moves to a branch
    await add(store, KEYS[1], images=[shared], outputs=[make_blob("t2-out")])
    await add(store, KEYS[2], usage=Usage(images_generated=2, cost_usd=0.078), author="carol")
    gone = await add(store, make_key("gone"), images=[make_blob("secret")])
    await add(store, make_key("gone"), gone)
    await store.forget(make_key("gone"))
    await store.set_setting(SettingScope.everywhere(), "response_mode", "image_only")
    await store.set_setting(SettingScope.for_channel(KEYS[0]), "aspect_ratio", "16:9")
    await store.set_setting(SettingScope.for_thread(KEYS[1]), "image_size", "2K")
    await store.claim_message("discord", "c1", "m1")
    await store.claim_message("discord", "c1", "m2", KEYS[0])
    await store.record_posted("discord", "c1", ["p1", "p2"], t2.id)
    snapshot = {
        "history": {k: await store.history(k) for k in KEYS},
        "branch": await store.history(KEYS[0], upto=t2.id),
        "conversations": {k: await store.conversation(k) for k in KEYS},
        "settings": {k: await store.settings(k) for k in KEYS},
        "usage": await store.usage_since(0),
        "images": await store.count_images(0, platform="slack"),
        "unfinished": await store.unfinished_messages("discord", 0),
        "blobs": await store.load_blobs(
            [shared.sha256, make_blob("branch").sha256, make_blob("t2-out").sha256]
        ),
        "max_turn_id": gone.id + 1,
        "posted": t2.id,
    }
    await store.close()
    return snapshot


def raw_turns(path: Path) -> list[tuple[int, str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT id, user_content, model_content FROM turns ORDER BY id").fetchall()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def migrate(cwd: Path, source: Path, to: str | None) -> Any:
    args = ["migrate-db", *(["--to", to] if to else [])]
    return run_bot(args, cwd, {"DATABASE_URL": f"sqlite:///{source}"})


async def test_migrate_copies_everything_and_refuses_a_second_time(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "data" / "bot.sqlite3"
    made = await build_source(source)
    digest, texts = file_digest(source), raw_turns(source)

    result = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Copied 3 conversations, 5 turns, 3 images, 3 settings, 2 claimed messages, "
        f"2 posted messages and 7 usage records from {source} to {postgres_url}."
    ]
    assert file_digest(source) == digest

    conn = await asyncpg.connect(postgres_url)
    try:
        copied = [
            tuple(r)
            for r in await conn.fetch("SELECT id, user_content, model_content FROM turns ORDER BY id")
        ]
    finally:
        await conn.close()
    assert copied == texts  # the records' text, byte for byte (thought signatures and all)

    store = PostgresStore(postgres_url, clock=FakeClock(2_000_000_000.0))
    await store.open()
    try:
        assert {k: await store.history(k) for k in KEYS} == made["history"]
        assert (await store.history(KEYS[0], upto=made["posted"]))[-1].model_content == EXOTIC
        assert await store.history(KEYS[0], upto=made["posted"]) == made["branch"]
        assert {k: await store.conversation(k) for k in KEYS} == made["conversations"]
        assert {k: await store.settings(k) for k in KEYS} == made["settings"]
        assert await store.usage_since(0) == made["usage"]
        assert await store.count_images(0, platform="slack") == made["images"]
        assert await store.unfinished_messages("discord", 0) == made["unfinished"]
        assert await store.load_blobs(made["blobs"]) == made["blobs"]
        assert await store.load_blobs([make_blob("secret").sha256]) == {}
        assert await store.claim_message("discord", "c1", "m1") is False
        assert await store.turn_for_message("discord", "c1", "p2") == made["posted"]
        # New ids continue after every id SQLite handed out, the forgotten turns' included.
        head = (await store.conversation(KEYS[1])).head_turn_id  # type: ignore[union-attr]
        new = await StoreContract.add(store, KEYS[1], head, expected_head=head)
        assert new.id == made["max_turn_id"] + 1
        assert await store.history(KEYS[1]) == [*made["history"][KEYS[1]], new]
    finally:
        await store.close()

    again = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
    assert again.returncode == 1
    assert again.stderr.splitlines() == [
        f"error: nothing was copied to {postgres_url}: The PostgreSQL database already holds bot data "
        "(conversations is not empty); migrate into an empty database."
    ]
    assert again.stdout == ""
    assert file_digest(source) == digest


@pytest.mark.parametrize(
    ("to", "line"),
    [
        (
            None,
            "error: migrate-db needs --to postgresql://user:password@host:5432/database (an empty database).",
        ),
        (
            "sqlite:///x.db",
            "error: migrate-db needs --to postgresql://user:password@host:5432/database (an empty database).",
        ),
    ],
)
def test_migrate_needs_a_postgres_target(tmp_path: Path, to: str | None, line: str) -> None:
    result = migrate(tmp_path, tmp_path / "bot.sqlite3", to)
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (2, [line], "")


async def test_a_missing_source_copies_nothing(tmp_path: Path, postgres_url: str) -> None:
    missing = tmp_path / "none.sqlite3"
    result = await asyncio.to_thread(migrate, tmp_path, missing, postgres_url)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: nothing was copied to {postgres_url}: "
        f"There is no SQLite database at {missing}; nothing to migrate."
    ]
    assert not missing.exists()
