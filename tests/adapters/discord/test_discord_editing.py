"""Zoom out, pan and the region editor on Discord, end to end: the real discord.py client against
the fake gateway and REST, the editor served on PORT as the runtime serves it (PUBLIC_URL), and a
real headless Chromium from the Edit region button's ephemeral link to the result in the thread."""

from __future__ import annotations

import asyncio
import io
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from selenium import webdriver

from bot.health import Health, HealthServer
from bot.text import messages
from tests.auxil.discord_bot import Bot, ephemeral_answer, start_bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import FakeDiscord, FakeMessage
from tests.auxil.fake_gemini import FakeGemini
from tests.bot.editing.test_editor_browser import browser as browser
from tests.bot.editing.test_editor_browser import paint_with_the_mouse_and_submit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def bot(fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    port = _free_port()
    env = {"PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    running = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3", env)
    editor = running.core.editor
    assert editor is not None
    # What the runtime does with PUBLIC_URL: the editor on PORT, edits posted in their thread.
    editor.desk.serve(*running.adapter.thread_sinks())
    server = HealthServer(Health(running.core.store, []), port, routes=[editor.site.install])
    await server.start()
    yield running
    await server.close()
    await running.stop()


def _image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def changed(a: Image.Image, b: Image.Image) -> int:
    diff = ImageChops.difference(a, b).convert("L")
    return diff.width * diff.height - diff.histogram()[0]


async def _first(bot: Bot) -> tuple[int, FakeMessage, Image.Image]:
    _, thread_id = await bot.mention("a red bicycle at dawn")
    [reply] = await bot.replies(thread_id, 1)
    return thread_id, reply, _image(reply.files[0].data)


async def test_zoom_out_1_5x_from_the_button(bot: Bot, fake_gemini: FakeGemini) -> None:
    thread_id, reply, original = await _first(bot)
    assert "nb:frame:edit::1" in reply.custom_ids()
    await bot.fake.click(reply, "nb:frame:zoom:1.5:1")
    zoomed = (await bot.replies(thread_id, 2))[1]
    sent = _image(fake_gemini.requests[-1].images[-1][0].data)
    assert sent.size == (round(original.width * 1.5), round(original.height * 1.5))
    left, top = (sent.width - original.width) // 2, (sent.height - original.height) // 2
    box = (left, top, left + original.width, top + original.height)
    result = _image(zoomed.files[0].data)
    assert changed(sent.crop(box), original) == 0 and changed(result.crop(box), original) == 0


async def test_edit_region_from_the_button_through_the_browser_to_the_thread(
    bot: Bot, fake_gemini: FakeGemini, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    thread_id, reply, original = await _first(bot)
    click = await bot.fake.click(reply, "nb:frame:edit::1")
    answer = await ephemeral_answer(bot.fake, click.token)
    found = re.search(r"(http://\S+/edit/[A-Za-z0-9_.-]+)", answer.content)
    assert found is not None and answer.content.startswith(messages.EDITOR_LINK.split("{")[0])
    assert len(fake_gemini.requests) == 1  # the link only: no turn
    await asyncio.to_thread(paint_with_the_mouse_and_submit, browser, found.group(1), tmp_path / "e.png")
    edited = await bot.fake.wait_until(lambda: [m for m in bot.fake.bot_messages(thread_id) if m.files][1:])
    request = fake_gemini.requests[-1]
    assert "a hot air balloon" in request.prompt
    region = _image(request.images[-1][1].data).convert("L")
    result = _image(edited[0].files[0].data)
    black = Image.new("RGB", original.size)
    assert changed(Image.composite(black, result, region), Image.composite(black, original, region)) == 0
    assert changed(result, original) > 0
