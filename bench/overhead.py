"""Overhead per turn, as a ratio: the bot's own time over a bare SDK call's own time, same request."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.bare_call import BareCall, sent_request
from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot, conversation, median, percentile

HISTORY_TURNS = 10
PROMPT = "now in the style of a woodblock print"


@dataclass(frozen=True, slots=True)
class OverheadResult:
    samples_ms: tuple[float, ...]
    bare_samples_ms: tuple[float, ...]
    median_ms: float
    p99_ms: float
    bare_median_ms: float
    model_median_ms: float
    request_bytes: int

    @property
    def ratio(self) -> float:
        """The median of each bot turn's time over the bare call right after it.

        These shared machines change speed by up to 2x from one moment to the next, and on a
        2-core VM the samples of either series fall into a fast and a slow group about 10 ms
        apart; the median of a series then jumps between the groups with how many samples each
        caught, and the ratio of two such medians went from 1.25 to 1.55 between runs of the
        same code. A turn and the call after it see the same machine, so their ratio does not
        depend on which group they fell in."""
        pairs = zip(self.samples_ms, self.bare_samples_ms, strict=True)
        return median([bot / bare for bot, bare in pairs if bare > 0])

    @property
    def ratio_of_medians(self) -> float:
        return self.median_ms / self.bare_median_ms


async def measure_overhead(
    database: Path | str, *, samples: int, latency_s: float, noisy: bool
) -> OverheadResult:
    """Build a 10-turn thread, then alternate ``samples`` bot turns with ``samples`` bare calls.

    Every bot turn sends the same prompt continuing from turn 10 (what replying to that image
    does), so every one sends the same request: ten turns of history. The bare call replays that
    request through a plain google-genai client. Each figure is wall time minus the fake's own
    time on that request (measured inside the fake, latency included); alternating the two
    means both see the same machine.
    """
    async with (
        FakeGeminiProcess(latency_s=latency_s, noisy=noisy) as fake,
        Bot(fake.base_url, database) as bot,
    ):
        assert bot.engine is not None
        key = conversation("overhead")
        tenth = None
        for n in range(HISTORY_TURNS):
            tenth = (await bot.turn(key, f"a lighthouse at dusk, variation {n}")).result.turn_id
        first = len(await fake.requests())
        # Two unmeasured turns warm the connection pool and the SDK's first-call paths.
        for _ in range(2):
            await bot.turn(key, PROMPT, continue_from=tenth)
        bot_sent = await sent_request(fake.base_url, first)
        bare = BareCall(fake.base_url, bot.engine.model, bot_sent)
        try:
            for _ in range(2):
                await bare.call_s()
            start = len(await fake.requests())
            bot_walls, bare_walls = [], []
            for _ in range(samples):
                bot_walls.append((await bot.turn(key, PROMPT, continue_from=tenth)).wall_s)
                bare_walls.append(await bare.call_s())
        finally:
            await bare.aclose()
        served = (await fake.requests())[start:]
        await _same_requests(fake.base_url, bot_sent.sha256, start, start + len(served) - 1)
    if len(served) != 2 * samples:
        raise RuntimeError(f"expected {2 * samples} model calls, the fake saw {len(served)}")
    bot_ms = [(w - r.handling_s) * 1000 for w, r in zip(bot_walls, served[0::2], strict=True)]
    bare_ms = [(w - r.handling_s) * 1000 for w, r in zip(bare_walls, served[1::2], strict=True)]
    return OverheadResult(
        samples_ms=tuple(bot_ms),
        bare_samples_ms=tuple(bare_ms),
        median_ms=median(bot_ms),
        p99_ms=percentile(bot_ms, 99),
        bare_median_ms=median(bare_ms),
        model_median_ms=median([r.handling_s * 1000 for r in served]),
        request_bytes=served[0].body_bytes,
    )


async def _same_requests(base_url: str, expected: str, *indexes: int) -> None:
    """The first timed bot turn and the last bare call sent the very request replayed."""
    for index in indexes:
        if (await sent_request(base_url, index)).sha256 != expected:
            raise RuntimeError(
                f"request {index} differs from the bot's: the bare call is not a like-for-like"
            )
