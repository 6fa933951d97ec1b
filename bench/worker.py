"""`python -m bench.worker`: one bot process for the multi-process benchmarks, driven over stdin.

Line 1 (JSON): base_url, database, env. The worker opens the store, engine and service as
``python -m bot`` does, prints ``READY``, then reads one job line (JSON) and prints ``RESULT``
and a JSON line: ``{"deliver": [[thread, index, posted_us], ...]}`` delivers those messages at
once; ``{"lanes": n, "until": epoch_s, "name": s}`` runs closed-loop lanes until then.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from pathlib import Path
from typing import Any

from bench.harness import Bot, production_logging
from bench.load import Delivery, deliver_all, run_lanes


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _job(bot: Bot, job: dict[str, Any]) -> dict[str, Any]:
    before = _cpu_s()
    if "deliver" in job:
        outcome: dict[str, Any] = {"statuses": await deliver_all(bot, [Delivery(*d) for d in job["deliver"]])}
    else:
        outcome = (await run_lanes(bot, int(job["lanes"]), float(job["until"]), job["name"])).as_dict()
    return {**outcome, "cpu_s": _cpu_s() - before}


async def _main() -> int:
    setup = json.loads(sys.stdin.readline())
    log = await asyncio.to_thread(Path(setup["log"]).open, "a")
    with log:
        async with (
            production_logging(log, ("bench-key",)),
            Bot(setup["base_url"], setup["database"], setup["env"]) as bot,
        ):
            print("READY", flush=True)
            job = json.loads(await asyncio.to_thread(sys.stdin.readline))
            result = await _job(bot, job)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(_main()))
