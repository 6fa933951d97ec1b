"""Run ``python -m bot`` as a real process with a controlled environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.auxil.waiting import settled

ROOT = Path(__file__).resolve().parents[2]
TEST_MODEL = "gemini-2.5-flash-image"
# Variables from the developer's shell that would change what the bot does.
_CONTROLLED = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_MODEL",
    "GEMINI_API",
    "MODELS_FILE",
    "GOOGLE_GEMINI_BASE_URL",
    "DATABASE_URL",
    "DISCORD_TOKEN",
    "DISCORD_API_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "PORT",
)


def bot_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment without bot settings, plus ``extra``, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if k not in _CONTROLLED}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    # The model the tests were written against; pass GEMINI_MODEL="" to test choosing one.
    env["GEMINI_MODEL"] = TEST_MODEL
    # As in tests/auxil/core.py: a short settle window unless a test sets its own.
    env["TURN_ORDER_SETTLE_MS"] = "20"
    # Every service process serves /healthz on PORT: a free port each, so processes never collide.
    env["PORT"] = "0"
    env.update(extra or {})
    return env


def run_bot(
    args: list[str], cwd: Path, env: Mapping[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the bot to completion with piped (non-tty) stdin."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=bot_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class BotProcess:
    """`python -m bot` with every pipe open; what it writes is collected line by line as it arrives:
    ``lines`` is stderr (the JSON log and any one-line error), ``stdout`` what the console prints."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.paused = False
        self.lines: list[str] = []
        self.stdout: list[str] = []
        self._changed = asyncio.Condition()
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, self.stdout)),
            asyncio.create_task(self._read(proc.stderr, self.lines)),
        ]

    @classmethod
    async def start(
        cls,
        cwd: Path,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        *,
        launch: Sequence[str] = ("-m", "bot"),
    ) -> BotProcess:
        """``python -m bot *args`` in ``cwd`` with ``bot_env(env)``; ``launch``: what comes before
        ``args`` instead of ``-m bot`` (a script that runs the bot in a probe)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *launch,
            *args,
            cwd=cwd,
            env=bot_env(env),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=8 * 1024 * 1024,  # lines far past asyncio's 64 KiB default (the bad-input corpus)
        )
        return cls(proc)

    async def _read(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        async for raw in stream:
            async with self._changed:
                into.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def _output_closed(self) -> bool:
        return all(reader.done() for reader in self._readers)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None and not self._output_closed()

    async def write_line(self, line: str) -> None:
        """Type one line on the bot's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    def logs(self) -> list[dict[str, Any]]:
        """The JSON objects among the stderr lines, in order."""
        out = []
        for line in self.lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    async def wait_until(self, predicate: Callable[[], object], limit_s: float = 30.0) -> None:
        """Until ``predicate()`` holds for what the process wrote; fails if its output ends first."""
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(lambda: bool(predicate()) or self._output_closed())
        assert predicate(), "the bot exited:\n" + "\n".join(self.lines[-20:])

    async def wait_for_log(self, message: str, limit_s: float = 30.0) -> dict[str, Any]:
        """The first log entry with this message; fails if the bot exits first."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.logs() if e.get("message") == message), None)

        await self.wait_until(lambda: found() is not None, limit_s)
        entry = found()
        assert entry is not None
        return entry

    async def wait_while_running(self, awaitable: Awaitable[object], limit_s: float = 30.0) -> None:
        """Until ``awaitable`` (a fake seeing the bot connect, say) is done; fails with the log if the
        process exits first or the time runs out."""
        waiting = asyncio.ensure_future(awaitable)
        exited = asyncio.ensure_future(self.proc.wait())
        done, pending = await asyncio.wait(
            [waiting, exited], timeout=limit_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        assert waiting in done, "\n".join(self.lines)
        waiting.result()  # a wait that gave up by itself (its own timeout) fails here too

    async def stop(self, limit_s: float = 20.0) -> int:
        """SIGTERM, as a host sends on deploy; the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.paused:  # a stopped process acts on SIGTERM only once it runs again
                await self.resume()
        return await self.wait(limit_s)

    async def pause(self, limit_s: float = 5.0) -> None:
        """SIGSTOP: the process stops dead, its connections stay open and unanswered (a process
        stalled by the host, a long GC pause, a debugger); returns once the kernel shows it
        stopped."""
        assert self.proc.returncode is None, "the process has ended"
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True
        assert await settled(lambda: self._state() in ("T", "t"), limit_s), "SIGSTOP did not stop it"

    async def resume(self, limit_s: float = 5.0) -> None:
        """SIGCONT: a paused process goes on where it stopped; returns once it runs again."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            assert await settled(lambda: self._state() not in ("T", "t"), limit_s), "SIGCONT did not wake it"
        self.paused = False

    def _state(self) -> str:
        """The process's state letter from /proc (R, S, T stopped, Z, ...); '' once it is gone."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return ""
        return stat.rsplit(")", 1)[1].split()[0]

    async def kill(self, limit_s: float = 10.0) -> int:
        """SIGKILL: no handler runs, nothing is flushed or closed; the exit code."""
        if self.proc.returncode is None:
            self.proc.kill()
        return await self.wait(limit_s)

    async def wait(self, limit_s: float = 20.0) -> int:
        """The exit code, once the process has ended and all its output is read."""
        async with asyncio.timeout(limit_s):
            code = await self.proc.wait()
            await asyncio.gather(*self._readers)
        return code

    def ensure_dead(self) -> None:
        """SIGKILL without waiting, for ``finally`` blocks."""
        if self.proc.returncode is None:
            self.proc.kill()

    def problems(self, secrets: Iterable[str]) -> list[str]:
        """Tracebacks or secrets in what the process wrote to stderr."""
        text = "\n".join(self.lines)
        found = ["a traceback"] if "Traceback" in text else []
        found += [f"the secret {s[:6]}..." for s in secrets if s and s in text]
        return found
