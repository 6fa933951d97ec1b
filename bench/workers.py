"""Bot processes for the multi-process benchmarks (`python -m bench.worker`), started and driven."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from bench.fake_process import ROOT

READY_LIMIT_S = 60.0


class WorkerProcess:
    """One ``python -m bench.worker``: a bot (store, coordination, engine, service) of its own."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    @classmethod
    async def start(cls, base_url: str, database: str, env: dict[str, str], log: Path) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.worker",
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        worker = cls(proc)
        setup = {"base_url": base_url, "database": database, "env": env, "log": str(log)}
        await worker._send(setup)
        assert proc.stdout is not None
        async with asyncio.timeout(READY_LIMIT_S):
            line = await proc.stdout.readline()
        if line.strip() != b"READY":
            await worker.stop()
            raise RuntimeError(f"a bench worker did not start: {await worker._errors()}")
        return worker

    async def _send(self, data: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(data) + "\n").encode())
        await self._proc.stdin.drain()

    async def _errors(self) -> str:
        if self._proc.stderr is None:
            return ""
        return (await self._proc.stderr.read()).decode(errors="replace")[-2000:]

    async def run(self, job: dict[str, Any], limit_s: float) -> dict[str, Any]:
        """Send the job, wait for its result (the worker then exits)."""
        await self._send(job)
        assert self._proc.stdout is not None
        async with asyncio.timeout(limit_s):
            while (line := await self._proc.stdout.readline()) and not line.startswith(b"RESULT "):
                pass
            if not line:
                raise RuntimeError(f"a bench worker failed: {await self._errors()}")
            await self._proc.wait()
        result: dict[str, Any] = json.loads(line.removeprefix(b"RESULT "))
        return result

    async def stop(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()


@asynccontextmanager
async def workers(
    count: int, base_url: str, database: str, env: dict[str, str], log: Path
) -> AsyncIterator[list[WorkerProcess]]:
    """``count`` workers on one database, started together, killed if still running at the end."""
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(WorkerProcess.start(base_url, database, env, log) for _ in range(count))
        )
        for worker in started:
            stack.push_async_callback(worker.stop)
        yield list(started)
