"""The dashboard's days and times in ADMIN_TIMEZONE: a day is the operator's local day (23 or 25
hours across a clock change), the ledger is bucketed by it, and times show in that zone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.admin.figures import day_bounds, gather, month_start
from bot.admin.page import dashboard_page
from bot.limits.quotas import LimitPolicy
from bot.vocabulary import Usage
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import FakeClock, make_key, model_record, user_content

NEW_YORK, TOKYO = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_days_start_at_local_midnight_even_across_a_clock_change() -> None:
    now = at("2025-03-10T15:00:00+00:00")  # the day after New York moved its clocks forward
    bounds = day_bounds(now, NEW_YORK, days=3)
    assert [datetime.fromtimestamp(b, NEW_YORK).isoformat() for b in bounds] == [
        "2025-03-08T00:00:00-05:00",
        "2025-03-09T00:00:00-05:00",
        "2025-03-10T00:00:00-04:00",
        "2025-03-11T00:00:00-04:00",
    ]
    assert bounds[2] - bounds[1] == 23 * 3600
    assert month_start(now, TOKYO) == at("2025-03-01T00:00:00+09:00")
    assert len(day_bounds(now, ZoneInfo("UTC"))) == 31


async def test_the_ledger_is_counted_in_the_operators_days_and_times_shown_in_its_zone(
    tmp_path: Path,
) -> None:
    clock = FakeClock(at("2025-06-11T23:30:00+00:00"))  # June 12, 08:30 in Tokyo
    store = SqliteStore(tmp_path / "bot.sqlite3", clock=clock)
    await store.open()
    try:
        for when, images in (("2025-06-10T14:30:00+00:00", 1), ("2025-06-10T15:30:00+00:00", 2)):
            clock.now = at(when)  # 23:30 on June 10 and 00:30 on June 11, Tokyo time
            await store.append_turn(
                NewTurn(
                    make_key(when),
                    None,
                    user_content("x"),
                    model_record("y"),
                    "m",
                    "alice",
                    Usage(images_generated=images),
                ),
                expected_head=None,
            )
        now = at("2025-06-11T23:30:00+00:00")

        async def parts() -> dict[str, bool]:
            return {"database": True}

        for zone, days in ((TOKYO, {"Jun 10": 1, "Jun 11": 2}), (ZoneInfo("UTC"), {"Jun 10": 3})):
            figures = await gather(store, LimitPolicy(), zone, now, parts, 30.0)
            counted = {figures.day_label(u.day): u.images for u in figures.usage}
            assert counted == days
            page = dashboard_page(figures, "form")
            assert f"Days and times are in {zone.key}" in page
        tokyo = await gather(store, LimitPolicy(), TOKYO, now, parts, 30.0)
        assert tokyo.when(at("2025-06-10T15:30:00+00:00")) == "2025-06-11 00:30 JST"
        page = dashboard_page(tokyo, "form")
        assert "2025-06-11 00:30 JST" in page  # the conversation's last turn, in Tokyo time
        assert datetime.fromtimestamp(tokyo.bounds[-1], UTC).isoformat() == "2025-06-12T15:00:00+00:00"
    finally:
        await store.close()
