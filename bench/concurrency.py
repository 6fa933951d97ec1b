"""Concurrency: many conversations started at once against a fixed model latency."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot, StallMonitor, conversation

PROMPT = "a red bicycle at dawn, watercolor"


@dataclass(frozen=True, slots=True)
class ConcurrencyResult:
    conversations: int
    latency_s: float
    wall_s: float
    ratio: float
    max_stall_ms: float


async def measure_concurrency(
    workdir: Path, *, conversations: int, latency_s: float, noisy: bool
) -> ConcurrencyResult:
    """Start ``conversations`` first turns at the same instant; wall time until every reply is
    handed over, divided by the model latency, and the worst event-loop stall meanwhile.

    Every conversation sends the same prompt so the fake renders one image (its cache) and its
    own CPU stays out of the way; the bot still receives, decodes, hashes and stores one
    real-size image per conversation.
    """
    async with (
        FakeGeminiProcess(latency_s=latency_s, noisy=noisy) as fake,
        Bot(
            fake.base_url,
            workdir / f"concurrency-{'large' if noisy else 'small'}.sqlite3",
            # The operator's cap on Gemini calls in flight (32 by default) would turn this into
            # ceil(n / 32) model latencies by design; lift it to measure the bot itself.
            {"MAX_CONCURRENT_GENERATIONS": str(conversations)},
        ) as bot,
    ):
        # One warm-up turn: the fake renders and caches the image, the SDK opens its session.
        await bot.turn(conversation("warm-up"), PROMPT)
        keys = [conversation(f"live-{n}") for n in range(conversations)]
        async with StallMonitor() as stalls:
            started = time.perf_counter()
            await asyncio.gather(*(bot.turn(key, PROMPT) for key in keys))
            wall = time.perf_counter() - started
    return ConcurrencyResult(conversations, latency_s, wall, wall / latency_s, stalls.max_stall_s * 1000)
