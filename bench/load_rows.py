"""The report rows of the ordering and capacity benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bench.capacity import CapacityResult, measure_capacity
from bench.load import OrderCheck
from bench.ordering import order_across_processes, order_in_process
from bench.report import Report, Row
from tests.auxil.postgres import PostgresServer

MESSAGES = 5
ORDER_PROCESSES = 3
WARMUP_S = 5.0


class CapacityPlan(Protocol):
    noisy: bool
    capacity_lanes: int
    capacity_latency_s: float
    capacity_s: float
    capacity_processes: tuple[int, ...]


async def ordering_rows(
    threads: int,
    work: Path,
    postgres: PostgresServer,
    report: Report,
    say: Callable[[str], None],
    settle_ms: int | None = None,
) -> None:
    """``settle_ms``: the processes' TURN_ORDER_SETTLE_MS (None: the default, 250 ms)."""
    shape = f"{threads} threads × {MESSAGES} back-to-back messages"
    say(f"ordering: {shape} delivered at once, shuffled, SQLite …")
    sqlite = await order_in_process(work / "ordering.sqlite3", threads=threads, messages=MESSAGES, seed=1)
    say(f"ordering: the same over {ORDER_PROCESSES} processes on PostgreSQL …")
    pg = await order_across_processes(
        await postgres.create_database(),
        work / "workers.log",
        processes=ORDER_PROCESSES,
        threads=threads,
        messages=MESSAGES,
        seed=2,
        env={"TURN_ORDER_SETTLE_MS": str(settle_ms)} if settle_ms is not None else {},
    )
    report.notes.append(
        f"Ordering: {shape} (posted 1 ms apart, each stamped as a platform stamps them), every "
        "message delivered at the same moment, each thread's in shuffled order. Out of order = "
        "a model request whose prompt is not the next of its thread in posting order; duplicate "
        "= a message generated twice; every message must be answered. On PostgreSQL each "
        f"message goes to one of {ORDER_PROCESSES} `python -m bench.worker` processes at random "
        "(each a full bot: its own store, pool, lease and coordination)"
        + (
            f", with TURN_ORDER_SETTLE_MS={settle_ms}: this quick run shares the machine with the "
            "test suite, where a starved process can take longer than the default 250 ms to place "
            "a message it has received (see README, Several processes)."
            if settle_ms is not None
            else "."
        )
    )
    for key, where, check in (
        ("order_sqlite", "SQLite, 1 process", sqlite),
        ("order_pg", f"PostgreSQL, {ORDER_PROCESSES} processes", pg),
    ):
        report.add(
            Row(
                key,
                "7",
                f"Out-of-order + duplicate generations, {shape}, {where}",
                float(check.out_of_order + check.duplicates),
                _order_shown(check),
                0.0,
                "0",
            )
        )


def _order_shown(check: OrderCheck) -> str:
    return f"{check.out_of_order} / {check.duplicates} (of {check.generations})"


async def capacity_rows(
    plan: CapacityPlan, work: Path, postgres: PostgresServer, report: Report, say: Callable[[str], None]
) -> None:
    lanes, latency = plan.capacity_lanes, plan.capacity_latency_s
    common = {
        "lanes": lanes,
        "latency_s": latency,
        "duration_s": plan.capacity_s,
        "warmup_s": min(WARMUP_S, plan.capacity_s / 3),
        "noisy": plan.noisy,
    }
    log = work / "workers.log"
    say(f"capacity: {lanes} conversations back to back, {latency:g} s model, 1 process on SQLite …")
    runs: list[tuple[str, str, CapacityResult]] = [
        (
            "capacity_sqlite",
            "1 process, SQLite",
            await measure_capacity(f"sqlite:///{work / 'capacity.sqlite3'}", log, processes=1, **common),
        )
    ]
    for n in plan.capacity_processes:
        say(f"capacity: the same over {n} process(es) on one PostgreSQL …")
        result = await measure_capacity(
            await postgres.create_database(), log, processes=n, postgres_pid=postgres.pid, **common
        )
        runs.append((f"capacity_pg_{n}", f"{n} process{'es' if n > 1 else ''}, PostgreSQL", result))
    one_pg = runs[1][2].turns_per_s
    for key, where, r in runs:
        reference = f"{r.turns_per_s / r.ideal_per_s:.2f} of {r.ideal_per_s:.0f}/s ideal"
        if key.startswith("capacity_pg_") and r.processes > 1:
            reference += f", {r.turns_per_s / one_pg:.2f}× 1 process"
        report.add(
            Row(
                key,
                "8",
                f"Turns/s sustained, {where} ({r.lanes} conversations, {latency:g} s model)",
                r.turns_per_s,
                f"{r.turns_per_s:.1f}/s ({reference})",
            )
        )
        report.add(
            Row(
                f"{key}_cpu",
                "8",
                f"CPU per turn: bot / fake Gemini / PostgreSQL; machine busy ({where})",
                r.bot_cpu_ms,
                f"{r.bot_cpu_ms:.0f} / {r.fake_cpu_ms:.0f} / {r.db_cpu_ms:.0f} ms; {r.machine_busy:.0%}",
            )
        )
        if r.failed:
            raise RuntimeError(f"{r.failed} capacity turns were not answered ({where})")
    report.notes.append(
        f"Capacity: {lanes} conversations spread over the bot processes, each sending its next "
        f"message as soon as its last is answered, against a {latency:g} s model answering "
        f"{'real-size' if plan.noisy else 'small'} images, for {plan.capacity_s:g} s; turns "
        f"answered after the first {common['warmup_s']:g} s are counted. Ideal = conversations "
        "/ model latency (a bot taking no time). Processes are `python -m bench.worker` (the "
        "bot's store, coordination, engine and service, without a platform adapter); the fake "
        "Gemini, PostgreSQL and every bot process share the machine's cores, so 'machine busy' "
        "(all processes, ours or not) shows when the CPU is the limit."
    )
