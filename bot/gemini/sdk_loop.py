"""A private event loop on one daemon thread, where the SDK builds requests and reads answers."""

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SdkLoop:
    """The SDK base64-encodes and JSON-serialises every image it sends and decodes every image it
    receives, synchronously, on the loop that awaits it: about 20 ms of CPU per turn with three
    1.5 MB history images, and a burst of answers landing together would stall the bot's loop
    (Discord heartbeats, Slack acks, every other conversation) for hundreds of milliseconds.
    Here that work only competes for the GIL, which the bot's loop gets back within a few ms.
    Cancelling the awaiting task cancels the call on this loop too (chained futures).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="gemini-sdk", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the SDK loop and wait for it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._started()))

    async def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
