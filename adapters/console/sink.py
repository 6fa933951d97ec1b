"""The console's output: replies printed, images saved under the output folder, a spinner; and
stdin read on a thread so a pending read never blocks the loop."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

from bot.vocabulary import ImagePart, Reply, TextPart

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class LineReader:
    """Reads stdin lines on a daemon thread so a pending read never blocks the loop or exit."""

    def __init__(self, stream: IO[str], prompt: Callable[[], None]) -> None:
        self._stream = stream
        self._prompt = prompt
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._wanted = threading.Event()
        threading.Thread(target=self._run, name="console-stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            line = self._stream.readline()
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line if line else None)
            if not line:
                return

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        self._prompt()
        self._wanted.set()
        line = await self._queue.get()
        return None if line is None else line.rstrip("\r\n")


class ConsoleSink:
    """Prints replies, saves images under the output folder, and spins while working."""

    def __init__(
        self,
        out: IO[str],
        folder: Path,
        interactive: bool,
        seen: Callable[[Reply], None] | None = None,
    ) -> None:
        self._out = out
        self._folder = folder
        self._interactive = interactive
        self._seen = seen

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        if not self._interactive:
            self._print("… generating")
            yield
            return
        started = time.monotonic()
        stop = asyncio.Event()

        async def spin() -> None:
            for frame in itertools.cycle(_SPINNER):
                elapsed = int(time.monotonic() - started)
                self._out.write(f"\r{frame} generating… {elapsed}s ")
                self._out.flush()
                try:
                    await asyncio.wait_for(stop.wait(), 0.1)
                    return
                except TimeoutError:
                    continue

        task = asyncio.create_task(spin())
        try:
            yield
        finally:
            stop.set()
            await task
            self._out.write("\r\033[K")
            self._out.flush()

    async def send(self, reply: Reply) -> list[str]:
        """Prints text and saves images; a terminal has no messages to reply to, so no ids."""
        image_number = 0
        for part in reply.parts:
            if isinstance(part, TextPart):
                self._print(("! " if reply.is_error else "") + part.text)
            elif isinstance(part, ImagePart):
                image_number += 1
                path = await asyncio.to_thread(self._save, part, reply.turn_id, image_number)
                self._print(f"[image] {path}")
        if self._seen is not None:
            self._seen(reply)
        return []

    async def notice(self, text: str) -> None:
        self._print(text)

    def _save(self, part: ImagePart, turn_id: int | None, number: int) -> Path:
        self._folder.mkdir(parents=True, exist_ok=True)
        extension = _EXTENSIONS.get(part.mime_type, "png")
        path = self._folder / f"turn-{turn_id or 0}-{number}.{extension}"
        path.write_bytes(part.data)
        return path
