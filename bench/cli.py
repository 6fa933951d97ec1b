"""`python -m bench [--quick]`: run every benchmark, print the table, write markdown, JSON and PNG."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.api_rows import api_rows
from bench.chart import draw
from bench.concurrency import measure_concurrency
from bench.cost import CHECKPOINTS, measure_cost
from bench.fake_process import ROOT, FakeGeminiProcess
from bench.harness import production_logging
from bench.load_rows import capacity_rows, ordering_rows
from bench.memory import MEMORY_LIMIT_S
from bench.overhead import HISTORY_TURNS, measure_overhead
from bench.report import Report, Row, fmt_mb, machine
from bench.startup import measure_startup
from bench.storage import add_duplicates, measure_storage
from tests.auxil.postgres import PostgresServer

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True, slots=True)
class Plan:
    """How big each benchmark runs: the full run is what the README shows; quick keeps it honest."""

    name: str
    noisy: bool  # real-size (~1.5 MB) images; otherwise solid-colour 1024x1024 PNGs of a few KB
    overhead_samples: int
    overhead_latency_s: float
    conversations: int
    concurrency_latency_s: float
    cost_turns: int
    duplicates: int
    stored_conversations: int
    served_turns: int
    startup_runs: int
    order_threads: int  # each with 5 back-to-back messages, delivered shuffled
    order_settle_ms: int | None  # the ordering processes' TURN_ORDER_SETTLE_MS (None: default)
    capacity_lanes: int  # conversations sending back to back, over every process
    capacity_latency_s: float
    capacity_s: float  # how long each capacity run lasts; turns are counted after its first 5 s
    capacity_processes: tuple[int, ...]  # bot processes on one PostgreSQL, one run each


FULL = Plan("full", True, 40, 0.1, 200, 2.0, 20, 5, 10_000, 1_000, 5, 100, None, 120, 2.0, 25.0, (1, 2, 3))
QUICK = Plan("quick", False, 3, 0.0, 20, 0.3, 20, 2, 200, 20, 1, 10, 1000, 4, 0.3, 2.5, (1,))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run(plan: Plan, log: IO[str], command: str) -> Report:
    report = Report(mode=plan.name, command=command, machine=machine())
    started = time.perf_counter()
    size = "real-size (~1.5 MB) 1024×1024 images" if plan.noisy else "small 1024×1024 images (quick mode)"
    report.notes.append(
        f"Real store, SDK and service; fake Gemini in its own process, answering with {size}. "
        "Every conversation is one user, so per-user limits apply as deployed; the concurrency "
        "run lifts MAX_CONCURRENT_GENERATIONS (default 32) to the number of conversations."
    )
    say("postgres: starting a throwaway server …")
    postgres = await asyncio.to_thread(PostgresServer().start)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            work = Path(tmp)
            async with production_logging(log, ("bench-key",)):
                await _overhead(plan, work, postgres, report)
                say("apis: a 10-turn conversation with two 4 MB photos on each Gemini API …")
                await api_rows(work, plan.noisy, report)
                await _concurrency(plan, work, report)
                await _cost_and_storage(plan, work, report)
                # Last in this process: its 500-turn burst would change what the runs above measure.
                await ordering_rows(plan.order_threads, work, postgres, report, say, plan.order_settle_ms)
            await capacity_rows(plan, work, postgres, report, say)
            await _memory(plan, report)
            await _startup(plan, work, report)
    finally:
        await asyncio.to_thread(postgres.stop)
    report.duration_s = time.perf_counter() - started
    return report


async def _overhead(plan: Plan, work: Path, postgres: PostgresServer, report: Report) -> None:
    n = plan.overhead_samples
    say(f"overhead: {HISTORY_TURNS}-turn thread, then {n} bot turns and {n} bare SDK calls, SQLite …")
    sqlite = await measure_overhead(
        work / "overhead.sqlite3", samples=n, latency_s=plan.overhead_latency_s, noisy=plan.noisy
    )
    say("overhead: the same on PostgreSQL …")
    pg = await measure_overhead(
        await postgres.create_database(), samples=n, latency_s=plan.overhead_latency_s, noisy=plan.noisy
    )
    report.notes.append(
        "Overhead = the bot's own time per turn (from the adapter's call, `handle_turn`, to the "
        "reply reaching the sink) over a bare google-genai `generate_content` call's own time, "
        "each being wall time minus the fake's own time on that request (measured inside the "
        "fake: from its handler starting, body read included, to its answer written, latency "
        f"included). Every timed turn continues from turn {HISTORY_TURNS} with the same prompt, so "
        f"each sends the same request ({HISTORY_TURNS} turns of history; with the default budget, "
        f"3 re-sent images: {fmt_mb(sqlite.request_bytes)}); the bare call replays that request, "
        "built once through the SDK's types, and the fake checks the bodies are identical. Bot "
        "turns and bare calls alternate, and the figure is the median of each turn's time over "
        "the call right after it: a pair sees the same machine, where the medians of the two "
        "series (shown with their ratio) can each catch this VM in a faster or slower moment."
    )
    report.series["overhead_ms"] = list(sqlite.samples_ms)
    for key, name, result, target in (("sqlite", "SQLite", sqlite, 1.3), ("pg", "PostgreSQL", pg, 1.4)):
        report.add(
            Row(
                f"overhead_{key}",
                "1",
                f"Bot's own time per turn / bare SDK call's, {name} (median of {n} paired ratios)",
                result.ratio,
                f"{result.ratio:.2f}× (medians {result.median_ms:.1f} / {result.bare_median_ms:.1f} ms, "
                f"{result.ratio_of_medians:.2f}×)",
                target,
                f"≤ {target}×",
            )
        )
        report.add(
            Row(
                f"overhead_{key}_p99",
                "1",
                f"Bot's own time per turn, p99, {name}",
                result.p99_ms,
                f"{result.p99_ms:.1f} ms",
            )
        )


async def _concurrency(plan: Plan, work: Path, report: Report) -> None:
    n, latency = plan.conversations, plan.concurrency_latency_s
    say(f"concurrency: {n} conversations at once, model latency {latency} s …")
    result = await measure_concurrency(work, conversations=n, latency_s=latency, noisy=plan.noisy)
    report.add(
        Row(
            "concurrency_ratio",
            "2",
            f"{n} conversations at once, {latency:g} s model: wall / {latency:g} s",
            result.ratio,
            f"{result.ratio:.2f}",
            1.25,
            "≤ 1.25",
        )
    )
    report.add(
        Row(
            "loop_stall",
            "2",
            "Max event-loop stall during that run",
            result.max_stall_ms,
            f"{result.max_stall_ms:.1f} ms",
            50.0,
            "≤ 50 ms",
        )
    )
    if plan.noisy:
        # The same burst without the megabytes: what is left is the bot's own coordination.
        small = await measure_concurrency(work, conversations=n, latency_s=latency, noisy=False)
    else:
        small = result
    report.add(
        Row(
            "concurrency_ratio_small",
            "2",
            f"Same, answers of 1024×1024 solid-colour images (~3 KB): wall / {latency:g} s",
            small.ratio,
            f"{small.ratio:.2f}",
        )
    )


async def _cost_and_storage(plan: Plan, work: Path, report: Report) -> None:
    say(f"cost growth: {plan.cost_turns} turns with the default budget, then re-sending everything …")
    bounded, unbounded = await measure_cost(work, turns=plan.cost_turns, noisy=plan.noisy)
    for turn in CHECKPOINTS:
        b_bytes, b_tokens = bounded.at(turn)
        u_bytes, u_tokens = unbounded.at(turn)
        report.add(
            Row(
                f"request_bytes_turn_{turn}",
                "3",
                f"Request at turn {turn}: budget / unbounded",
                b_bytes,
                f"{fmt_mb(b_bytes)} / {fmt_mb(u_bytes)}",
            )
        )
        report.add(
            Row(
                f"input_tokens_turn_{turn}",
                "3",
                f"Input tokens at turn {turn}: budget / unbounded",
                b_tokens,
                f"{b_tokens:,} / {u_tokens:,}",
            )
        )
    last, mid = CHECKPOINTS[-1], CHECKPOINTS[1]
    for what, index in (("bytes", 0), ("tokens", 1)):
        growth = bounded.at(last)[index] / bounded.at(mid)[index]
        share = bounded.at(last)[index] / unbounded.at(last)[index]
        report.add(
            Row(
                f"{what}_growth",
                "3",
                f"Request {what}, turn {last} / turn {mid} (budget)",
                growth,
                f"{growth:.2f}×",
                1.2,
                "≤ 1.2×",
            )
        )
        report.add(
            Row(
                f"{what}_vs_unbounded",
                "3",
                f"Request {what} at turn {last}: budget / unbounded",
                share,
                f"{share:.2f}",
                0.2,
                "≤ 0.20",
            )
        )
    report.series |= {
        "turns": [float(t) for t in range(1, plan.cost_turns + 1)],
        "budget_mb": [b / 1e6 for b in bounded.request_bytes],
        "unbounded_mb": [b / 1e6 for b in unbounded.request_bytes],
    }

    say("storage: checkpointed database against the distinct image bytes …")
    async with FakeGeminiProcess(noisy=plan.noisy) as fake:
        repeats = [f"turn {n}: the same harbour, now with {n} boats and warmer light" for n in range(1, 6)]
        await add_duplicates(fake, bounded.db_path, repeats[: plan.duplicates])
    stored = await measure_storage(bounded.db_path)
    report.add(
        Row(
            "storage_ratio",
            "4",
            f"DB bytes per stored image / image bytes ({stored.images} images, "
            f"{stored.references} references)",
            stored.ratio,
            f"{stored.ratio:.3f}",
            1.1,
            "≤ 1.1",
        )
    )


async def _memory(plan: Plan, report: Report) -> None:
    n, turns = plan.stored_conversations, plan.served_turns
    say(f"memory: {n:,} stored conversations and {turns:,} served turns in a fresh process …")
    async with FakeGeminiProcess(noisy=plan.noisy) as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.memory",
            "--base-url",
            fake.base_url,
            "--conversations",
            str(n),
            "--turns",
            str(turns),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(MEMORY_LIMIT_S):
            stdout, stderr = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the memory benchmark failed: {stderr.decode(errors='replace')[-2000:]}")
    figures = json.loads(stdout.decode().strip().splitlines()[-1])
    report.notes.append(
        f"Memory: a fresh `python -m bench.memory` process stores {n:,} one-turn conversations "
        "through `SqliteStore.append_turn` (32×32 PNGs), then serves "
        f"{turns:,} turns over {max(1, turns // 10)} of them, 10 conversations at a time, with "
        "the fake's answers; VmRSS is read once the bot has been idle for 2.5 s."
    )
    report.add(
        Row(
            "memory_rss",
            "5",
            f"RSS after {n:,} stored conversations and {turns:,} served turns",
            figures["rss_mb"],
            f"{figures['rss_mb']:.0f} MB",
            150.0,
            "≤ 150 MB",
        )
    )
    report.add(
        Row(
            "memory_peak", "5", "Peak RSS during that run", figures["peak_mb"], f"{figures['peak_mb']:.0f} MB"
        )
    )


async def _startup(plan: Plan, work: Path, report: Report) -> None:
    say(f"start-up: `python -m bot console` until ready, {plan.startup_runs} run(s) …")
    async with FakeGeminiProcess(noisy=False) as fake:
        median_s, _ = await measure_startup(work, fake.base_url, plan.startup_runs)
    report.notes.append(
        "Start-up: from spawning `python -m bot console` (stdin a pipe) to its banner, printed "
        "once the configuration is read, the database opened and migrated and the Gemini client "
        "built; platform connections (Discord, Slack) are network time and not included."
    )
    report.add(
        Row(
            "startup",
            "6",
            f"Process start to ready (median of {plan.startup_runs})",
            median_s,
            f"{median_s:.2f} s",
            2.0,
            "≤ 2 s",
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, a few seconds (the test suite's run)"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help="where to write the results (default %(default)s)"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    command = "python -m bench" + (" --quick" if args.quick else "")
    stem = "quick" if args.quick else "latest"
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"{stem}.log").open("w") as log:
        report = asyncio.run(run(plan, log, command))
    written = report.write(args.out, stem)
    written.append(draw(report, args.out / f"{stem}.png"))
    print("\n".join(report.table_lines()))
    print()
    for note in report.notes:
        print(f"- {note}")
    print(
        f"\n{len(report.rows)} rows, {len(report.failures)} below target; wrote "
        + ", ".join(str(p) for p in written)
    )
    return 0
