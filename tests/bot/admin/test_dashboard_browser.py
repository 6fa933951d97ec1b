"""The dashboard in a real browser: Debian's headless Chromium through chromium-driver (Selenium)
against the page served as a deployment serves it, over a seeded ledger. Sign in (after a wrong
token), read the day charts and the top-people table against the ledger, forget a conversation
and find its bytes gone from the database, sign out; and no request ever leaves 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from bot.admin.page import money
from bot.text import admin_words as words
from tests.auxil.admin import TOKEN, ZONE, Dashboard, Seed, serving_dashboard, utc_midnight
from tests.auxil.editor import chromium_paths
from tests.auxil.fake_gemini import FakeGemini
from tests.bot.editing.test_editor_browser import QUIET, wait_for

SCREENSHOT = Path("/tmp/admin.png")


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in QUIET:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def dashboard(fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Dashboard]:
    async with serving_dashboard(fake_gemini, tmp_path) as serving:
        yield serving


def label(at: float) -> str:
    return datetime.fromtimestamp(at, ZoneInfo(ZONE)).strftime("%b %d")


def in_window(seed: Seed, now: float) -> bool:
    today = datetime.fromtimestamp(now, ZoneInfo(ZONE)).date()
    return 0 <= (today - datetime.fromtimestamp(seed.at, ZoneInfo(ZONE)).date()).days < 30


def sign_in(driver: webdriver.Chrome, base: str, token: str) -> str:
    driver.get(f"{base}/admin")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(lambda: driver.find_elements(By.ID, "message") or driver.find_elements(By.ID, "people"))
    return str(driver.page_source)


def chart_by_day(driver: webdriver.Chrome, chart: str) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for mark in driver.find_elements(By.CSS_SELECTOR, f"#{chart} rect"):
        sums[mark.get_attribute("data-day") or ""] += float(mark.get_attribute("data-value") or "nan")
    return dict(sums)


def table(driver: webdriver.Chrome, table_id: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def read_the_page(driver: webdriver.Chrome, base: str) -> dict[str, object]:
    wrong = sign_in(driver, base, "correct-horse-battery-staple-00")
    refused = {"message": driver.find_element(By.ID, "message").text, "people": "people" in wrong}
    sign_in(driver, base, TOKEN)
    figures = {
        "refused": refused,
        "images": chart_by_day(driver, "chart-images-by-model"),
        "cost": chart_by_day(driver, "chart-cost-by-platform"),
        "days": table(driver, "days"),
        "people": table(driver, "people"),
        "zone": driver.find_element(By.CLASS_NAME, "zone").text,
        "thumbnails": driver.execute_script(
            "return [...document.querySelectorAll('#conversations img')].map(i => i.naturalWidth)"
        ),
    }
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(int(height) + 40, 6000))
    driver.save_screenshot(str(SCREENSHOT))
    return figures


def forget_from_the_page(driver: webdriver.Chrome, conversation: str) -> str:
    row = next(
        r for r in driver.find_elements(By.CSS_SELECTOR, "#conversations tbody tr") if conversation in r.text
    )
    row.find_element(By.CLASS_NAME, "forget").click()
    wait_for(lambda: driver.find_elements(By.ID, "confirm-forget"))
    assert words.FORGET_QUESTION in driver.find_element(By.ID, "message").text
    driver.find_element(By.ID, "confirm-forget").click()
    wait_for(lambda: driver.find_elements(By.ID, "people"))
    return str(driver.find_element(By.ID, "message").text)


def sign_out(driver: webdriver.Chrome, base: str) -> tuple[str, bool, bool]:
    driver.find_element(By.ID, "sign-out").click()
    wait_for(lambda: not driver.find_elements(By.ID, "people"))  # the dashboard is gone
    said = driver.find_element(By.ID, "message").text
    driver.get(f"{base}/admin")
    return said, bool(driver.find_elements(By.ID, "token")), bool(driver.find_elements(By.ID, "people"))


def requests_made(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def database_bytes(path: Path) -> bytes:
    """The SQLite file and its WAL, as raw bytes."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def expected_people(seeds: list[Seed], now: float) -> list[list[str]]:
    local = datetime.fromtimestamp(now, ZoneInfo(ZONE))
    month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])
    for s in seeds:
        if s.at >= month:
            person = totals[(s.key.platform, s.author)]
            person[0] += s.images
            person[1] += s.cost
            person[2] += s.images if s.at >= utc_midnight(now) else 0
            person[3] += s.images if s.at >= now - 3600 else 0
    ranked = sorted(totals.items(), key=lambda item: (-item[1][1], -item[1][0]))
    return [
        [platform, author, str(int(t[0])), money(t[1]), f"{int(t[2])} / 200", f"{int(t[3])} / 60"]
        for (platform, author), t in ranked
    ]


async def test_sign_in_read_forget_and_sign_out_in_a_real_browser(
    browser: webdriver.Chrome, dashboard: Dashboard
) -> None:
    base, now, seeds = dashboard.base_url, dashboard.now, dashboard.seeds
    seen = await asyncio.to_thread(read_the_page, browser, base)
    assert seen["refused"] == {"message": words.WRONG_TOKEN, "people": False}

    shown = [s for s in seeds if in_window(s, now)]
    images: dict[str, float] = defaultdict(float)
    cost: dict[str, float] = defaultdict(float)
    for s in shown:
        images[label(s.at)] += s.images
        cost[label(s.at)] += s.cost
    assert seen["images"] == images
    assert seen["cost"] == pytest.approx(cost)
    newest_first = sorted(images, key=lambda day: -max(s.at for s in shown if label(s.at) == day))
    assert seen["days"] == [[day, str(int(images[day])), money(cost[day])] for day in newest_first]
    assert seen["people"] == expected_people(seeds, now)
    assert seen["zone"] == words.TIMES_IN.format(zone=ZONE)
    thumbnails = seen["thumbnails"]
    assert isinstance(thumbnails, list) and sorted(thumbnails) == [192, 192]  # both pictures loaded
    assert await asyncio.to_thread(lambda: SCREENSHOT.stat().st_size) > 10_000

    picture = seeds[0].picture
    assert picture is not None
    said = await asyncio.to_thread(forget_from_the_page, browser, "discord:g1:c1:1200")
    assert said == words.forgotten(1)
    store = dashboard.core.store
    assert await store.conversation(seeds[0].key) is None
    assert await store.load_blobs([picture.sha256]) == {}
    on_disk = await asyncio.to_thread(database_bytes, store.path)
    middle = len(picture.data) // 2
    assert picture.data[middle : middle + 64] not in on_disk
    assert await store.conversation(seeds[1].key) is not None  # only that one

    message, form_again, data_again = await asyncio.to_thread(sign_out, browser, base)
    assert (message, form_again, data_again) == (words.SIGNED_OUT, True, False)

    urls = await asyncio.to_thread(requests_made, browser)
    assert any(url.startswith(f"{base}/admin/image/") for url in urls)
    assert f"{base}/admin/admin.css" in urls
    assert [u for u in urls if not u.startswith("http://127.0.0.1:")] == []
