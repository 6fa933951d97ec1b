"""The conversation core end to end: real store, real google-genai SDK, fake Gemini on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from bot.entry.service import (
    EMPTY_PROMPT_MESSAGE,
    FAILED_MESSAGE,
    QUEUED_MESSAGE,
    UNKNOWN_TURN_MESSAGE,
    AttachmentUnavailable,
    TurnStatus,
)
from bot.logs import configure_logging
from bot.turns.request import TurnRequest
from bot.vocabulary import (
    ActionKind,
    ConversationKey,
    ImagePart,
    SettingName,
    SettingScope,
    TextPart,
)
from tests.auxil import fake_gemini as fg
from tests.auxil import image_factory as img
from tests.auxil.core import ALICE, KEY, Core, bytes_ref, failing_ref
from tests.auxil.engines import both_engines, interactions  # noqa: F401  (engine_api: each engine)
from tests.auxil.sinks import RecordingSink


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


async def test_first_turn_posts_text_and_image_in_order_and_stores_the_turn(core: Core) -> None:
    result, sink = await core.say("a red bicycle at dawn")
    assert result.status is TurnStatus.ANSWERED
    reply = sink.last
    assert [type(p) for p in reply.parts] == [TextPart, ImagePart]
    assert reply.images[0].mime_type == "image/png"
    assert reply.images[0].data == core.fake.requests[0].response_images[0].data
    assert [a.kind for a in reply.actions] == [
        ActionKind.REGENERATE,
        ActionKind.VARIATIONS,
        ActionKind.ASPECT_RATIO,
        ActionKind.MODEL,
        ActionKind.ZOOM,
        ActionKind.PAN,
        ActionKind.FORGET,
    ]
    assert all(a.turn_id == reply.turn_id for a in reply.actions)
    # The working indicator wraps the whole turn, and the reply is posted while it shows.
    kinds = [k for k, _ in sink.events]
    assert kinds == ["working", "send", "working"]
    history = await core.store.history(KEY)
    assert [t.id for t in history] == [reply.turn_id]
    assert history[0].author_id == ALICE.id
    assert history[0].usage.images_generated == 1


async def test_thought_parts_are_stored_but_never_shown(core: Core) -> None:
    _, sink = await core.say("a lighthouse")
    shown = " ".join(p.text for p in sink.last.parts if isinstance(p, TextPart))
    stored = (await core.store.history(KEY))[0].model_content
    thoughts = [p for p in stored["parts"] if p.get("thought")]
    assert thoughts, "the fake sends a thought part; it must be kept in history"
    assert all(t["text"] not in shown for t in thoughts)


async def test_refinement_resends_history_with_signatures_byte_identical(core: Core) -> None:
    await core.say("a red bicycle")
    await core.say("make the sky warmer")
    first, second = core.fake.requests
    assert len(second.contents) == 3
    assert second.signatures() == first.response_signatures
    assert second.images[1] == first.response_images[-1:]
    assert second.prompt == "make the sky warmer"


async def test_history_survives_a_restart_byte_for_byte(core: Core) -> None:
    await core.say("a red bicycle")
    await core.restart()
    await core.say("now as a watercolor")
    first, second = core.fake.requests
    assert second.signatures() == first.response_signatures
    assert second.images[1][0].data == first.response_images[-1].data


async def test_same_message_delivered_twice_generates_once(core: Core) -> None:
    results = await asyncio.gather(core.say("a fox", message_id="m-1"), core.say("a fox", message_id="m-1"))
    statuses = sorted(r.status for r, _ in results)
    assert statuses == [TurnStatus.ANSWERED, TurnStatus.DUPLICATE]
    assert len(core.fake.requests) == 1
    await core.restart()
    again, sink = await core.say("a fox", message_id="m-1")
    assert again.status is TurnStatus.DUPLICATE and sink.events == []


async def test_turns_in_one_conversation_are_serial_and_queued_turns_say_so(core: Core) -> None:
    core.fake.latency_s = 0.2
    sinks = [RecordingSink() for _ in range(3)]
    first = asyncio.create_task(core.say("one", sink=sinks[0]))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(core.say(t, sink=s)) for t, s in (("two", sinks[1]), ("three", sinks[2]))]
    await asyncio.gather(first, *rest)
    assert sinks[0].notices == []
    assert sinks[1].notices == [QUEUED_MESSAGE] and sinks[2].notices == [QUEUED_MESSAGE]
    prompts = [r.prompt for r in core.fake.requests]
    assert prompts == ["one", "two", "three"]
    # Each turn saw every earlier turn: 1, 3 and 5 contents.
    assert [len(r.contents) for r in core.fake.requests] == [1, 3, 5]


async def test_different_conversations_run_concurrently(core: Core) -> None:
    keys = [ConversationKey("console", "local", "terminal", f"t{i}") for i in range(20)]
    in_flight = 0
    peak = 0
    all_in = asyncio.Event()
    original = core.engine.generate

    async def counting(request):  # type: ignore[no-untyped-def]
        # Each call waits until all 20 are in flight: if the core ran them one after another,
        # the first would wait alone and the wait would time out, whatever the machine's load.
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == len(keys):
            all_in.set()
        try:
            async with asyncio.timeout(20):
                await all_in.wait()
            return await original(request)
        finally:
            in_flight -= 1

    core.engine.generate = counting  # type: ignore[method-assign]
    results = await asyncio.gather(*(core.say("a cat", key=k) for k in keys))
    assert all(r.status is TurnStatus.ANSWERED for r, _ in results)
    assert peak == 20


async def test_blocked_image_is_explained_and_history_is_unchanged(core: Core) -> None:
    await core.say("a kite")
    before = await core.store.history(KEY)
    core.fake.enqueue(fg.finish("IMAGE_SAFETY"))
    result, sink = await core.say("something unsafe")
    assert result.status is TurnStatus.FAILED
    assert sink.last.is_error
    assert sink.last.text == "Gemini withheld the image for safety reasons; try rephrasing the prompt."
    assert await core.store.history(KEY) == before


async def test_prompt_blocked_is_explained(core: Core) -> None:
    core.fake.enqueue(fg.prompt_blocked("PROHIBITED_CONTENT"))
    _, sink = await core.say("forbidden")
    assert sink.last.text == "Gemini blocked this prompt as prohibited content; try a different request."
    assert await core.store.conversation(KEY) is None


async def test_text_only_answer_is_posted_and_kept(core: Core) -> None:
    core.fake.enqueue(fg.text_only("Which bicycle do you mean?"))
    result, sink = await core.say("the bicycle")
    assert result.status is TurnStatus.ANSWERED
    assert sink.last.text == "Which bicycle do you mean?"
    assert sink.last.images == ()
    assert [a.kind for a in sink.last.actions] == [ActionKind.FORGET]
    assert len(await core.store.history(KEY)) == 1


async def test_storyboard_keeps_the_models_order(core: Core) -> None:
    core.fake.enqueue(fg.storyboard(steps=3))
    _, sink = await core.say("show me how to bake macarons with images")
    assert [type(p).__name__ for p in sink.last.parts] == ["TextPart", "ImagePart"] * 3


async def test_interrupted_turn_leaves_history_unchanged_and_the_thread_continues(core: Core) -> None:
    await core.say("a boat")
    before = await core.store.history(KEY)
    core.fake.enqueue(fg.delay(5.0))
    task = asyncio.create_task(core.say("a bigger boat"))
    await core.fake.wait_for_requests(2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await core.store.history(KEY) == before
    result, _ = await core.say("a boat at night")
    assert result.status is TurnStatus.ANSWERED
    assert len(core.fake.requests[-1].contents) == 3


async def test_a_turn_cut_off_is_reported_once_after_a_restart(core: Core) -> None:
    await core.say("a boat", message_id="done")
    core.fake.enqueue(fg.finish("IMAGE_SAFETY"))
    await core.say("blocked", message_id="failed")
    await core.say("", message_id="rejected")
    core.fake.enqueue(fg.delay(5.0))
    task = asyncio.create_task(core.say("a bigger boat", message_id="cut"))
    await core.fake.wait_for_requests(3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await core.restart()
    told: list[tuple[ConversationKey, str]] = []

    async def tell(key: ConversationKey, message_id: str) -> None:
        told.append((key, message_id))

    assert await core.service.announce_interrupted("console", tell) == 1
    assert told == [(KEY, "cut")]
    assert await core.service.announce_interrupted("console", tell) == 0
    assert await core.service.announce_interrupted("discord", tell) == 0
    await core.restart()
    assert await core.service.announce_interrupted("console", tell) == 0  # told once, for good
    assert told == [(KEY, "cut")]


async def test_a_cut_off_turn_whose_notice_never_went_out_is_told_after_the_next_restart(core: Core) -> None:
    core.fake.enqueue(fg.delay(5.0))
    task = asyncio.create_task(core.say("a bigger boat", message_id="cut"))
    await core.fake.wait_for_requests(1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await core.restart()

    async def dies_while_telling(key: ConversationKey, message_id: str) -> None:
        raise asyncio.CancelledError  # the process is stopped before the notice is posted

    with pytest.raises(asyncio.CancelledError):
        await core.service.announce_interrupted("console", dies_while_telling)
    await core.restart()
    told: list[str] = []

    async def tell(key: ConversationKey, message_id: str) -> None:
        told.append(message_id)

    assert await core.service.announce_interrupted("console", tell) == 1
    assert told == ["cut"]


async def test_inline_aspect_flag_sets_the_thread_and_reaches_gemini(core: Core) -> None:
    await core.say("a wide valley --ar 16:9")
    await core.say("add a river")
    assert [r.aspect_ratio for r in core.fake.requests] == ["16:9", "16:9"]
    assert core.fake.requests[0].prompt == "a wide valley"
    width, height = size_of(core.fake.requests[0].response_images[-1].data)
    assert width > height


async def test_invalid_flag_lists_valid_ratios_and_does_not_generate(core: Core) -> None:
    result, sink = await core.say("a valley --ar 5:7")
    assert result.status is TurnStatus.REJECTED
    assert sink.last.text == (
        "5:7 is not an aspect ratio gemini-2.5-flash-image supports; use one of "
        "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9."
    )
    assert core.fake.requests == []


async def test_flag_alone_confirms_the_setting(core: Core) -> None:
    result, sink = await core.say("--ar 9:16")
    assert result.status is TurnStatus.SETTINGS_ONLY
    assert sink.last.text == "This conversation now uses aspect ratio 9:16; send a prompt to make an image."
    assert (await core.service.effective_settings(KEY)).aspect_ratio == "9:16"
    assert core.fake.requests == []


async def test_empty_prompt_gets_a_hint(core: Core) -> None:
    _, sink = await core.say("   ")
    assert sink.last.text == EMPTY_PROMPT_MESSAGE
    assert core.fake.requests == []


async def test_settings_thread_over_channel_over_global(core: Core) -> None:
    await core.service.change_setting(SettingScope.everywhere(), SettingName.ASPECT_RATIO, "3:2")
    other = ConversationKey("console", "local", "terminal", "other")
    await core.service.change_setting(SettingScope.for_channel(KEY), SettingName.ASPECT_RATIO, "4:3")
    await core.service.change_setting(SettingScope.for_thread(KEY), SettingName.ASPECT_RATIO, "21:9")
    await core.say("thread", key=KEY)
    await core.say("channel", key=other)
    await core.say("global", key=ConversationKey("console", "local", "elsewhere", "x"))
    assert [r.aspect_ratio for r in core.fake.requests] == ["21:9", "4:3", "3:2"]


async def test_image_only_mode_asks_for_images_only(core: Core) -> None:
    message = await core.service.change_setting(
        SettingScope.for_thread(KEY), SettingName.RESPONSE_MODE, "image"
    )
    assert message == "Replies are now images only for this conversation."
    await core.say("a lamp")
    assert core.fake.requests[0].response_modalities == ["IMAGE"]


async def test_default_mode_asks_for_text_and_image(core: Core) -> None:
    await core.say("a lamp")
    assert core.fake.requests[0].response_modalities == ["TEXT", "IMAGE"]


async def test_image_size_is_sent_only_for_models_with_sizes(
    fake_gemini: fg.FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    env = {"GEMINI_MODEL": "gemini-3-pro-image-preview", "GEMINI_API": engine_api}
    core = await Core(fake_gemini, tmp_path / "db.sqlite3", env).start()
    try:
        await core.say("a map --size 2k")
        assert core.fake.requests[0].image_size == "2K"
    finally:
        await core.stop()


async def test_attached_photo_is_sent_inline_before_the_prompt(core: Core) -> None:
    photo = img.jpeg(640, 480)
    await core.say("make it blue", bytes_ref("photo.jpg", photo))
    request = core.fake.requests[0]
    assert request.images[0] == [fg.InlineImage("image/jpeg", photo)]
    parts = request.contents[0]["parts"]
    assert "inlineData" in parts[0] or "inline_data" in parts[0]
    assert parts[-1]["text"] == "make it blue"


async def test_photo_only_turn_is_allowed(core: Core) -> None:
    result, _ = await core.say("", bytes_ref("photo.png", img.png(64, 64)))
    assert result.status is TurnStatus.ANSWERED


async def test_same_photo_twice_is_stored_once(core: Core) -> None:
    photo = img.png(300, 200)
    await core.say("one", bytes_ref("a.png", photo))
    await core.say("two", bytes_ref("b.png", photo))
    with sqlite3.connect(core.db_path) as db:
        rows = db.execute("SELECT sha256, length(data) FROM blobs").fetchall()
    images = [photo, *(r.response_images[-1].data for r in core.fake.requests)]
    assert dict(rows) == {hashlib.sha256(d).hexdigest(): len(d) for d in images}
    assert len(rows) == 3


async def test_too_many_photos_are_refused(core: Core) -> None:
    refs = [bytes_ref(f"p{i}.png", img.png(32, 32)) for i in range(4)]
    _, sink = await core.say("combine these", *refs)
    assert sink.last.text == (
        "You attached 4 images; gemini-2.5-flash-image takes at most 3 per turn. Attach fewer and try again."
    )
    assert core.fake.requests == []


async def test_declared_oversize_photo_is_refused_before_download(core: Core) -> None:
    async def never() -> bytes:
        raise AssertionError("an oversized file must not be downloaded")

    from bot.vocabulary import ImageRef

    ref = ImageRef("huge.jpg", "image/jpeg", 25 * 1024 * 1024, never)
    _, sink = await core.say("edit", ref)
    assert sink.last.text == "huge.jpg is larger than 20 MB; attach a smaller image."


async def test_bad_photos_are_refused_with_their_message(core: Core) -> None:
    cases = {
        "notes.png": (
            b"hello, this is text",
            "notes.png is not an image; attach a PNG, JPEG, WebP or HEIC photo.",
        ),
        "empty.png": (b"", "empty.png is empty (0 bytes); attach the image again."),
        "cut.png": (
            img.png(200, 200)[:300],
            "cut.png could not be read (the file is damaged or incomplete); attach it again.",
        ),
        "drawing.svg": (
            img.svg_bytes(),
            "drawing.svg is an SVG drawing, not a photo; export it as PNG and attach that.",
        ),
    }
    for name, (data, message) in cases.items():
        _, sink = await core.say("edit", bytes_ref(name, data, declared_size=None))
        assert sink.last.text == message, name
    assert core.fake.requests == []
    assert await core.store.conversation(KEY) is None


async def test_download_failure_is_explained(core: Core) -> None:
    _, sink = await core.say("edit", failing_ref("photo.png", ConnectionResetError()))
    assert sink.last.text == "I couldn't download photo.png; attach it again."
    _, sink = await core.say(
        "edit", failing_ref("x.png", AttachmentUnavailable("x.png expired; attach it again."))
    )
    assert sink.last.text == "x.png expired; attach it again."


async def test_continue_from_an_earlier_image_branches(core: Core) -> None:
    first, _ = await core.say("a house")
    await core.say("paint it red")
    branched, _ = await core.say("paint it green instead", continue_from=first.turn_id)
    request = core.fake.requests[-1]
    assert len(request.contents) == 3  # the first turn, then the new prompt
    assert request.contents[0]["parts"][-1]["text"] == "a house"
    head = await core.store.history(KEY)
    assert [t.id for t in head] == [first.turn_id, branched.turn_id]


async def test_continue_from_a_turn_of_another_conversation_is_refused(core: Core) -> None:
    other = ConversationKey("console", "local", "terminal", "other")
    foreign, _ = await core.say("a tree", key=other)
    _, sink = await core.say("edit it", continue_from=foreign.turn_id)
    assert sink.last.text == UNKNOWN_TURN_MESSAGE


async def test_regenerate_makes_a_sibling_at_a_new_ratio(core: Core) -> None:
    first, _ = await core.say("a bridge")
    second, _ = await core.say("at night")
    sink = RecordingSink()
    request = TurnRequest.regenerate(KEY, second.turn_id, ALICE, "interaction-1", aspect_ratio="21:9")
    result = await core.service.run(request, sink)
    request = core.fake.requests[-1]
    assert request.prompt == "at night" and request.aspect_ratio == "21:9"
    assert len(request.contents) == 3
    stored = await core.store.turn(result.turn_id)
    assert stored is not None and stored.parent_id == first.turn_id
    again = await core.service.run(
        TurnRequest.regenerate(KEY, second.turn_id, ALICE, "interaction-1"), RecordingSink()
    )
    assert again.status is TurnStatus.DUPLICATE


async def test_context_budget_bounds_images_sent(core: Core, engine_api: str) -> None:
    for n in range(6):
        await core.say(f"variation {n}")
    sent_images = [len(r.all_images) for r in core.fake.requests]
    if interactions(engine_api):
        # Server-side history keeps every image of the branch: the model sees them all (and
        # bills them as input tokens) while each request uploads only the new prompt.
        assert [r.sent_images for r in core.fake.requests] == [0] * 6
        assert sent_images == [0, 1, 2, 3, 4, 5]
    else:
        assert sent_images == [0, 1, 2, 3, 3, 3]
    assert len(await core.store.history(KEY)) == 6


async def test_storyboard_over_budget_reseeds_from_latest_images(core: Core) -> None:
    core.fake.enqueue(fg.storyboard(steps=4))
    await core.say("a storyboard")
    await core.say("redo the last panel in blue")
    request = core.fake.requests[-1]
    assert len(request.contents) == 1
    assert request.all_images == core.fake.requests[0].response_images[-3:]


async def test_forget_deletes_the_thread_and_the_next_turn_starts_fresh(core: Core) -> None:
    await core.say("a tower")
    assert await core.service.forget(KEY) == 1
    assert await core.store.conversation(KEY) is None
    await core.say("a new tower")
    assert len(core.fake.requests[-1].contents) == 1


async def test_rate_limit_waits_the_servers_delay_then_answers(core: Core) -> None:
    core.fake.enqueue(fg.rate_limited("3s"))
    result, _ = await core.say("a fox")
    assert result.status is TurnStatus.ANSWERED
    assert core.sleeps == [3.0]


async def test_daily_quota_is_explained_without_retrying(core: Core) -> None:
    core.fake.enqueue(fg.quota_exhausted())
    _, sink = await core.say("a fox")
    assert (
        sink.last.text
        == "Today's Gemini image quota for this bot is used up; it resets at midnight Pacific time."
    )
    assert len(core.fake.requests) == 1


async def test_server_errors_are_retried_then_answered(core: Core) -> None:
    core.fake.enqueue(fg.error(503, "UNAVAILABLE", "overloaded"), fg.error(503, "UNAVAILABLE", "overloaded"))
    result, _ = await core.say("a fox")
    assert result.status is TurnStatus.ANSWERED
    assert len(core.fake.requests) == 3


async def test_invalid_key_is_explained(fake_gemini: fg.FakeGemini, tmp_path: Path, engine_api: str) -> None:
    env = {"GEMINI_API_KEY": fg.BAD_KEY, "GEMINI_API": engine_api}
    core = await Core(fake_gemini, tmp_path / "db.sqlite3", env).start()
    try:
        _, sink = await core.say("a fox")
        assert sink.last.text == (
            "The bot's Gemini API key was rejected; the operator needs to set a valid GEMINI_API_KEY."
        )
    finally:
        await core.stop()


async def test_usage_is_recorded_per_turn(core: Core) -> None:
    await core.say("a fox")
    turn = (await core.store.history(KEY))[0]
    assert turn.usage.output_by_modality.get("IMAGE") == 1290
    assert turn.usage.total_tokens > 0
    total = await core.store.usage_since(0)
    assert total.images_generated == 1


async def test_every_log_line_of_a_turn_names_its_conversation(core: Core) -> None:
    stream = io.StringIO()
    configure_logging("INFO", ["test-key"], stream)
    core.fake.enqueue(fg.error(503, "UNAVAILABLE", "overloaded"))
    await core.say("a fox", message_id="m-42")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    retried = [line for line in lines if line["logger"] == "bot.gemini" and line["level"] == "warning"]
    finished = [line for line in lines if line["message"] == "turn finished"]
    assert retried and finished
    assert {(line["conversation"], line["message_id"]) for line in retried + finished} == {(str(KEY), "m-42")}
    assert finished[0]["turn_id"] == 1
    assert "test-key" not in stream.getvalue()


async def test_a_turn_that_crashes_on_the_database_still_gets_one_sentence(
    core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    await core.say("a boat")

    async def gone(_key: ConversationKey, **_reading: object) -> None:
        raise OSError("the database went away")

    monkeypatch.setattr(core.store, "turn_context", gone)  # the turn's read once it holds its conversation
    result, sink = await core.say("a bigger boat", message_id="crashes")
    assert result.status is TurnStatus.FAILED
    assert [r.text for r in sink.replies] == [FAILED_MESSAGE] and sink.last.is_error
    assert await core.store.unfinished_messages("console", 0) == []  # finished, not left claimed
