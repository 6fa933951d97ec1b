"""Memory: RSS of a bot process holding 10,000 stored conversations after serving 1,000 turns.

Run by the suite as its own process (``python -m bench.memory``), so nothing the other
benchmarks allocated counts; it prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import io
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from bench.harness import Bot, conversation
from bot.images.heap import QUIET_S
from bot.vocabulary import Usage
from storage.content import Blob, ContentRecord, image_part, user_record
from storage.protocol import NewTurn

MEMORY_LIMIT_S = 900.0


def signature(model: str) -> str:
    """A thought signature as the fake Gemini makes them for ``model`` (its prefix, then the
    model's tag: Gemini 3 models refuse another model's signatures)."""
    tag = hashlib.sha256(model.encode()).digest()[:8]
    return base64.b64encode(b"\xfb\xff\xbf" + tag + bytes(37)).decode()


def rss_mb() -> float:
    """Resident set size now (VmRSS), in MiB; the peak on systems without /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def small_png(n: int) -> bytes:
    """A distinct 32x32 PNG per seeded conversation (stored once each, like real answers)."""
    digest = hashlib.sha256(str(n).encode()).digest()
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (digest[0], digest[1], digest[2])).save(buf, "PNG")
    return buf.getvalue()


def model_record(blob: Blob, model: str) -> ContentRecord:
    """A seeded thread's answer as a real one is stored: a thought-signed text part and one image."""
    sig = signature(model)
    return {
        "role": "model",
        "parts": [
            {"text": "Here is your image.", "thought_signature": sig},
            {**image_part(blob.sha256, blob.mime_type), "thought_signature": sig},
        ],
    }


async def seed(bot: Bot, conversations: int) -> None:
    """Store ``conversations`` one-turn threads straight through the store (no model calls)."""
    usage = Usage(prompt_tokens=20, output_tokens=1290, total_tokens=1310, images_generated=1)
    for n in range(conversations):
        blob = Blob("image/png", small_png(n))
        await bot.store.append_turn(
            NewTurn(
                key=conversation(f"seeded-{n}"),
                parent_id=None,
                user_content=user_record(f"seeded prompt {n}", []),
                model_content=model_record(blob, bot.config.gemini.model),
                model=bot.config.gemini.model,
                author_id=f"user-{n % 50}",
                usage=usage,
                blobs=(blob,),
            ),
            expected_head=None,
        )


async def serve(bot: Bot, turns: int, threads: int, parallel: int, prompts: Sequence[str]) -> None:
    """``turns`` model turns spread over the first ``threads`` seeded conversations, ``parallel``
    conversations at a time (turns within one conversation run in order, as the bot does)."""
    per_thread, extra = divmod(turns, threads)
    gate = asyncio.Semaphore(parallel)

    async def thread(index: int) -> None:
        async with gate:
            key = conversation(f"seeded-{index}")
            for t in range(per_thread + (index < extra)):
                await bot.turn(key, prompts[(index + t) % len(prompts)])

    await asyncio.gather(*(thread(i) for i in range(threads)))


async def run(base_url: str, conversations: int, turns: int, parallel: int) -> dict[str, float]:
    prompts = [f"a city street in style {n}" for n in range(8)]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        async with Bot(base_url, Path(tmp) / "memory.sqlite3") as bot:
            started_mb = rss_mb()
            t0 = time.perf_counter()
            await seed(bot, conversations)
            seeded_s = time.perf_counter() - t0
            after_seed_mb = rss_mb()
            t0 = time.perf_counter()
            await serve(bot, turns, min(conversations, max(1, turns // 10)), parallel, prompts)
            served_s = time.perf_counter() - t0
            # As an idle bot sits after its last turn: past the quiet spell that trims the heap.
            await asyncio.sleep(QUIET_S + 0.5)
            return {
                "rss_mb": rss_mb(),
                "peak_mb": peak_rss_mb(),
                "start_mb": started_mb,
                "after_seed_mb": after_seed_mb,
                "seed_s": seeded_s,
                "serve_s": served_s,
            }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True, help="the fake Gemini server")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=1_000)
    parser.add_argument("--parallel", type=int, default=10)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.base_url, args.conversations, args.turns, args.parallel))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
