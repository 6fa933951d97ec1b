"""The core's side of the editor across processes: a page whose poll reaches another process of
the deployment than the one that took the edit still sees how it ended, and its result image."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

from bot.editing.desk import RegionDesk
from bot.editing.records import EditProgress, EditState, RegionEdit
from bot.text import editor_words
from bot.vocabulary import ConversationKey
from tests.auxil.core import KEY, Core
from tests.auxil.fake_gemini import FakeGemini, prompt_blocked
from tests.auxil.sinks import RecordingSink
from tests.auxil.waiting import settled


def painted_mask() -> bytes:
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(mask).rectangle((8, 8, 40, 40), fill=(255, 0, 0, 255))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


async def edited(core: Core, sink: RecordingSink, turn_id: int, instruction: str) -> tuple[RegionDesk, str]:
    """Submit a region edit of ``turn_id`` through the process's desk; returns it and the link id."""
    assert core.editor is not None
    desk = core.editor.desk
    sinks = {KEY.platform: sink}

    def thread_sinks(key: ConversationKey, person: str) -> RecordingSink | None:
        return sinks.get(key.platform)

    desk.serve(KEY.platform, thread_sinks)
    token = (await core.editor.links.issue(KEY, turn_id, "alice")).rsplit("/", 1)[-1]
    grant = await core.editor.links.use(token, person="alice")
    await desk.submit(RegionEdit(grant, painted_mask(), instruction))
    return desk, token


async def ended(desk: RegionDesk, core: Core, token: str) -> EditProgress:
    assert core.editor is not None
    grant = await core.editor.links.submitted(token)

    async def progress() -> EditProgress:
        return await desk.progress(grant)

    await settled(lambda: _done(progress))
    return await progress()


async def _done(progress: object) -> bool:
    return (await progress()).state is not EditState.PENDING  # type: ignore[operator]


async def test_another_process_shows_the_finished_edit_and_its_image(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await Core(
        fake_gemini, tmp_path / "bot.sqlite3", env={"PUBLIC_URL": "https://bot.example"}
    ).start()
    try:
        first, _ = await core.say("a lighthouse at dusk")
        assert first.turn_id is not None
        sink = RecordingSink()
        taker, token = await edited(core, sink, first.turn_id, "a red umbrella")
        here = await ended(taker, core, token)
        # Another process of the deployment: the same database, nothing in its memory.
        elsewhere = RegionDesk(core.store, core.service.run)
        grant = await core.editor.links.submitted(token)  # type: ignore[union-attr]
        there = await elsewhere.progress(grant)
        assert here.state is there.state is EditState.DONE
        assert there.message == editor_words.EDIT_READY
        [posted] = [reply for reply in sink.replies if reply.images]
        assert here.image is not None and there.image is not None
        assert there.image.data == here.image.data == posted.images[0].data
        assert there.image.mime_type == posted.images[0].mime_type
    finally:
        await core.stop()


async def test_another_process_shows_a_failed_edit_with_its_sentence(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await Core(
        fake_gemini, tmp_path / "bot.sqlite3", env={"PUBLIC_URL": "https://bot.example"}
    ).start()
    try:
        first, _ = await core.say("a lighthouse at dusk")
        assert first.turn_id is not None
        fake_gemini.enqueue(prompt_blocked())
        taker, token = await edited(core, RecordingSink(), first.turn_id, "a red umbrella")
        here = await ended(taker, core, token)
        elsewhere = RegionDesk(core.store, core.service.run)
        there = await elsewhere.progress(await core.editor.links.submitted(token))  # type: ignore[union-attr]
        assert here.state is there.state is EditState.FAILED
        assert there.message == here.message and there.image is None
    finally:
        await core.stop()


async def test_an_edit_still_running_is_pending_everywhere(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core = await Core(
        fake_gemini, tmp_path / "bot.sqlite3", env={"PUBLIC_URL": "https://bot.example"}
    ).start()
    try:
        first, _ = await core.say("a lighthouse at dusk")
        assert first.turn_id is not None and core.editor is not None
        token = (await core.editor.links.issue(KEY, first.turn_id, "alice")).rsplit("/", 1)[-1]
        await core.editor.links.use(token, person="alice")
        elsewhere = RegionDesk(core.store, core.service.run)
        waiting = await elsewhere.progress(await core.editor.links.submitted(token))
        assert (waiting.state, waiting.message) == (EditState.PENDING, editor_words.EDIT_WAITING)
    finally:
        await core.stop()
