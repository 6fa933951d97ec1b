"""The performance seams: SDK work off the bot's loop, heap trimming when quiet, hashing off-loop."""

from __future__ import annotations

import asyncio
import gc
import io
import threading

from PIL import Image

from bot.gemini import GeminiEngine, GenerationRequest, Outcome
from bot.images import heap
from bot.images.checks import ImageLimits, prepare_image_async
from storage.content import blob_hash, user_record
from tests.auxil.fake_gemini import FakeGemini


def sdk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gemini-sdk"]


async def test_the_sdk_builds_and_reads_requests_off_the_callers_loop(monkeypatch) -> None:
    seen: dict[str, int] = {}
    original = GeminiEngine._interpret

    def spy(self, response, attempts):
        seen["interpret"] = threading.get_ident()
        return original(self, response, attempts)

    monkeypatch.setattr(GeminiEngine, "_interpret", spy)
    before = len(sdk_threads())
    async with FakeGemini(image_side=32) as fake:
        engine = GeminiEngine(api_key="k", model="gemini-2.5-flash-image", base_url=fake.base_url)
        try:
            request = GenerationRequest(history=[], user=user_record("a kite", []), blobs={})
            results = await asyncio.gather(*(engine.generate(request) for _ in range(3)))
            assert [r.outcome for r in results] == [Outcome.IMAGE] * 3
            assert seen["interpret"] != threading.get_ident()
            assert len(sdk_threads()) == before + 1  # one private loop, reused
        finally:
            await engine.aclose()
    assert len(sdk_threads()) == before  # aclose stops it


async def _other_sdk_tasks() -> int:
    """Runs on the SDK loop: how many other tasks are still there after a moment to settle."""
    others = 0
    for _ in range(200):
        others = len(asyncio.all_tasks()) - 1
        if not others:
            break
        await asyncio.sleep(0.01)
    return others


async def test_a_cancelled_turn_cancels_the_call_on_the_sdk_loop() -> None:
    async with FakeGemini(image_side=32, latency_s=30) as fake:
        engine = GeminiEngine(api_key="k", model="gemini-2.5-flash-image", base_url=fake.base_url)
        try:
            request = GenerationRequest(history=[], user=user_record("slow", []), blobs={})
            task = asyncio.create_task(engine.generate(request))
            await fake.wait_for_requests(1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert task.cancelled()
            assert await engine._sdk.run(_other_sdk_tasks()) == 0  # the SDK's call went too
        finally:
            await engine.aclose()


async def test_heap_is_trimmed_once_after_a_quiet_spell() -> None:
    loop = asyncio.get_running_loop()
    trimmed = asyncio.Event()
    calls: list[float] = []

    def trim() -> None:  # runs in a worker thread
        calls.append(loop.time())
        loop.call_soon_threadsafe(trimmed.set)

    trimmer = heap.HeapTrimmer(quiet_s=0.05, trim=trim)
    for _ in range(5):  # a burst: each poke pushes the trim back
        trimmer.poke()
        await asyncio.sleep(0.01)
    assert calls == []
    async with asyncio.timeout(5):
        await trimmed.wait()
        await trimmer._running
    assert len(calls) == 1 and trimmer.trims == 1


async def test_a_failing_trim_is_logged_not_raised(caplog) -> None:
    loop = asyncio.get_running_loop()
    tried = asyncio.Event()

    def broken() -> None:
        loop.call_soon_threadsafe(tried.set)
        raise OSError("no")

    trimmer = heap.HeapTrimmer(quiet_s=0.01, trim=broken)
    trimmer.poke()
    async with asyncio.timeout(5):
        await tried.wait()
        await trimmer._running
    assert trimmer.trims == 0
    assert [r.getMessage() for r in caplog.records if r.name == "bot.images.heap"] == ["heap trim failed"]


def test_allocator_tuning_and_gc_freeze_happen_once(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_frozen", False)
    frozen: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    heap.freeze_startup_objects()
    heap.freeze_startup_objects()
    assert frozen == [1]
    # Either glibc accepted every setting, or this C library has none to tune.
    assert heap.tune_allocator() is (heap._glibc() is not None)


async def test_an_attachment_is_hashed_in_the_worker_not_on_the_loop() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buf, "PNG")
    prepared = await prepare_image_async(buf.getvalue(), "a.png", ImageLimits())
    assert "blob" in vars(prepared)  # already computed (cached) when the worker returned
    assert prepared.blob is prepared.blob and prepared.blob.sha256 == blob_hash(buf.getvalue())
