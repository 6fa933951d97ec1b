"""Cost growth: bytes and input tokens sent to Gemini as one thread grows, budget vs unbounded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot, conversation

CHECKPOINTS = (2, 5, 10, 20)
UNBOUNDED = "all"
DEFAULT_BUDGET = ""  # unset: the bot's default context budget (3 images)


@dataclass(frozen=True, slots=True)
class ThreadCost:
    """What the fake received on each turn of one thread (index 0 = turn 1)."""

    budget: str
    request_bytes: tuple[int, ...]
    input_tokens: tuple[int, ...]
    images_sent: tuple[int, ...]
    db_path: Path

    def at(self, turn: int) -> tuple[int, int]:
        return self.request_bytes[turn - 1], self.input_tokens[turn - 1]


def prompt(turn: int) -> str:
    """One refinement per turn; distinct text, so every answer is a distinct image."""
    return f"turn {turn}: the same harbour, now with {turn} boats and warmer light"


async def run_thread(fake: FakeGeminiProcess, db_path: Path, *, turns: int, budget: str) -> ThreadCost:
    """``turns`` sequential turns in one conversation with ``CONTEXT_MAX_IMAGES=budget``."""
    env = {"CONTEXT_MAX_IMAGES": budget} if budget else {}
    before = len(await fake.requests())
    async with Bot(fake.base_url, db_path, env) as bot:
        key = conversation(f"cost-{budget or 'default'}")
        for n in range(1, turns + 1):
            await bot.turn(key, prompt(n))
    served = (await fake.requests())[before:]
    if len(served) != turns or any(r.status != 200 or r.prompt_tokens is None for r in served):
        raise RuntimeError(f"the fake did not answer all {turns} cost turns normally")
    return ThreadCost(
        budget=budget or "3 (default)",
        request_bytes=tuple(r.body_bytes for r in served),
        input_tokens=tuple(int(r.prompt_tokens or 0) for r in served),
        images_sent=tuple(r.images for r in served),
        db_path=db_path,
    )


async def measure_cost(workdir: Path, *, turns: int, noisy: bool) -> tuple[ThreadCost, ThreadCost]:
    """The same thread twice: with the default context budget, then re-sending everything."""
    async with FakeGeminiProcess(noisy=noisy) as fake:
        bounded = await run_thread(fake, workdir / "cost-budget.sqlite3", turns=turns, budget=DEFAULT_BUDGET)
        unbounded = await run_thread(fake, workdir / "cost-all.sqlite3", turns=turns, budget=UNBOUNDED)
    return bounded, unbounded
