"""The heaps under the bot: Python's GC and the C allocator under big image buffers."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

# glibc's mallopt parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Threads (the SDK's loop, SQLite's, workers) share this many heaps: memory freed in one
# thread's private heap otherwise stays there (90 MB against 140 MB resident after a burst).
ARENA_MAX = 2
# Buffers up to this size come from the heap and are reused (glibc's ceiling for the setting).
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
# Free memory at the top of the heap is kept up to this much instead of returned after a free.
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
QUIET_S = 2.0

_tuned = False
_frozen = False


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    # musl and other C libraries have neither function; then there is nothing to tune.
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def tune_allocator() -> bool:
    """Ask glibc to reuse freed image-sized buffers instead of returning them at once (once per
    process; False where the C library is not glibc).

    Every turn allocates and frees tens of MB: the SDK base64-encodes and JSON-serialises each
    re-sent image, decodes each answer, and SQLite hands blobs over as new bytes. By default
    glibc maps each buffer over 128 KB-32 MB afresh (its threshold adapts) and returns the
    heap's top after frees, so every turn faulted its buffers in again, a page fault per 4 KB:
    8-10 ms of a turn's overhead on a 2-core VM. Memory kept this way goes back to the system
    when the bot is quiet (``HeapTrimmer``).
    """
    global _tuned
    libc = _glibc()
    if libc is None:
        return False
    if not _tuned:
        _tuned = all(
            libc.mallopt(param, value)
            for param, value in (
                (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
                (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                (_M_ARENA_MAX, ARENA_MAX),
            )
        )
    return _tuned


def freeze_startup_objects() -> None:
    """Move every object alive now out of the GC's reach, once per process (call it when the
    bot is up, e.g. at its first turn, so imported modules and clients are included).

    A full (generation 2) collection walks every tracked object, and the SDK, pydantic and the
    platform libraries create hundreds of thousands at import: each full collection then
    stalled the event loop for ~60 ms in the middle of a burst of turns. Those objects live as
    long as the process anyway; later objects are collected as usual.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()


def _malloc_trim() -> Callable[[], object] | None:
    libc = _glibc()
    if libc is None:
        return None
    trim = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


class HeapTrimmer:
    """Returns free heap pages to the OS once the bot has been quiet for ``quiet_s`` after work.

    glibc keeps freed chunks inside the heap for reuse and only trims its very top, so after a
    burst of turns a bot stays at its peak RSS (about 250 MB after 1,000 turns, with 80 MB
    live). ``malloc_trim(0)`` also releases free pages in the middle of the heap. It runs in a
    worker thread (ctypes drops the GIL for the call) and only after a quiet spell, so a busy
    bot keeps reusing its memory instead of faulting it back in.
    """

    def __init__(self, quiet_s: float = QUIET_S, trim: Callable[[], object] | None = None) -> None:
        self._quiet_s = quiet_s
        self._trim = trim if trim is not None else _malloc_trim()
        self._timer: asyncio.TimerHandle | None = None
        self._running: asyncio.Task[None] | None = None
        self.trims = 0

    def poke(self) -> None:
        """Some work just finished: trim ``quiet_s`` from now unless more work finishes first."""
        if self._trim is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self._quiet_s, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self._trim is not None
        try:
            await asyncio.to_thread(self._trim)
            self.trims += 1
        except Exception:  # an allocator quirk must never take a turn down
            log.warning("heap trim failed", exc_info=True)
