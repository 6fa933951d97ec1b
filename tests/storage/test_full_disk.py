"""SQLite on a disk that fills up: one sentence per message, nothing half-written, and the bot
keeps serving once space is back (a real, full tmpfs, not a mocked error)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.entry.service import TurnStatus
from bot.text import messages
from bot.vocabulary import Turn
from tests.auxil import fake_gemini as fg
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.fake_gemini import FakeGemini, RecordedRequest
from tests.auxil.sinks import RecordingSink
from tests.auxil.small_disk import SmallDisk, small_disk
from tests.auxil.waiting import settled


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


async def start_core(fake: FakeGemini, disk: SmallDisk, outage_s: int) -> Core:
    return await Core(fake, disk.root / "bot.sqlite3", env={"DATABASE_OUTAGE_S": str(outage_s)}).start()


@pytest.fixture
async def core_on(fake_gemini: FakeGemini, disk: SmallDisk) -> AsyncIterator[list[Core]]:
    started: list[Core] = []
    yield started
    for core in started:
        await core.stop()


async def fill(core: Core, disk: SmallDisk) -> None:
    # The write-ahead log is emptied first: SQLite reuses its space, so a full disk only stops
    # writes once the log has to grow.
    await core.store.checkpoint()
    await asyncio.to_thread(disk.fill)


async def sound(core: Core) -> None:
    assert await core.store.integrity_check() == ["ok"]


async def test_a_full_disk_gets_one_sentence_per_message_and_nothing_half_written(
    fake_gemini: FakeGemini, disk: SmallDisk, core_on: list[Core]
) -> None:
    core = await start_core(fake_gemini, disk, outage_s=1)
    core_on.append(core)
    await fill(core, disk)

    result, sink = await core.say("a red bicycle at dawn", message_id="m1")

    assert result.status is TurnStatus.FAILED
    assert [(kind, getattr(r, "text", r)) for kind, r in sink.events] == [
        ("send", messages.STORAGE_UNREACHABLE)
    ]
    assert fake_gemini.requests == []  # nothing was drawn, nothing billed
    disk.free()
    await sound(core)
    assert await core.store.history(KEY) == []
    assert await core.store.unfinished_messages("console", 0) == []
    # Not taken: the same message sent again is answered (it was never claimed).
    again, sink = await core.say("a red bicycle at dawn", message_id="m1")
    assert again.status is TurnStatus.ANSWERED and len(sink.replies) == 1 and sink.last.images


async def test_space_freed_while_a_message_waits_answers_it_once(
    fake_gemini: FakeGemini, disk: SmallDisk, core_on: list[Core]
) -> None:
    core = await start_core(fake_gemini, disk, outage_s=60)
    core_on.append(core)
    await fill(core, disk)

    waiting = asyncio.create_task(core.say("a red bicycle at dawn", message_id="m1"))
    assert await settled(lambda: core.service.store.patience.held > 0)  # held, not refused
    await asyncio.sleep(0.3)
    assert not waiting.done()
    disk.free()
    result, sink = await asyncio.wait_for(waiting, 10)

    assert result.status is TurnStatus.ANSWERED
    assert [kind for kind, _ in sink.events if kind == "send"] == ["send"]
    assert sink.last.images and not sink.last.is_error
    assert len(fake_gemini.requests) == 1
    await sound(core)
    assert len(await core.store.history(KEY)) == 1


async def test_a_disk_that_fills_while_the_image_is_drawn_still_delivers_the_paid_image_once(
    fake_gemini: FakeGemini, disk: SmallDisk, core_on: list[Core]
) -> None:
    core = await start_core(fake_gemini, disk, outage_s=1)
    core_on.append(core)
    drawn = fg.image()

    async def fill_then_answer(fake: FakeGemini, rec: RecordedRequest, req: object) -> object:
        await fill(core, disk)
        return await drawn.respond(fake, rec, req)  # type: ignore[arg-type]

    fake_gemini.enqueue(fg.Behaviour("fill the disk", fill_then_answer))

    result, sink = await core.say("a red bicycle at dawn", message_id="m1")

    assert result.status is TurnStatus.ANSWERED and result.turn_id is None
    assert len(sink.replies) == 1
    reply = sink.last
    assert reply.images and reply.text.startswith(messages.NOT_SAVED)
    assert reply.actions == ()  # no controls: they would point at no stored turn
    disk.free()
    await sound(core)
    assert await core.store.history(KEY) == []  # nothing half-written
    # The claim's finish waited in the background for the space: no "restarted" notice later.
    assert await settled(lambda: _unfinished(core, []), 10)
    follow, sink = await core.say("now as a watercolor", message_id="m2")
    assert follow.status is TurnStatus.ANSWERED and len(sink.replies) == 1


async def test_a_disk_that_fills_once_the_reply_is_posted_costs_no_second_sentence(
    fake_gemini: FakeGemini, disk: SmallDisk, core_on: list[Core]
) -> None:
    core = await start_core(fake_gemini, disk, outage_s=1)
    core_on.append(core)

    class FillingSink(RecordingSink):
        async def send(self, reply: object) -> list[str]:
            posted = await super().send(reply)  # type: ignore[arg-type]
            await fill(core, disk)  # everything after the post finds the disk full
            return posted

    result, sink = await core.say("a red bicycle at dawn", message_id="m1", sink=FillingSink())

    assert result.status is TurnStatus.ANSWERED
    assert len(sink.replies) == 1 and sink.last.images and not sink.last.is_error
    assert await core.store.unfinished_messages("console", 0) != []  # its finish is waiting
    disk.free()
    assert await settled(lambda: _unfinished(core, []), 10)
    await sound(core)
    # Replying to the posted image still continues from it: the posted id was recorded later.
    posted = [f"posted-{n}" for n, (kind, _) in enumerate(sink.events, start=1) if kind == "send"]
    assert await settled(lambda: _shown_by(core, posted[0]), 10)


async def _unfinished(core: Core, expected: list[object]) -> bool:
    return await core.store.unfinished_messages("console", 0) == expected


async def _shown_by(core: Core, message_id: str) -> bool:
    return await core.store.turn_for_message("console", KEY.channel, message_id) is not None


async def test_the_second_delivery_of_a_message_stays_quiet_when_neither_can_be_taken(
    fake_gemini: FakeGemini, disk: SmallDisk, core_on: list[Core]
) -> None:
    # Slack delivers a mention twice (app_mention and message), possibly to two processes: when
    # the database cannot say which copy is the turn, only one copy may say so.
    core = await start_core(fake_gemini, disk, outage_s=1)
    core_on.append(core)
    await fill(core, disk)
    echo = Turn(key=KEY, message_id="m1", author=ALICE, text="a red bicycle", echo=True)
    copy = Turn(key=KEY, message_id="m1", author=ALICE, text="a red bicycle")
    quiet, told = RecordingSink(), RecordingSink()

    results = await asyncio.gather(
        core.service.handle_turn(echo, quiet), core.service.handle_turn(copy, told)
    )

    assert [r.status for r in results] == [TurnStatus.FAILED, TurnStatus.FAILED]
    assert quiet.events == []
    assert [r.text for r in told.replies] == [messages.STORAGE_UNREACHABLE]
