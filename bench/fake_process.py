"""The fake Gemini server run as its own process, so its CPU work never lands on the bot's loop."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
READY_LIMIT_S = 30.0


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """What the fake reports about one request it answered."""

    status: int | None
    body_bytes: int
    handling_s: float
    prompt_tokens: int | None
    images: int
    prompt: str


class FakeGeminiProcess:
    """``python -m tests.auxil.fake_gemini`` in a child process; ``async with`` starts and stops it.

    The fake measures its own time on each request (``handling_s``: from its handler starting
    to the answer being ready, latency included), which the benchmarks subtract from a turn's
    wall time. Running it apart from the bot keeps its base64/JSON work off the bot's loop.
    """

    def __init__(self, *, latency_s: float = 0.0, noisy: bool = True) -> None:
        self.latency_s = latency_s
        self.noisy = noisy
        self.base_url = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> FakeGeminiProcess:
        args = [sys.executable, "-m", "tests.auxil.fake_gemini", "--port", "0"]
        args += ["--latency", str(self.latency_s)] + (["--noisy"] if self.noisy else [])
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self._proc = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        assert self._proc.stdout is not None
        async with asyncio.timeout(READY_LIMIT_S):
            line = (await self._proc.stdout.readline()).decode().strip()
        if not line.startswith("READY "):
            await self.__aexit__()
            raise RuntimeError(f"the fake Gemini process did not start (said {line!r})")
        self.base_url = line.removeprefix("READY ")
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    async def requests(self) -> list[FakeRequest]:
        """Every request the fake has answered so far, in arrival order."""
        assert self._http is not None
        async with self._http.get(f"{self.base_url}/_fake/requests") as response:
            response.raise_for_status()
            rows: list[dict[str, Any]] = await response.json()
        return [
            FakeRequest(
                status=row.get("status"),
                body_bytes=int(row.get("body_bytes", 0)),
                handling_s=float(row.get("handling_s", 0.0)),
                prompt_tokens=row.get("prompt_tokens"),
                images=sum(row.get("images") or ()),
                prompt=str(row.get("prompt", "")),
            )
            for row in rows
        ]
