"""`python -m bot migrate-db --to postgresql://...`: SQLite into PostgreSQL, byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import stat
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import storage.copy_to_postgres
from bot.vocabulary import SettingScope, Usage
from storage.copy_to_postgres import TABLES, copy_sqlite_to_postgres
from storage.errors import StoreError
from storage.postgres_store import PostgresStore
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.process import BotProcess, bot_env, run_bot
from tests.storage.store_contract import FakeClock, StoreContract, make_blob, make_key, user_content

EXOTIC: dict[str, Any] = {
    "role": "model",
    "parts": [
        {"text": 'ünïcödé 🍌 "q" \\ \u0000', "thought": True, "thought_signature": "CiQB0e2Kb+/x9=="},
        {"text": "done", "zeta": 1, "alpha": {"b": 2, "a": 1}, "thought_signature": "A" * 2048},
    ],
}
KEYS = (make_key("t1"), make_key("t2"), make_key("t3", channel="c2", platform="slack"))


def in_use(pid: int) -> str:
    """What a second process opening a SQLite file a bot holds is told."""
    return (
        f"Another bot process (pid {pid}) is using the database; SQLite is for one process at a time "
        "(several processes need PostgreSQL)."
    )


def still_running(pid: int, source: Path) -> str:
    return f"error: a bot process (pid {pid}) is still using {source}; stop it, then run migrate-db again."


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
        NewTurn(
            key=KEYS[0],
            parent_id=t1.id,
            user_content=user_content("exotic"),
            model_content=EXOTIC,
            model="gemini-3-pro-image",
            author_id="bob",
        ),
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


def set_claim_token(path: Path, message_id: str, token: str) -> None:
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE processed_messages SET claim_token = ? WHERE message_id = ?", (token, message_id)
        )


async def pg_claims(url: str) -> dict[str, tuple[float, float | None, str | None]]:
    """message id -> (claimed_at, finished_at, claim_token), as PostgreSQL holds them."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT message_id, claimed_at, finished_at, claim_token FROM processed_messages"
        )
    finally:
        await conn.close()
    return {r["message_id"]: (r["claimed_at"], r["finished_at"], r["claim_token"]) for r in rows}


async def pg_row_count(url: str) -> int:
    """Rows in every copied table that exists in the target (0 when the schema was never made)."""
    conn = await asyncpg.connect(url)
    try:
        total = 0
        for table, _ in TABLES:
            if await conn.fetchval("SELECT to_regclass($1)", table) is not None:
                total += await conn.fetchval(f"SELECT COUNT(*) FROM {table}")
        return total
    finally:
        await conn.close()


def migrate(cwd: Path, source: Path, to: str | None) -> Any:
    args = ["migrate-db", *(["--to", to] if to else [])]
    return run_bot(args, cwd, {"DATABASE_URL": f"sqlite:///{source}"})


