"""Capacity: turns per second bot processes sustain against a slow model, and where the CPU goes."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench.fake_process import FakeGeminiProcess
from bench.workers import workers

_TICKS = os.sysconf("SC_CLK_TCK")
LIMIT_S = 300.0


@dataclass(frozen=True, slots=True)
class CapacityResult:
    processes: int
    lanes: int
    latency_s: float
    turns_per_s: float
    failed: int
    # CPU seconds per answered turn in the measured window, by who spent them.
    bot_cpu_ms: float
    fake_cpu_ms: float
    db_cpu_ms: float
    # Share of the machine's CPU time that was busy meanwhile (every process, ours or not).
    machine_busy: float

    @property
    def ideal_per_s(self) -> float:
        """What the lanes would reach if the bot took no time at all: lanes / model latency."""
        return self.lanes / self.latency_s


async def measure_capacity(
    database: str,
    log: Path,
    *,
    processes: int,
    lanes: int,
    latency_s: float,
    duration_s: float,
    warmup_s: float,
    noisy: bool,
    postgres_pid: int | None = None,
) -> CapacityResult:
    """``lanes`` conversations spread over ``processes`` bot processes on one database, each
    sending its next message as soon as its last is answered, for ``duration_s``; turns per
    second are counted after ``warmup_s`` (every lane's first turns, the connections opening).

    Every lane sends the same prompt, so the fake renders its one image once and spends its CPU
    on what a real API would not charge to us: reading the request and writing the answer.
    """
    per_process = max(1, lanes // processes)
    env = {"MAX_CONCURRENT_GENERATIONS": str(per_process)}
    async with (
        FakeGeminiProcess(latency_s=latency_s, noisy=noisy) as fake,
        workers(processes, fake.base_url, database, env, log) as procs,
    ):
        start = time.time() + 0.5
        until = start + duration_s
        jobs = [
            w.run({"lanes": per_process, "until": until, "name": f"p{i}"}, LIMIT_S)
            for i, w in enumerate(procs)
        ]
        gathered = asyncio.gather(*jobs)
        await asyncio.sleep(max(0.0, start + warmup_s - time.time()))
        before = _snapshot(fake.pid, postgres_pid)
        await asyncio.sleep(max(0.0, until - time.time()))
        after = _snapshot(fake.pid, postgres_pid)
        results = await gathered
    window = (start + warmup_s, until)
    answered = [t for r in results for t in r["answered_at"] if window[0] <= t <= window[1]]
    turns = max(1, len(answered))
    seconds = window[1] - window[0]
    # The bots' CPU over the whole run, scaled to the window: they report it when they finish.
    bot_cpu = sum(r["cpu_s"] for r in results) * seconds / (until - start)
    return CapacityResult(
        processes=processes,
        lanes=per_process * processes,
        latency_s=latency_s,
        turns_per_s=len(answered) / seconds,
        failed=sum(int(r["failed"]) for r in results),
        bot_cpu_ms=bot_cpu / turns * 1000,
        fake_cpu_ms=(after.fake - before.fake) / turns * 1000,
        db_cpu_ms=(after.db - before.db) / turns * 1000,
        machine_busy=(after.busy - before.busy) / max(1e-9, after.total - before.total),
    )


@dataclass(frozen=True, slots=True)
class _Cpu:
    fake: float
    db: float
    busy: float
    total: float


def _snapshot(fake_pid: int, postgres_pid: int | None) -> _Cpu:
    db = 0.0
    if postgres_pid is not None:
        db = _process_cpu(postgres_pid) + sum(_process_cpu(p) for p in _children(postgres_pid))
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return _Cpu(_process_cpu(fake_pid), db, (sum(fields) - idle) / _TICKS, sum(fields) / _TICKS)


def _process_cpu(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found
