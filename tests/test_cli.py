"""`python -m bot` as a process: what it says and exits with when it cannot start."""

import asyncio
import os
from pathlib import Path

import pytest

from bot.cli import FORGET_USAGE, NOTHING_TO_RUN
from bot.text import model_words
from bot.vocabulary import ConversationKey, SettingScope, Usage
from storage.postgres_store import PostgresStore
from storage.protocol import Store
from storage.sqlite_store import SqliteStore
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import run_bot
from tests.storage.store_contract import StoreContract, make_blob


def test_nothing_configured_and_no_terminal_says_what_to_set(tmp_path: Path) -> None:
    result = run_bot([], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == NOTHING_TO_RUN
    assert result.stdout == ""


def test_bad_configuration_fails_with_one_line_each_and_no_traceback(tmp_path: Path) -> None:
    result = run_bot(
        ["console"],
        tmp_path,
        {"GEMINI_API_KEY": "k", "DATABASE_URL": "postgresql+psycopg://u@h/db", "DEFAULT_ASPECT_RATIO": "5:7"},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: DATABASE_URL scheme 'postgresql+psycopg' is not supported; "
        "use postgresql://user:password@host:5432/database.",
        "error: DEFAULT_ASPECT_RATIO '5:7' is not supported by gemini-2.5-flash-image; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9.",
    ]
    assert "Traceback" not in result.stderr


def test_console_without_a_key_says_how_to_get_one(tmp_path: Path) -> None:
    result = run_bot(["console"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: GEMINI_API_KEY is not set;")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_key_from_dotenv_file_is_used(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://nope\n")
    result = run_bot(["console"], tmp_path, {"GEMINI_API_KEY": "k"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: DATABASE_URL scheme 'mysql' is not supported; use sqlite:///data/bot.sqlite3."
    )


def test_every_kind_of_bad_setting_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {
        "GEMINI_API_KEY": "k",
        "DISCORD_TOKEN": "t",
        "DISCORD_SHARD_IDS": "0-1",
        "PORT": "http",
        "LOG_LEVEL": "chatty",
        "SLACK_BOT_TOKEN": "xoxb-1",
    }
    result = run_bot([], tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: DISCORD_SHARD_IDS is set but DISCORD_SHARD_COUNT is not; set the total number of shards too.",
        "error: SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
        "SLACK_SIGNING_SECRET (HTTP mode) is; set one of them.",
        "error: PORT must be a whole number, not 'http'.",
        "error: LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'CHATTY'.",
    ]
    assert "xoxb-1" not in result.stderr and result.stdout == ""


# -- python -m bot forget-workspace ---------------------------------------------------------------

DRAWN = Usage(images_generated=1, cost_usd=0.039)


async def two_workspaces(store: Store) -> None:
    """Slack team T1 with two conversations, a shared image, a pin and settings; team T2 with one
    conversation holding the shared image."""
    shared = make_blob("shared")
    for thread in ("t1", "t2"):
        key = ConversationKey("slack", "T1", "C1", thread)
        await StoreContract.add(store, key, images=[shared, make_blob(thread)], usage=DRAWN)
        await store.set_setting(SettingScope.for_thread(key), "image_size", "2K")
    await store.set_setting(SettingScope.for_channel(ConversationKey("slack", "T1", "C1", "")), "model", "m")
    await store.add_pin("slack", "T1", "logo", make_blob("logo"), "U1")
    await StoreContract.add(store, ConversationKey("slack", "T2", "C1", "t1"), images=[shared], usage=DRAWN)


async def left_behind(store: Store) -> tuple[int, int, int, int]:
    """T1's conversations and pins, T2's conversations, and the ledger's images for T1."""
    t1 = [await store.conversation(ConversationKey("slack", "T1", "C1", t)) for t in ("t1", "t2")]
    t2 = await store.conversation(ConversationKey("slack", "T2", "C1", "t1"))
    ledger, _ = await store.count_images(0, platform="slack", workspace="T1")
    return sum(c is not None for c in t1), len(await store.pins("slack", "T1")), int(t2 is not None), ledger


FORGOTTEN_T1 = (
    "Deleted for slack workspace T1: 2 conversations (2 turns), 3 images, 3 settings and 1 pin. Its usage "
    "ledger rows are kept (they hold no content; the spend cap and monthly totals count them)."
)


async def test_forget_workspace_deletes_one_workspace_of_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    store = SqliteStore(path)
    await store.open()
    await two_workspaces(store)
    await store.close()
    env = {"DATABASE_URL": f"sqlite:///{path}"}

    result = await asyncio.to_thread(run_bot, ["forget-workspace", "slack", "T1"], tmp_path, env)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [FORGOTTEN_T1]
    again = await asyncio.to_thread(run_bot, ["forget-workspace", "slack", "T1"], tmp_path, env)
    assert again.stdout.splitlines() == ["Nothing was stored for slack workspace T1; nothing deleted."]
    store = SqliteStore(path)
    await store.open()
    try:
        assert await left_behind(store) == (0, 0, 1, 2)
        assert await store.integrity_check() == ["ok"]
    finally:
        await store.close()


async def test_forget_workspace_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        await two_workspaces(store)
        env = {"DATABASE_URL": postgres_url}
        result = await asyncio.to_thread(run_bot, ["forget-workspace", "slack", "T1"], tmp_path, env)
        assert (result.returncode, result.stderr, result.stdout.splitlines()) == (0, "", [FORGOTTEN_T1])
        assert await left_behind(store) == (0, 0, 1, 2)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "args",
    [
        ["forget-workspace"],
        ["forget-workspace", "slack"],
        ["forget-workspace", "teams", "T1"],
        ["forget-workspace", "slack", "T1", "T2"],
        ["forget-workspace", "slack", " "],
    ],
)
def test_forget_workspace_without_a_platform_and_an_id_says_how(tmp_path: Path, args: list[str]) -> None:
    result = run_bot(args, tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"error: {FORGET_USAGE}"]
    assert not (tmp_path / "bot.sqlite3").exists()


def test_other_modes_take_no_workspace(tmp_path: Path) -> None:
    result = run_bot(["console", "slack", "T1"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "python -m bot: error: unrecognized arguments: slack T1"


async def test_forget_workspace_while_a_bot_holds_the_sqlite_file_deletes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        await two_workspaces(store)
        env = {"DATABASE_URL": f"sqlite:///{path}"}
        result = await asyncio.to_thread(run_bot, ["forget-workspace", "slack", "T1"], tmp_path, env)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.splitlines() == [
            f"error: cannot open the database at {path}: Another bot process (pid {os.getpid()}) is using "
            "the database; SQLite is for one process at a time (several processes need PostgreSQL)."
        ]
        assert await left_behind(store) == (2, 1, 1, 2)
    finally:
        await store.close()


async def test_forget_workspace_deletes_the_interactions_google_keeps(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    env = {"GEMINI_API": "interactions", "GEMINI_MODEL": "gemini-3.1-flash-image"}
    core = await Core(fake_gemini, path, env).start()
    try:
        await core.say("a fox")
        await core.say("make it blue")
    finally:
        await core.stop()
    made = list(fake_gemini.interactions.created)
    # The operator's command: generateContent now, but the key that made them.
    env = {"DATABASE_URL": f"sqlite:///{path}", "GEMINI_API_KEY": core.env["GEMINI_API_KEY"]}
    env["GOOGLE_GEMINI_BASE_URL"] = fake_gemini.base_url

    result = await asyncio.to_thread(run_bot, ["forget-workspace", "console", "local"], tmp_path, env)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[1:] == [model_words.remote_deleted(2, 2)]
    assert sorted(fake_gemini.interactions.deleted) == sorted(made)


async def test_forget_workspace_without_a_key_leaves_googles_copies_and_says_so(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    core = await Core(fake_gemini, path, {"GEMINI_API": "interactions"}).start()
    try:
        await core.say("a fox")
    finally:
        await core.stop()
    env = {"DATABASE_URL": f"sqlite:///{path}", "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url}

    result = await asyncio.to_thread(run_bot, ["forget-workspace", "console", "local"], tmp_path, env)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[1:] == [model_words.remote_left(1)]
    assert fake_gemini.interactions.delete_requests == []
