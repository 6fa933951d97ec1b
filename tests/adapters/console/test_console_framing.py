"""/zoom, /pan and /edit in the console, as a person runs it (`python -m bot` in a terminal): the
images printed, the bad arguments' sentences, and with PUBLIC_URL the editor on PORT (the
runtime's wiring), its link printed and working, an altered one refused."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import aiohttp
from PIL import Image, ImageChops

from bot.text import messages
from tests.adapters.console.test_console import Pty, console_env, run_piped, saved_images
from tests.auxil.fake_gemini import FakeGemini


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_zoom_and_pan_commands_and_their_bad_arguments(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    out = await run_piped(
        fake_gemini,
        tmp_path,
        ["/zoom 2", "a red bicycle", "/zoom 2", "/pan left", "/zoom 3", "/pan diagonal", "/edit"],
    )
    lines = out.splitlines()
    assert f"! {messages.NO_IMAGE_YET}" in lines
    assert f"! {messages.ZOOM_WHICH}" in lines
    assert f"! {messages.PAN_WHICH}" in lines
    assert f"! {messages.EDITOR_OFF}" in lines
    original, zoomed, panned = saved_images(out, tmp_path)
    assert len(fake_gemini.requests) == 3
    with Image.open(original) as a, Image.open(zoomed) as b, Image.open(panned) as c:
        first, second = a.convert("RGB"), b.convert("RGB")
        assert second.size == (first.width * 2, first.height * 2)
        box = (first.width // 2, first.height // 2, first.width * 3 // 2, first.height * 3 // 2)
        diff = ImageChops.difference(second.crop(box), first).convert("L")
        assert diff.histogram()[0] == first.width * first.height  # 0 pixels changed
        assert c.width > second.width  # panned the zoomed image, the conversation's latest


async def test_edit_prints_a_working_link_with_public_url(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    port = _free_port()
    env = console_env(fake_gemini, {"PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}"})
    pty = Pty(tmp_path, env)
    await pty.say("a red bicycle")
    await pty.expect(r"\[image\] (\S+\.png)")
    await pty.say("/edit")
    await pty.expect(r"(http://127\.0\.0\.1:\d+/edit/[A-Za-z0-9_.-]+)")
    url = pty.child.match.group(1)
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as page:
            assert page.status == 200
            assert "Content-Security-Policy" in page.headers
        async with session.get(url[:-1] + ("A" if url[-1] != "A" else "B")) as refused:
            assert refused.status == 403
    await pty.say("/quit")
    assert await pty.wait_exit() == 0
    assert len(fake_gemini.requests) == 1
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/edit/\S+", url)
