"""The region editor in a real browser: Debian's headless Chromium, driven through chromium-driver
(Selenium), against the editor served as a deployment serves it. Paint with the mouse and with
touch on a phone-sized screen, type, submit; check what reached the port."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from bot.editing.records import RegionEdit
from bot.images.canvas import binary_mask
from bot.text import editor_words
from tests.auxil.editor import KEY, WHERE, Editor, chromium_paths, picture, serving_editor

# Flags that keep Chromium off the network and quiet: tests never leave this machine.
QUIET = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--metrics-recording-only",
    "--window-size=1100,900",
)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in QUIET:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def editor(tmp_path: Path) -> AsyncIterator[Editor]:
    async with serving_editor(tmp_path) as serving:
        yield serving


def wait_for(condition: Callable[[], Any], limit_s: float = 15.0) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the page never got there")


def open_editor(driver: webdriver.Chrome, url: str) -> dict[str, float]:
    """Open the link and wait for the image; the paint layer's box on screen and its size."""
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.getElementById('paint').width") > 0)
    box: dict[str, float] = driver.execute_script(
        "const p = document.getElementById('paint'); const r = p.getBoundingClientRect();"
        "return {left: r.left, top: r.top, width: r.width, height: r.height, w: p.width, h: p.height};"
    )
    return box


def painted_mask(edit: RegionEdit) -> Image.Image:
    with Image.open(io.BytesIO(edit.mask_png)) as mask:
        return binary_mask(mask, (640, 480))


def paint_with_the_mouse_and_submit(driver: webdriver.Chrome, url: str, shot: Path) -> dict[str, float]:
    box = open_editor(driver, url)
    canvas = driver.find_element(By.ID, "paint")
    # A stroke across the upper middle, from the centre's offsets (Selenium's origin).
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(canvas, -120, -80).click_and_hold()
    for _ in range(12):
        actions.move_by_offset(20, 0)
    actions.release().perform()
    driver.find_element(By.ID, "instruction").send_keys("a hot air balloon")
    driver.save_screenshot(str(shot))
    driver.find_element(By.ID, "submit").click()
    wait_for(lambda: "on its way" in driver.find_element(By.ID, "status").text)
    return box


async def test_paint_with_the_mouse_type_and_submit(
    browser: webdriver.Chrome, editor: Editor, tmp_path: Path
) -> None:
    url = await editor.link(turn_id=31, person="U42")
    box = await asyncio.to_thread(paint_with_the_mouse_and_submit, browser, url, tmp_path / "editor.png")
    status = await asyncio.to_thread(lambda: browser.find_element(By.ID, "status").text)
    assert status == editor_words.edit_on_its_way(WHERE)
    [edit] = editor.edits.submitted
    assert (edit.grant.key, edit.grant.turn_id, edit.grant.person) == (KEY, 31, "U42")
    assert edit.instruction == "a hot air balloon"
    mask = painted_mask(edit)
    scale = box["w"] / box["width"]
    centre_x, centre_y = box["w"] / 2, box["h"] / 2
    # Painted where the mouse went (y = centre - 80 CSS px, x from -120 to +120), nowhere else.
    for dx in (-120, -60, 0, 60, 120):
        assert mask.getpixel((round(centre_x + dx * scale), round(centre_y - 80 * scale))) == 255, dx
    for far in ((10, 470), (630, 470), (round(centre_x), round(centre_y + 100 * scale))):
        assert mask.getpixel(far) == 0, far
    assert (tmp_path / "editor.png").stat().st_size > 10_000
    # The page shows the result when the port has it.
    editor.edits.results[edit.grant.link_id] = picture(320, 240)
    shown = await asyncio.to_thread(
        wait_for,
        lambda: browser.execute_script(
            "const r = document.getElementById('result'); const i = document.getElementById('result-image');"
            "return !r.hidden && i.complete && i.naturalWidth;"
        ),
    )
    assert shown == 320


def paint_with_a_finger(driver: webdriver.Chrome, url: str, shot: Path) -> str:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
    )
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    box = open_editor(driver, url)
    y = box["top"] + box["height"] * 0.25
    xs = [box["left"] + box["width"] * f for f in (0.2, 0.35, 0.5, 0.65, 0.8)]
    touch = "Input.dispatchTouchEvent"
    driver.execute_cdp_cmd(touch, {"type": "touchStart", "touchPoints": [{"x": xs[0], "y": y}]})
    for x in xs[1:]:
        driver.execute_cdp_cmd(touch, {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    driver.execute_cdp_cmd(touch, {"type": "touchEnd", "touchPoints": []})
    pointer = str(driver.execute_script("return document.getElementById('paint').dataset.pointerType"))
    driver.find_element(By.ID, "instruction").send_keys("a flock of birds")
    driver.save_screenshot(str(shot))
    driver.find_element(By.ID, "submit").click()
    wait_for(lambda: "on its way" in driver.find_element(By.ID, "status").text)
    return pointer


async def test_a_phone_sized_screen_paints_with_touch(
    browser: webdriver.Chrome, editor: Editor, tmp_path: Path
) -> None:
    url = await editor.link()
    pointer = await asyncio.to_thread(paint_with_a_finger, browser, url, tmp_path / "phone.png")
    assert pointer == "touch"
    [edit] = editor.edits.submitted
    mask = painted_mask(edit)
    for fraction in (0.2, 0.5, 0.8):
        assert mask.getpixel((round(640 * fraction), 120)) == 255, fraction
    assert mask.getpixel((320, 400)) == 0


def refused_page(driver: webdriver.Chrome, url: str) -> tuple[str, int]:
    driver.get(url)
    return driver.find_element(By.TAG_NAME, "body").text, len(driver.find_elements(By.ID, "paint"))


async def test_a_bad_link_shows_one_sentence_and_no_editor(browser: webdriver.Chrome, editor: Editor) -> None:
    url = await editor.link()
    altered = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    text, editors = await asyncio.to_thread(refused_page, browser, altered)
    assert (text, editors) == (editor_words.EDIT_LINK_REFUSED["invalid"], 0)
    assert editor.edits.submitted == []


def nothing_painted(driver: webdriver.Chrome, url: str) -> str:
    open_editor(driver, url)
    driver.find_element(By.ID, "instruction").send_keys("anything")
    driver.find_element(By.ID, "submit").click()
    return str(wait_for(lambda: driver.find_element(By.ID, "status").text))


async def test_submitting_before_painting_says_to_paint_first(
    browser: webdriver.Chrome, editor: Editor
) -> None:
    said = await asyncio.to_thread(nothing_painted, browser, await editor.link())
    assert said == editor_words.EDIT_NOTHING_PAINTED
    assert editor.edits.submitted == []
