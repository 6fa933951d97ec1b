"""Ordering under load: back-to-back messages in many threads delivered at once, shuffled."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.harness import Bot
from bench.load import OrderCheck, check_order, deliver_all, deliveries
from bench.workers import workers

LIMIT_S = 600.0


async def order_in_process(database: Path | str, *, threads: int, messages: int, seed: int) -> OrderCheck:
    """Every message to one bot (SQLite: the deployed shape, one process)."""
    async with FakeGeminiProcess(noisy=False) as fake, Bot(fake.base_url, database) as bot:
        items = deliveries(threads, messages, time.time_ns() // 1000, random.Random(seed))
        statuses = await deliver_all(bot, items)
        prompts = [r.prompt for r in await fake.requests()]
    return _judged(prompts, threads, messages, statuses)


async def order_across_processes(
    database: str,
    log: Path,
    *,
    processes: int,
    threads: int,
    messages: int,
    seed: int,
    env: dict[str, str] | None = None,
) -> OrderCheck:
    """Each message to one of ``processes`` bot processes on one database, picked at random (a
    load balancer), every process delivering its share at the same moment."""
    rng = random.Random(seed)
    async with (
        FakeGeminiProcess(noisy=False) as fake,
        workers(processes, fake.base_url, database, env or {}, log) as procs,
    ):
        items = deliveries(threads, messages, time.time_ns() // 1000, rng)
        shares: list[list[list[int]]] = [[] for _ in procs]
        for d in items:
            shares[rng.randrange(processes)].append([d.thread, d.index, d.posted_us])
        results = await asyncio.gather(
            *(w.run({"deliver": share}, LIMIT_S) for w, share in zip(procs, shares, strict=True))
        )
        prompts = [r.prompt for r in await fake.requests()]
    statuses: Counter[str] = Counter()
    for result in results:
        statuses.update(result["statuses"])
    return _judged(prompts, threads, messages, dict(statuses))


def _judged(prompts: list[str], threads: int, messages: int, statuses: dict[str, int]) -> OrderCheck:
    check = check_order(prompts, threads, messages)
    if statuses.get("answered", 0) != threads * messages:
        raise RuntimeError(f"not every message was answered: {statuses}")
    return check
