"""The dashboard's processes table: every process sharing the database with its last renewal and
its platforms' states as its lease reported them; a process whose lease lapsed is shown as gone
(for a day); SQLite says there are no leases and shows the process's own checks."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.admin.figures import GONE_SHOWN_S, Figures, day_bounds, gather
from bot.admin.page import dashboard_page
from bot.limits.quotas import LimitPolicy
from bot.text import admin_words as words
from storage.reports import ProcessSeen
from storage.sqlite_store import SqliteStore

NOW = 1_750_000_000.0
LEASE_S = 30.0


def figures(processes: list[ProcessSeen], parts: dict[str, bool] | None = None) -> Figures:
    zone = ZoneInfo("UTC")
    return Figures(
        now=NOW,
        zone=zone,
        bounds=day_bounds(NOW, zone),
        usage=[],
        latency=[],
        outcomes=[],
        people=[],
        channels=[],
        spent_today=0.0,
        spend_cap=None,
        processes=processes,
        lease_s=LEASE_S,
        parts=parts or {"slack": True, "database": True},
        conversations=[],
    )


def table(html: str, table_id: str) -> list[list[str]]:
    """The text of each body cell of a table, row by row."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body is not None, html
    rows = re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    cells = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in rows]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)) for cell in row] for row in cells]


def test_each_process_shows_its_renewal_and_platforms_and_a_lapsed_one_is_gone() -> None:
    processes = [
        ProcessSeen("a" * 32, NOW - 600, NOW - 5, True, (("discord", "connected"), ("slack", "connected"))),
        ProcessSeen("b" * 32, NOW - 500, NOW - 29, False, (("discord", "disconnected"),)),
        ProcessSeen("c" * 32, NOW - 400, NOW - 31, False, (("slack", "connected"),)),
        ProcessSeen("d" * 32, NOW - 300, NOW - 1, False, ()),
        # A word a newer version wrote, and a name that is not plain text.
        ProcessSeen("e" * 32, NOW - 200, NOW - 1, False, (("<b>x</b>", "reconnecting"),)),
    ]
    html = dashboard_page(figures(processes), "form")
    rows = table(html, "processes")
    assert [row[0] for row in rows] == ["a" * 12 + " (this process)", "b" * 12, "c" * 12, "d" * 12, "e" * 12]
    assert [row[1] for row in rows] == ["live", "live", "gone", "live", "live"]
    assert [row[2] for row in rows] == [
        "2025-06-15 14:56 UTC",
        "2025-06-15 14:58 UTC",
        "2025-06-15 15:00 UTC",
        "2025-06-15 15:01 UTC",
        "2025-06-15 15:03 UTC",
    ]
    assert [row[3] for row in rows] == [
        "2025-06-15 15:06 UTC (5 s ago)",
        "2025-06-15 15:06 UTC (29 s ago)",
        "2025-06-15 15:06 UTC (31 s ago)",
        "2025-06-15 15:06 UTC (1 s ago)",
        "2025-06-15 15:06 UTC (1 s ago)",
    ]
    assert [row[4] for row in rows] == [
        "discord: connected, slack: connected",
        "discord: disconnected",
        "last reported slack: connected",
        "none reported",
        "<b>x</b>: unknown",
    ]
    assert "<b>x</b>" not in html  # escaped
    assert [c for c in re.findall(r"<th>(.*?)</th>", html) if c in words.COLUMNS.values()][-7:] == [
        "Process",
        "Status",
        "Started",
        "Last renewal",
        "Platforms",
        "Part",
        "State",
    ]
    # This process's own checks are shown beside the leases, as before.
    assert table(html, "parts") == [["slack", "connected"], ["database", "connected"]]


def test_sqlite_lists_no_leases_and_shows_the_process_own_platform_states() -> None:
    html = dashboard_page(figures([], {"discord": False, "slack": True, "database": True}), "form")
    assert f'<p id="processes" class="empty">{words.ONE_PROCESS}</p>' in html
    assert table(html, "parts") == [["discord", "down"], ["slack", "connected"], ["database", "connected"]]


async def test_a_process_gone_for_over_a_day_is_left_out(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bot.sqlite3")
    await store.open()
    leases = [
        ProcessSeen("live", NOW - 900_000, NOW - 3),
        ProcessSeen("gone-an-hour", NOW - 900_000, NOW - 3600),
        ProcessSeen("gone-a-day", NOW - 900_000, NOW - GONE_SHOWN_S),
        ProcessSeen("gone-longer", NOW - 900_000, NOW - GONE_SHOWN_S - 1),
    ]

    async def processes() -> list[ProcessSeen]:
        return leases  # as PostgreSQL's leases read; SQLite has none

    async def parts() -> dict[str, bool]:
        return {"database": True}

    store.processes = processes  # type: ignore[method-assign]
    try:
        shown = await gather(store, LimitPolicy(), ZoneInfo("UTC"), NOW, parts, LEASE_S)
    finally:
        await store.close()
    assert [p.id for p in shown.processes] == ["live", "gone-an-hour", "gone-a-day"]
