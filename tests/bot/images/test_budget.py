"""The image memory budget: waiting for room, first come first served, clamping, cancellation."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import PngImagePlugin

from bot.entry.service import TurnStatus
from bot.images import checks as images
from bot.images.budget import SEND_COPIES, ImageBudget, ImageMemory, turn_bytes
from bot.images.checks import ImageLimits, ImageRejected, prepare_image_async
from bot.vocabulary import ConversationKey, ImageRef
from tests.auxil import image_factory as make
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini


class Holder:
    """A task that reserves ``amount`` and keeps it until ``release`` is set."""

    def __init__(self, budget: ImageBudget, amount: int, log: list[str], name: str) -> None:
        self.release = asyncio.Event()
        self.granted = asyncio.Event()
        self.reserved: int | None = None

        async def run() -> None:
            async with budget.reserve(amount) as reserved:
                self.reserved = reserved
                log.append(name)
                self.granted.set()
                await self.release.wait()

        self.task = asyncio.create_task(run())


async def settle() -> None:
    """Let every task that can run reach its next wait (no timing involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_reservations_that_fit_run_together_and_the_rest_wait() -> None:
    budget = ImageBudget(100)
    log: list[str] = []
    a, b = Holder(budget, 60, log, "a"), Holder(budget, 40, log, "b")
    await settle()
    assert log == ["a", "b"] and budget.in_use == 100
    c = Holder(budget, 1, log, "c")
    await settle()
    assert log == ["a", "b"] and budget.waiting == 1  # not one byte over
    b.release.set()
    await c.granted.wait()
    assert log == ["a", "b", "c"] and budget.in_use == 61
    a.release.set()
    c.release.set()
    await asyncio.gather(a.task, b.task, c.task)
    assert budget.in_use == 0 and budget.waiting == 0


async def test_a_large_reservation_is_not_overtaken_by_later_small_ones() -> None:
    budget = ImageBudget(100)
    log: list[str] = []
    first = Holder(budget, 50, log, "first")
    await settle()
    large = Holder(budget, 80, log, "large")  # must wait for first
    await settle()
    small = Holder(budget, 10, log, "small")  # would fit now, but large asked earlier
    await settle()
    assert log == ["first"] and budget.waiting == 2
    first.release.set()
    await large.granted.wait()
    await settle()
    assert log == ["first", "large", "small"]  # small fits beside large (80 + 10)
    large.release.set()
    small.release.set()
    await asyncio.gather(first.task, large.task, small.task)


async def test_a_reservation_larger_than_the_budget_is_clamped_and_runs_alone() -> None:
    budget = ImageBudget(100)
    log: list[str] = []
    small = Holder(budget, 30, log, "small")
    await settle()
    huge = Holder(budget, 10_000, log, "huge")
    await settle()
    assert log == ["small"]  # waits for the budget to empty
    small.release.set()
    await huge.granted.wait()
    assert huge.reserved == 100 and budget.in_use == 100
    after = Holder(budget, 1, log, "after")
    await settle()
    assert log == ["small", "huge"]  # nothing runs beside it
    huge.release.set()
    await after.granted.wait()
    after.release.set()
    await asyncio.gather(small.task, huge.task, after.task)
    assert budget.in_use == 0


async def test_nothing_to_reserve_never_queues_behind_waiters() -> None:
    budget = ImageBudget(100)
    log: list[str] = []
    full = Holder(budget, 100, log, "full")
    waiting = Holder(budget, 50, log, "waiting")
    await settle()
    async with budget.reserve(0) as reserved:  # a turn without attachments
        assert reserved == 0
    assert budget.waiting == 1
    full.release.set()
    await waiting.granted.wait()
    waiting.release.set()
    await asyncio.gather(full.task, waiting.task)


async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_one_in() -> None:
    budget = ImageBudget(100)
    log: list[str] = []
    first = Holder(budget, 70, log, "first")
    await settle()
    blocked = Holder(budget, 60, log, "blocked")  # head of the queue
    await settle()
    behind = Holder(budget, 30, log, "behind")  # fits, but waits behind "blocked"
    await settle()
    assert log == ["first"] and budget.waiting == 2
    blocked.task.cancel()
    await behind.granted.wait()  # the head left: the next in line fits at once
    assert log == ["first", "behind"] and budget.in_use == 100 and budget.waiting == 0
    with pytest.raises(asyncio.CancelledError):
        await blocked.task
    first.release.set()
    behind.release.set()
    await asyncio.gather(first.task, behind.task)
    assert budget.in_use == 0


async def test_a_waiter_cancelled_just_as_it_is_granted_gives_the_bytes_back() -> None:
    budget = ImageBudget(100)
    log: list[str] = []
    async with budget.reserve(100):
        granted_late = Holder(budget, 100, log, "late")
        after = Holder(budget, 100, log, "after")
        await settle()
        assert budget.waiting == 2
    # Leaving the block granted "late" its bytes; its task has not run yet. Cancel it now.
    assert budget.in_use == 100 and budget.waiting == 1
    granted_late.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await granted_late.task
    await after.granted.wait()  # the bytes passed on instead of leaking
    assert log == ["after"]
    after.release.set()
    await after.task
    assert budget.in_use == 0


async def test_a_failure_inside_the_reservation_releases_it() -> None:
    budget = ImageBudget(10)
    with pytest.raises(RuntimeError):
        async with budget.reserve(10):
            raise RuntimeError("decode failed")
    assert budget.in_use == 0


def test_one_setting_splits_into_the_two_pools() -> None:
    memory = ImageMemory.of(256 * 1024 * 1024)
    assert memory.turns.capacity == memory.decodes.capacity == 128 * 1024 * 1024
    with pytest.raises(ValueError):
        ImageBudget(0)


def test_a_turn_counts_each_file_with_its_copies_and_unknown_sizes_as_the_largest() -> None:
    assert turn_bytes([1000, None], max_file_bytes=20) == SEND_COPIES * 1020
    assert turn_bytes([], max_file_bytes=20) == 0


class RecordingBudget(ImageBudget):
    """An ImageBudget that says when someone asks it for room, and how much."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.asked: list[int] = []
        self.asking = asyncio.Event()

    async def _acquire(self, weight: int) -> None:
        self.asked.append(weight)
        self.asking.set()
        await super()._acquire(weight)


async def test_a_decode_waits_for_room_reserved_from_the_header_before_any_pixel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []
    real_load = PngImagePlugin.PngImageFile.load

    def counting_load(self: PngImagePlugin.PngImageFile) -> Any:
        loads.append("png")
        return real_load(self)

    # A probe on the real decoder: reading the EXIF orientation of a PNG decodes it whole.
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", counting_load)
    budget = RecordingBudget(512 * 1024 * 1024)
    data = make.png(4000, 3000)  # 12 megapixels of one colour: a small file, a large decode
    async with budget.reserve(budget.capacity):
        budget.asking.clear()
        work = asyncio.create_task(prepare_image_async(data, "wide.png", ImageLimits(), budget))
        await budget.asking.wait()
        await settle()
        assert not work.done() and budget.waiting == 1
        assert loads == []  # not one pixel decoded while waiting
        # The full-size RGB pixels (4 bytes each in Pillow), a resize, nothing yet decoded.
        assert budget.asked[-1] >= 4000 * 3000 * 4
    prepared = await work
    assert loads and (prepared.width, prepared.height) == (3072, 2304)
    assert budget.in_use == 0


async def test_a_rejected_header_never_asks_for_room() -> None:
    budget = RecordingBudget(1024)
    with pytest.raises(ImageRejected) as info:
        await prepare_image_async(make.bomb_png(20_000, 20_000), "bomb.png", ImageLimits(), budget)
    assert info.value.reason == "too_many_pixels"
    assert budget.asked == []


# --- the service: a turn's files are reserved from before the download until its reply --------


def held_ref(name: str, gate: asyncio.Event, log: list[str], fake: FakeGemini) -> ImageRef:
    """A 2 MB attachment whose download starts (logged with the Gemini requests made so far)
    and then waits for ``gate``."""

    async def load() -> bytes:
        log.append(f"{name} after {len(fake.requests)} requests")
        await gate.wait()
        return make.png(64, 48)

    return ImageRef(name, "image/png", 2 * 1024 * 1024, load)


@pytest.mark.parametrize(("memory_mb", "together"), [("16", False), ("256", True)])
async def test_turns_whose_files_do_not_fit_together_run_one_after_another(
    fake_gemini: FakeGemini, tmp_path: Path, memory_mb: str, together: bool
) -> None:
    # 16 MB: 8 MB for files turns hold; each turn holds 3 x 2 MB, so only one fits at a time.
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env={"IMAGE_MEMORY_MB": memory_mb}).start()
    step = core.service._pipeline._step  # where turns take their image memory
    memory = step._memory
    turns = RecordingBudget(memory.turns.capacity)
    step._memory = ImageMemory(turns, memory.decodes)
    log: list[str] = []
    gate = asyncio.Event()
    keys = [ConversationKey("console", "local", "terminal", f"t{i}") for i in range(2)]
    try:
        first = asyncio.create_task(core.say("one", held_ref("a.png", gate, log, fake_gemini), key=keys[0]))
        await turns.asking.wait()
        turns.asking.clear()
        await settle()
        assert log == ["a.png after 0 requests"]
        second = asyncio.create_task(core.say("two", held_ref("b.png", gate, log, fake_gemini), key=keys[1]))
        await turns.asking.wait()
        await settle()
        if together:
            assert log[1:] == ["b.png after 0 requests"]
        else:
            assert log[1:] == [] and turns.waiting == 1
        gate.set()
        results = await asyncio.gather(first, second)
    finally:
        await core.stop()
    assert [r.status for r, _ in results] == [TurnStatus.ANSWERED, TurnStatus.ANSWERED]
    # Alone, b's download starts only once a's turn has had its answer from Gemini.
    assert log[1] == ("b.png after 0 requests" if together else "b.png after 1 requests")
    assert turns.in_use == 0


async def test_a_cancelled_decode_keeps_its_room_until_the_worker_lets_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, proceed = threading.Event(), threading.Event()
    real = images._decode_and_convert

    def held_decode(*args: Any) -> Any:
        started.set()
        proceed.wait(10)
        return real(*args)

    monkeypatch.setattr(images, "_decode_and_convert", held_decode)
    budget = ImageBudget(512 * 1024 * 1024)
    work = asyncio.create_task(prepare_image_async(make.png(400, 300), "a.png", ImageLimits(), budget))
    await asyncio.to_thread(started.wait, 10)
    reserved = budget.in_use
    assert reserved > 0
    work.cancel()
    await settle()
    assert not work.done() and budget.in_use == reserved  # the thread still holds the pixels
    proceed.set()
    with pytest.raises(asyncio.CancelledError):
        await work
    assert budget.in_use == 0
