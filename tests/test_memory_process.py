"""`python -m bot` under image bursts that used to take gigabytes: its peak memory stays under 1 GiB."""

from __future__ import annotations

import io
import random
import time
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from tests.auxil.fake_discord import FakeDiscord, FakeFile, FakeMessage
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import BotProcess

MIB = 1024 * 1024
PEAK_LIMIT = 1024 * MIB
BOMB_SIDE = 7000  # 49 megapixels: just under the 50-megapixel cap, so each one is decoded


@cache
def tiny_bomb_webp() -> bytes:
    """A lossless WebP of a few dozen bytes that decodes to 7000x7000 (147 MB of RGB)."""
    out = io.BytesIO()
    Image.new("RGB", (BOMB_SIDE, BOMB_SIDE), (0, 128, 0)).save(out, "WEBP", lossless=True, method=0)
    return out.getvalue()


@cache
def noise_png() -> bytes:
    """A valid PNG of random pixels, about 19 MB (noise does not compress), 2500x2500."""
    side = 2500
    pixels = random.Random(12).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


def peak_rss(pid: int) -> int:
    """VmHWM of a process: the most resident memory it ever had, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current resident size (Linux: "5" to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


async def _burst(fake: FakeDiscord, gemini: FakeGemini, files: list[list[FakeFile]]) -> float:
    """Post one mention per entry of ``files`` at once; the seconds until every one is answered
    with an image."""
    started = time.monotonic()
    sent: list[FakeMessage] = []
    for i, attached in enumerate(files):
        sent.append(await fake.post(fake.general_id, f"{fake.mention()} burst picture {i}", files=attached))

    def answered(message: FakeMessage) -> bool:
        return any(reply.files for reply in fake.bot_messages(message.id))

    def all_answered() -> bool:
        gemini.requests.clear()  # the fake keeps every request; the test process need not
        return all(answered(m) for m in sent)

    try:
        await fake.wait_until(all_answered, limit_s=300)
    except TimeoutError:
        unanswered = [[r.content for r in fake.bot_messages(m.id)] for m in sent if not answered(m)]
        raise AssertionError(f"no image for {len(unanswered)} of {len(sent)}: {unanswered[:3]}") from None
    return time.monotonic() - started


@pytest.mark.timeout(600)
async def test_image_bursts_keep_the_bot_under_one_gib(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_URL": fake.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "USER_IMAGES_PER_HOUR": "0",
        "USER_IMAGES_PER_DAY": "0",
    }
    bombs = [
        [FakeFile(f"bomb{i}-{j}.webp", tiny_bomb_webp(), "image/webp") for j in range(3)] for i in range(12)
    ]
    photos = [[FakeFile(f"photo{i}.png", noise_png(), "image/png")] for i in range(50)]
    bot = await BotProcess.start(tmp_path, env)
    try:
        await bot.wait_while_running(fake.wait_ready())
        pid = bot.proc.pid
        idle = peak_rss(pid)
        bomb_s = await _burst(fake, fake_gemini, bombs)
        bomb_peak = peak_rss(pid)
        reset_peak(pid)
        photo_s = await _burst(fake, fake_gemini, photos)
        photo_peak = peak_rss(pid)
        code = await bot.stop()
    finally:
        bot.ensure_dead()
    print(
        f"\nidle {idle / MIB:.0f} MiB; 12x3 WebP bombs: peak {bomb_peak / MIB:.0f} MiB in {bomb_s:.1f} s; "
        f"50x19 MB PNG: peak {photo_peak / MIB:.0f} MiB in {photo_s:.1f} s"
    )
    assert code == 0
    assert not bot.problems(["process-key", fake.token])
    assert bomb_peak < PEAK_LIMIT, f"{bomb_peak / MIB:.0f} MiB"
    assert photo_peak < PEAK_LIMIT, f"{photo_peak / MIB:.0f} MiB"
