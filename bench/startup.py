"""Start-up: from launching `python -m bot` to the bot being ready for the first message."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from bench.fake_process import ROOT

READY_MARK = b"Nano Banana console"
LIMIT_S = 60.0


async def one_start(workdir: Path, base_url: str) -> float:
    """Seconds from spawning `python -m bot console` (stdin a pipe) until its banner is printed.

    The console prints the banner after the configuration is read, the database is opened and
    migrated, and the Gemini client is built: the same work a platform run does before it
    connects, so this is the bot's own start-up (network connects to Discord/Slack excluded).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GEMINI_", "GOOGLE_", "DISCORD_", "SLACK_", "DATABASE_URL"))
    }
    env |= {
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "GEMINI_API_KEY": "bench-key",
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'startup.sqlite3'}",
    }
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        async with asyncio.timeout(LIMIT_S):
            while READY_MARK not in (line := await proc.stdout.readline()):
                if not line:
                    err = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"`python -m bot console` exited before it was ready: {err.strip()}")
            ready = time.perf_counter() - started
            proc.stdin.close()  # end of input: the console says goodbye and exits
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return ready


async def measure_startup(workdir: Path, base_url: str, runs: int) -> tuple[float, list[float]]:
    """Median over ``runs`` starts (the first creates the database; later ones reopen it)."""
    times = [await one_start(workdir, base_url) for _ in range(runs)]
    return statistics.median(times), times
