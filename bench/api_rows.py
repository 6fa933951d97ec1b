"""Bytes sent and the bot's own time per turn on each Gemini API (GEMINI_API), same conversation.

Ten turns of one conversation: turn 1 brings two 4 MB photos, the others refine the answer.
On generateContent every turn re-sends the history window (the context budget keeps it at
about three images); on the Interactions API a later turn sends only its prompt and
``previous_interaction_id``.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot, bytes_ref, conversation
from bench.report import Report, Row
from bot.gemini.capabilities import APIS, GENERATE_CONTENT, INTERACTIONS

TURNS = 10
SHOWN = (1, 5, 10)
PHOTO_BYTES = 4 * 1024 * 1024


def photo(seed: int) -> bytes:
    """A PNG of noise that weighs about 4 MB (noise does not compress)."""
    from io import BytesIO

    from PIL import Image

    side = 1190
    raw = random.Random(seed).randbytes(side * side * 3)
    buf = BytesIO()
    Image.frombytes("RGB", (side, side), raw).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


async def measure_api(api: str, work: Path, noisy: bool) -> list[tuple[int, float]]:
    """(request bytes, the bot's own ms) of each turn of the conversation on ``api``."""
    photos = [bytes_ref(f"photo-{n}.png", photo(n)) for n in (1, 2)]
    async with (
        FakeGeminiProcess(noisy=noisy) as fake,
        Bot(fake.base_url, work / f"api-{api}.sqlite3", {"GEMINI_API": api}) as bot,
    ):
        key = conversation(f"api-{api}")
        walls = [(await bot.turn(key, "a harbour at dusk", *photos)).wall_s]
        for n in range(2, TURNS + 1):
            walls.append((await bot.turn(key, f"refinement {n}: warmer light")).wall_s)
        served = await fake.requests()
    if len(served) != TURNS:
        raise RuntimeError(f"expected {TURNS} model calls on {api}, the fake saw {len(served)}")
    return [(r.body_bytes, (w - r.handling_s) * 1000) for w, r in zip(walls, served, strict=True)]


async def api_rows(work: Path, noisy: bool, report: Report) -> None:
    figures = {api: await measure_api(api, work, noisy) for api in APIS}
    for api in APIS:
        for turn in SHOWN:
            sent, ms = figures[api][turn - 1]
            report.add(
                Row(f"api_{api}_bytes_{turn}", "9", f"{api}: request bytes, turn {turn}", sent, f"{sent:,} B")
            )
            report.add(
                Row(f"api_{api}_ms_{turn}", "9", f"{api}: bot's own time, turn {turn}", ms, f"{ms:.0f} ms")
            )
    later = figures[INTERACTIONS][TURNS - 1][0] / figures[GENERATE_CONTENT][TURNS - 1][0]
    report.add(
        Row(
            "api_bytes_ratio",
            "9",
            f"Turn {TURNS} request bytes, interactions / generate_content",
            later,
            f"{later:.5f}",
            target=0.05,
            target_shown="≤ 1/20",
        )
    )
