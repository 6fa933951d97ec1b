"""Overhead per turn: inbound message to reply handed over, minus the model's time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot, conversation, median, percentile

HISTORY_TURNS = 10


@dataclass(frozen=True, slots=True)
class OverheadResult:
    samples_ms: tuple[float, ...]
    median_ms: float
    p99_ms: float
    model_median_ms: float


async def measure_overhead(workdir: Path, *, samples: int, latency_s: float, noisy: bool) -> OverheadResult:
    """Build a 10-turn thread, then time ``samples`` more turns, each continuing from turn 10.

    Continuing from the 10th turn (what replying to that image does) gives every sample exactly
    ten turns of history. Overhead = wall time of ``handle_turn`` up to ``sink.send`` minus the
    fake's own time on that request (measured inside the fake, latency included).
    """
    async with (
        FakeGeminiProcess(latency_s=latency_s, noisy=noisy) as fake,
        Bot(fake.base_url, workdir / "overhead.sqlite3") as bot,
    ):
        key = conversation("overhead")
        tenth = None
        for n in range(HISTORY_TURNS):
            tenth = (await bot.turn(key, f"a lighthouse at dusk, variation {n}")).result.turn_id
        # Two unmeasured turns warm the connection pool and the SDK's first-call paths.
        for n in range(2):
            await bot.turn(key, f"warm-up {n}", continue_from=tenth)
        before = len(await fake.requests())
        walls = [
            (await bot.turn(key, f"now in the style of print {n}", continue_from=tenth)).wall_s
            for n in range(samples)
        ]
        served = (await fake.requests())[before:]
    if len(served) != samples:
        raise RuntimeError(f"expected {samples} model calls, the fake saw {len(served)}")
    overheads = [(wall - req.handling_s) * 1000 for wall, req in zip(walls, served, strict=True)]
    return OverheadResult(
        samples_ms=tuple(overheads),
        median_ms=median(overheads),
        p99_ms=percentile(overheads, 99),
        model_median_ms=median([r.handling_s * 1000 for r in served]),
    )
