"""Zoom out, pan and the region editor on Slack, end to end: the real Bolt app in HTTP mode (the
editor served on its events server, as with PUBLIC_URL), the fake Slack and Gemini, and a real
headless Chromium from the Edit region button's private link to the result in the thread."""

from __future__ import annotations

import asyncio
import io
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, ImageChops
from selenium import webdriver

from adapters.slack.adapter import SlackAdapter
from bot.images import canvas
from bot.text import editor_words
from tests.adapters.slack.test_slack import controls
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender
from tests.auxil.slack_bot import CHANNEL, Bot, slack_env
from tests.bot.editing.test_editor_browser import browser as browser
from tests.bot.editing.test_editor_browser import paint_with_the_mouse_and_submit, wait_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def bot(fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Bot]:
    port = _free_port()
    env = {**slack_env(slack), "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    assert core.editor is not None
    bot = await _started(Bot(core, slack, socket=False), core)
    yield bot
    await bot.stop()
    await core.stop()


async def _started(running: Bot, core: Core) -> Bot:
    """The adapter as the runtime starts it with PUBLIC_URL: the editor's routes on the events
    server, region edits posted in the thread of their image."""
    assert core.editor is not None
    adapter = SlackAdapter(core.config, core.service, mention_grace_s=running.grace_s, share_wait_s=5.0)
    adapter.http_installs = [core.editor.site.install]
    core.editor.desk.serve(*adapter.thread_sinks())
    running.adapter = adapter
    running.task = asyncio.create_task(adapter.run())
    await asyncio.wait_for(adapter.ready.wait(), 15)
    running.sender = await SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events").__aenter__()
    return running


async def click(bot: Bot, message: dict[str, Any], action_id: str) -> None:
    assert bot.sender is not None
    await bot.sender.action(bot.slack.block_actions(message, action_id))


def _image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def changed(a: Image.Image, b: Image.Image) -> int:
    diff = ImageChops.difference(a, b).convert("L")
    return diff.width * diff.height - diff.histogram()[0]


def _uploaded(bot: Bot, message: dict[str, Any]) -> Image.Image:
    return _image(bot.slack.uploads[message["files"][0]["id"]].data)


async def _first_image(bot: Bot) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    message = await bot.mention("a red bicycle at dawn")
    posted = await bot.replies(message["ts"], 2)
    return message, posted


async def test_every_image_gets_zoom_pan_and_edit_region_buttons(bot: Bot) -> None:
    _, posted = await _first_image(bot)
    assert [a for a in controls(posted[1]) if a.startswith("nb_frame_")] == [
        "nb_frame_zoom_1.5",
        "nb_frame_zoom_2",
        "nb_frame_pan_left",
        "nb_frame_pan_right",
        "nb_frame_pan_up",
        "nb_frame_pan_down",
        "nb_frame_edit_",
    ]


async def test_zoom_out_2x_from_the_button_keeps_the_original_in_the_middle(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    message, posted = await _first_image(bot)
    original = _uploaded(bot, posted[0])
    await click(bot, posted[1], "nb_frame_zoom_2")
    after = await bot.replies(message["ts"], 4)
    sent = _image(fake_gemini.requests[-1].images[-1][0].data)
    assert sent.size == (original.width * 2, original.height * 2)
    box = (original.width // 2, original.height // 2, original.width * 3 // 2, original.height * 3 // 2)
    assert changed(sent.crop(box), original) == 0
    zoomed = _uploaded(bot, after[2])
    assert zoomed.size == sent.size and changed(zoomed.crop(box), original) == 0
    # Regenerate on the zoom zooms again over the same original.
    await click(bot, after[3], "nb_regenerate")
    again = await bot.replies(message["ts"], 6)
    assert len(fake_gemini.requests) == 3
    assert changed(_uploaded(bot, again[4]).crop(box), original) == 0


async def test_pan_left_from_the_button(bot: Bot, fake_gemini: FakeGemini) -> None:
    message, posted = await _first_image(bot)
    original = _uploaded(bot, posted[0])
    await click(bot, posted[1], "nb_frame_pan_left")
    after = await bot.replies(message["ts"], 4)
    expected = canvas.pan(original, canvas.Pan.LEFT, bot.core.service.capabilities.aspect_ratios)
    b = expected.placement
    box = (b.left, b.top, b.left + b.width, b.top + b.height)
    panned = _uploaded(bot, after[2])
    assert panned.size == expected.request.size and b.left > 0
    assert changed(panned.crop(box), original) == 0


def _link(bot: Bot, thread_ts: str) -> str:
    [private] = bot.slack.ephemerals_in(CHANNEL, thread_ts)
    found = re.search(r"(http://\S+/edit/[A-Za-z0-9_.-]+)", str(private["text"]))
    assert found is not None, private
    return found.group(1)


async def test_edit_region_from_a_button_click_through_the_browser_to_the_thread(
    bot: Bot, fake_gemini: FakeGemini, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    message, posted = await _first_image(bot)
    original = _uploaded(bot, posted[0])
    await click(bot, posted[1], "nb_frame_edit_")
    url = await bot.slack.wait_for(
        lambda: bot.slack.ephemerals_in(CHANNEL, message["ts"]) and _link(bot, message["ts"])
    )
    assert len(fake_gemini.requests) == 1  # a link, no turn yet
    await asyncio.to_thread(paint_with_the_mouse_and_submit, browser, url, tmp_path / "editor.png")
    after = await bot.replies(message["ts"], 4)
    request = fake_gemini.requests[-1]
    assert "a hot air balloon" in request.prompt
    shown = request.images[-1]
    assert [_image(i.data).size for i in shown] == [original.size] * 3
    assert changed(_image(shown[0].data), original) == 0
    region = _image(shown[1].data).convert("L")
    edited = _uploaded(bot, after[2])
    black = Image.new("RGB", original.size)
    outside = changed(Image.composite(black, edited, region), Image.composite(black, original, region))
    assert outside == 0  # pixels changed outside the painted region: 0
    assert changed(edited, original) > 0
    # The page shows the result once it is in the thread.
    width = await asyncio.to_thread(
        wait_for,
        lambda: browser.execute_script(
            "const r = document.getElementById('result'); const i = document.getElementById('result-image');"
            "return !r.hidden && i.complete && i.naturalWidth;"
        ),
    )
    assert width == original.width
    await asyncio.to_thread(browser.execute_script, "document.getElementById('result').scrollIntoView()")
    await asyncio.to_thread(browser.save_screenshot, str(tmp_path / "result.png"))
    assert (tmp_path / "result.png").stat().st_size > 2_000
    # The link was used once: opening it again is refused, and no turn runs.
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 403
        assert editor_words.EDIT_LINK_REFUSED["used"] in await response.text()
    assert len(fake_gemini.requests) == 2


async def test_a_changed_or_foreign_link_gets_403_and_no_turn(bot: Bot, fake_gemini: FakeGemini) -> None:
    message, posted = await _first_image(bot)
    await click(bot, posted[1], "nb_frame_edit_")
    url = await bot.slack.wait_for(
        lambda: bot.slack.ephemerals_in(CHANNEL, message["ts"]) and _link(bot, message["ts"])
    )
    altered = url[:-1] + ("A" if url[-1] != "A" else "B")
    async with aiohttp.ClientSession() as session:
        for bad in (altered, url.replace("/edit/", "/edit/x")):
            async with session.get(bad) as response:
                assert response.status == 403
                assert editor_words.EDIT_LINK_REFUSED["invalid"] in await response.text()
            async with session.post(bad, data=b"x") as response:
                assert response.status == 403
    assert len(fake_gemini.requests) == 1