async def test_migrate_copies_everything_and_refuses_a_second_time(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "data" / "bot.sqlite3"
    made = await build_source(source)
    set_claim_token(source, "m1", "attempt-1")
    digest, texts = file_digest(source), raw_turns(source)

    result = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Copied 3 conversations, 5 turns, 3 images, 3 settings, 2 claimed messages (1 of them cut off "
        "by the last stop and never answered; it is copied as finished, so nobody is told), "
        f"2 posted messages and 7 usage records from {source} to {postgres_url}."
    ]
    assert file_digest(source) == digest
    claims = await pg_claims(postgres_url)
    assert claims["m1"][2] == "attempt-1"
    assert claims["m2"][1] == claims["m2"][0]  # m2 was cut off: finished as of its claim

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
        assert made["unfinished"] == [(KEYS[0], "m2")]
        assert await store.unfinished_messages("discord", 0) == []
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


async def build_claims(path: Path) -> None:
    """Four claimed messages: one without a turn, one answered, two cut off by the last stop."""
    clock = FakeClock()
    store = SqliteStore(path, clock=clock)
    await store.open()
    try:
        await store.claim_message("discord", "c1", "plain")
        clock.now += 1
        await store.claim_message("discord", "c1", "answered", KEYS[0])
        await store.finish_message("discord", "c1", "answered")
        clock.now += 1
        await store.claim_message("discord", "c1", "cut-1", KEYS[0])
        clock.now += 1
        await store.claim_message("slack", "c2", "cut-2", KEYS[2])
    finally:
        await store.close()


async def test_cut_off_claims_arrive_finished_and_are_counted(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "bot.sqlite3"
    await build_claims(source)
    set_claim_token(source, "cut-2", "attempt-2")

    result = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "Copied 0 conversations, 0 turns, 0 images, 0 settings, 4 claimed messages (2 of them cut off "
        "by the last stop and never answered; they are copied as finished, so nobody is told), "
        f"0 posted messages and 0 usage records from {source} to {postgres_url}."
    ]
    claims = await pg_claims(postgres_url)
    start = FakeClock().now
    assert claims == {
        "plain": (start, start, None),
        "answered": (start + 1, start + 1, None),
        "cut-1": (start + 2, start + 2, None),
        "cut-2": (start + 3, start + 3, "attempt-2"),
    }
    store = PostgresStore(postgres_url, clock=FakeClock(start + 100))
    await store.open()
    try:
        assert await store.unfinished_messages("discord", 0) == []
        assert await store.unfinished_messages("slack", 0) == []
        assert await store.take_interrupted("discord", 0) == []
        assert await store.take_interrupted("slack", 0) == []
        assert await store.claim_message("slack", "c2", "cut-2") is False
    finally:
        await store.close()


async def test_migrate_refuses_while_a_bot_holds_the_file(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "data" / "bot.sqlite3"
    await build_source(source)
    bot = SqliteStore(source)
    await bot.open()
    try:
        refused = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
        assert (refused.returncode, refused.stdout) == (1, "")
        assert refused.stderr.splitlines() == [still_running(os.getpid(), source)]
        assert await pg_row_count(postgres_url) == 0
        # The refused copy left the bot's hold alone.
        assert await bot.schema_version() > 0
        with pytest.raises(StoreError):
            await SqliteStore(source).open()
    finally:
        await bot.close()

    copied = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
    assert (copied.returncode, copied.stderr) == (0, "")
    assert copied.stdout.startswith("Copied 3 conversations, 5 turns,")
    assert await pg_row_count(postgres_url) > 0


async def test_a_second_store_on_a_held_file_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    first = SqliteStore(path)
    await first.open()
    second = SqliteStore(path)
    try:
        with pytest.raises(StoreError) as refused:
            await second.open()
        assert str(refused.value) == in_use(os.getpid())
        with pytest.raises(StoreError, match="not open"):
            await second.schema_version()
        lock = path.with_name("bot.sqlite3.lock")
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
        assert lock.read_text() == f"{os.getpid()}\n"
    finally:
        await first.close()
    await second.open()  # free once the first store closed
    await second.close()
    await first.open()  # and a closed store may open again
    await first.close()


HOLDER = """
import asyncio, sys
from pathlib import Path
from storage.sqlite_store import SqliteStore

async def main() -> None:
    await SqliteStore(Path(sys.argv[1])).open()
    print("open", flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_a_sigkilled_holder_leaves_the_file_free(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "bot.sqlite3"
    await build_claims(source)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(source), env=bot_env(), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"open\n"
        with pytest.raises(StoreError) as refused:
            await SqliteStore(source).open()
        assert str(refused.value) == in_use(holder.pid)
        refused_copy = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
        assert refused_copy.stderr.splitlines() == [still_running(holder.pid, source)]
    finally:
        holder.kill()
        await holder.wait()

    copied = await asyncio.to_thread(migrate, tmp_path, source, postgres_url)
    assert (copied.returncode, copied.stderr) == (0, "")
    store = SqliteStore(source)
    await store.open()
    await store.close()


async def test_no_bot_starts_on_the_file_while_it_is_copied_and_the_copy_is_one_snapshot(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "bot.sqlite3"
    await build_claims(source)
    copy_table = storage.copy_to_postgres._copy_table
    starts: list[str] = []

    async def copy_while_others_try(source_db: Any, conn: Any, table: str, columns: tuple[str, ...]) -> int:
        if table == "processed_messages":
            try:
                await SqliteStore(source).open()
            except StoreError as exc:
                starts.append(str(exc))
            # A writer that ignores the lock: the copy must not see what it writes.
            with closing(sqlite3.connect(source)) as writer, writer:
                writer.execute(
                    "INSERT INTO processed_messages (platform, channel, message_id, claimed_at, workspace, "
                    "thread) VALUES ('discord', 'c1', 'late', 1, 'w', 't')"
                )
        return await copy_table(source_db, conn, table, columns)

    monkeypatch.setattr(storage.copy_to_postgres, "_copy_table", copy_while_others_try)
    report = await copy_sqlite_to_postgres(source, postgres_url)
    assert starts == [in_use(os.getpid())]
    assert (report.counts["processed_messages"], report.cut_off) == (4, 2)
    assert set(await pg_claims(postgres_url)) == {"plain", "answered", "cut-1", "cut-2"}
    with closing(sqlite3.connect(source)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM processed_messages").fetchone()[0] == 5


async def test_a_second_bot_process_on_one_sqlite_file_stops_with_one_line(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    env = {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{db}",
    }
    first = await BotProcess.start(tmp_path, env)
    second: BotProcess | None = None
    try:
        await first.wait_while_running(slack.wait_for_socket(limit_s=30))
        second = await BotProcess.start(tmp_path, env)
        assert await second.wait(30) == 1
        assert second.lines == [f"error: cannot open the database at {db}: {in_use(first.proc.pid)}"]
        assert second.stdout == []
        assert first.running
        assert await first.stop(15) == 0
    finally:
        first.ensure_dead()
        if second is not None:
            second.ensure_dead()
