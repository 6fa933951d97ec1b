"""Leaving a Slack workspace, end to end (the real Bolt app in HTTP mode, signed requests, the
fake Web API): ``app_uninstalled`` and a revoked bot token delete the team's rows in the database
file; a revoked person's token, or another team's event, deletes nothing."""

from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.handlers import EVENT_TYPES
from bot.vocabulary import SettingScope
from storage.content import Blob
from tests.adapters.slack.test_slack import thread_key
from tests.adapters.slack.test_slack_pins import command_as
from tests.auxil import fake_slack as fs
from tests.auxil import image_factory as img
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.process import ROOT
from tests.auxil.slack_bot import Bot
from tests.auxil.slack_bot import bot as bot
from tests.auxil.waiting import settled

OTHER_TEAM = "T0OTHER"
# Each table's rows of the installation's team (settings: by scope text).
TEAM_ROWS = {
    "conversations": "SELECT COUNT(*) FROM conversations WHERE platform = 'slack' AND workspace = ?",
    "turns": "SELECT COUNT(*) FROM turns AS t JOIN conversations AS c ON c.id = t.conversation_id "
    "WHERE c.workspace = ?",
    "pins": "SELECT COUNT(*) FROM pins WHERE platform = 'slack' AND workspace = ?",
    "settings": "SELECT COUNT(*) FROM settings WHERE instr(scope, '|slack|' || ? || '|') > 0",
    "ledger": "SELECT COUNT(*) FROM usage_log WHERE platform = 'slack' AND workspace = ?",
}


def rows_in_file(path: Path, team: str = fs.TEAM_ID) -> dict[str, int]:
    """What the database file holds for ``team``, read with a plain connection of its own."""
    with closing(sqlite3.connect(path)) as conn:
        counts = {name: conn.execute(sql, [team]).fetchone()[0] for name, sql in TEAM_ROWS.items()}
        counts["blobs"] = conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
        counts["posted"] = conn.execute("SELECT COUNT(*) FROM posted_messages").fetchone()[0]
    return counts


async def until_forgotten(caplog: pytest.LogCaptureFixture, limit_s: float = 15.0) -> logging.LogRecord:
    """The one line the deletion logs once it is done."""
    assert await settled(lambda: bool(forgotten_lines(caplog)), limit_s)
    [line] = forgotten_lines(caplog)
    return line


async def a_team_with_history(bot: Bot) -> str:
    """A drawn image in a thread, pinned, a channel default, and another team's pin; returns the
    thread's ts."""
    first = await bot.mention("a lighthouse on a cliff")
    await bot.replies(first["ts"], 2)
    assert await command_as(bot, fs.ALICE, "/pin", "lighthouse")
    await bot.core.store.set_setting(
        SettingScope.for_channel(thread_key(first["ts"])), "aspect_ratio", "16:9"
    )
    await bot.core.store.add_pin("slack", OTHER_TEAM, "logo", Blob("image/png", img.png(12, 12)), "U0")
    before = rows_in_file(bot.core.db_path)
    assert before["conversations"] == before["pins"] == before["ledger"] == 1
    assert before["turns"] == 1 and before["settings"] == 2  # who started it, and the channel default
    assert before["posted"] >= 1 and before["blobs"] == 2  # the drawing (pinned too) and the other pin
    return str(first["ts"])


def forgotten_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "workspace forgotten"]


async def test_an_uninstall_deletes_the_teams_rows_in_the_database_file(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    assert bot.sender is not None
    caplog.set_level(logging.INFO)
    ts = await a_team_with_history(bot)

    status, _ = await bot.sender.event(FakeSlack.event_body({"type": "app_uninstalled"}))

    assert status == 200
    line = await until_forgotten(caplog)
    after = rows_in_file(bot.core.db_path)
    assert after == {**dict.fromkeys(TEAM_ROWS, 0), "ledger": 1, "blobs": 1, "posted": 0}
    assert await bot.core.store.history(thread_key(ts)) == []
    assert [p.name for p in await bot.core.store.pins("slack", OTHER_TEAM)] == ["logo"]
    shown = {name: getattr(line, name) for name in ("platform", "workspace", "reason", "conversations")}
    assert shown == {
        "platform": "slack",
        "workspace": fs.TEAM_ID,
        "reason": "app_uninstalled",
        "conversations": 1,
    }
    assert (line.turns, line.images, line.settings, line.pins) == (1, 1, 2, 1)


async def test_a_revoked_bot_token_deletes_and_a_revoked_persons_token_does_not(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    assert bot.sender is not None
    caplog.set_level(logging.INFO)
    ts = await a_team_with_history(bot)
    person = {"type": "tokens_revoked", "tokens": {"oauth": [fs.ALICE]}}
    assert (await bot.sender.event(FakeSlack.event_body(person)))[0] == 200
    other_team = {**FakeSlack.event_body({"type": "app_uninstalled"}), "team_id": OTHER_TEAM}
    assert (await bot.sender.event(other_team))[0] == 200
    # A whole turn later, both were long handled: the team still has everything.
    await bot.say("now at night", thread_ts=ts)
    await bot.replies(ts, 4)
    assert rows_in_file(bot.core.db_path)["turns"] == 2
    assert forgotten_lines(caplog) == []

    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [fs.ALICE], "bot": [fs.BOT_USER_ID]}}
    assert (await bot.sender.event(FakeSlack.event_body(revoked)))[0] == 200

    line = await until_forgotten(caplog)
    after = rows_in_file(bot.core.db_path)
    assert after == {**dict.fromkeys(TEAM_ROWS, 0), "ledger": 2, "blobs": 1, "posted": 0}
    assert (line.reason, line.conversations, line.turns) == ("tokens_revoked", 1, 2)


@pytest.mark.parametrize("name", ["manifest.json", "manifest.http.json"])
def test_both_manifests_subscribe_to_leaving_events(name: str) -> None:
    manifest: dict[str, Any] = json.loads((ROOT / name).read_text())
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(events)
    assert {e.split(".")[0] for e in events} == set(EVENT_TYPES)
