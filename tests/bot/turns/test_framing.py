"""Zoom out, pan and region edits as turns of the core, against the fake Gemini: the canvas the
model is sent, the original's pixels kept exactly in the posted result, Regenerate, refusals."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw

from bot.entry.commands import Command, CommandName
from bot.entry.service import TurnStatus
from bot.images import canvas
from bot.text import editor_words, messages
from bot.turns import framing
from bot.turns.request import TurnKind, TurnRequest
from bot.vocabulary import ActionKind, ConversationKey, Position, Reply
from storage.content import user_record
from tests.auxil import fake_gemini as fg
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.engines import both_engines, interactions  # noqa: F401  (engine_api: each engine)
from tests.auxil.sinks import RecordingSink


def _image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


def changed(a: Image.Image, b: Image.Image) -> int:
    """How many pixels differ between two images of one size."""
    assert a.size == b.size
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    return diff.width * diff.height - diff.histogram()[0]


async def _command(
    core: Core, name: CommandName, argument: str = "", turn_id: int | None = None
) -> RecordingSink:
    sink = RecordingSink()
    reply = await core.service.dialogue.run(Command(name, KEY, ALICE, argument, turn_id=turn_id))
    if reply.turn is None:
        await sink.send(Reply.error(reply.text))
        return sink
    await core.service.run(reply.turn, sink)
    return sink


async def _original(core: Core) -> tuple[int, Image.Image]:
    result, sink = await core.say("a red bicycle at dawn")
    assert result.status is TurnStatus.ANSWERED and result.turn_id is not None
    return result.turn_id, _image(sink.replies[-1].images[0].data)


@pytest.mark.parametrize(
    ("name", "argument", "factor"),
    [(CommandName.ZOOM, "2", 2.0), (CommandName.ZOOM, "1.5", 1.5)],
)
async def test_zoom_sends_the_original_centred_on_a_larger_canvas_and_keeps_its_pixels(
    core: Core, name: CommandName, argument: str, factor: float
) -> None:
    _, original = await _original(core)
    sink = await _command(core, name, argument)
    request = core.fake.requests[-1]
    sent = _image(request.images[-1][0].data)
    assert sent.size == (round(original.width * factor), round(original.height * factor))
    left, top = (sent.width - original.width) // 2, (sent.height - original.height) // 2
    box = (left, top, left + original.width, top + original.height)
    assert changed(sent.crop(box), original) == 0
    assert sent.getpixel((0, 0)) == canvas.FILL_GREY
    assert messages.ZOOM_INSTRUCTION in request.prompt
    reply = sink.replies[-1]
    posted = _image(reply.images[0].data)
    assert posted.size == sent.size
    assert changed(posted.crop(box), original) == 0  # the original's area: 0 pixels changed
    assert posted.getpixel((0, 0)) != original.getpixel((0, 0))  # the new area is the model's
    assert {ActionKind.ZOOM, ActionKind.PAN} <= {a.kind for a in reply.actions}


@pytest.mark.parametrize("side", ["left", "right", "up", "down"])
async def test_pan_adds_canvas_on_that_side_and_keeps_the_original_against_the_other(
    core: Core, side: str
) -> None:
    _, original = await _original(core)
    sink = await _command(core, CommandName.PAN, side)
    request = core.fake.requests[-1]
    sent = _image(request.images[-1][0].data)
    expected = canvas.pan(original, canvas.Pan(side), core.service.capabilities.aspect_ratios)
    assert sent.size == expected.request.size
    assert request.aspect_ratio == expected.aspect_ratio
    b = expected.placement
    box = (b.left, b.top, b.left + b.width, b.top + b.height)
    assert changed(sent.crop(box), original) == 0
    assert (side == "left") == (b.left > 0) and (side == "up") == (b.top > 0)
    posted = _image(sink.replies[-1].images[0].data)
    assert changed(posted.crop(box), original) == 0


async def test_regenerate_on_a_zoom_zooms_again_over_the_same_original(core: Core) -> None:
    _, original = await _original(core)
    zoomed = (await _command(core, CommandName.ZOOM, "2")).replies[-1]
    assert zoomed.turn_id is not None
    sink = RecordingSink()
    request = TurnRequest.regenerate(KEY, zoomed.turn_id, ALICE, uuid.uuid4().hex)
    result = await core.service.run(request, sink)
    assert result.status is TurnStatus.ANSWERED
    assert len(core.fake.requests) == 3
    sent = _image(core.fake.requests[-1].images[-1][0].data)
    assert sent.size == (original.width * 2, original.height * 2)
    posted = _image(sink.replies[-1].images[0].data)
    box = (original.width // 2, original.height // 2, original.width * 3 // 2, original.height * 3 // 2)
    assert changed(posted.crop(box), original) == 0
    assert result.turn_id != zoomed.turn_id


async def test_the_turn_after_a_zoom_draws_on_the_posted_composite(core: Core, engine_api: str) -> None:
    await _original(core)
    posted = (await _command(core, CommandName.ZOOM, "2")).replies[-1].images[0].data
    result, _ = await core.say("now add a moon")
    again, _ = await core.say("and a star")
    assert result.status is again.status is TurnStatus.ANSWERED
    after, later = core.fake.requests[-2:]
    # The model's last answer, as the next turn shows it to the model, is the composite posted.
    model = [images for c, images in zip(after.contents, after.images, strict=True) if c["role"] == "model"]
    assert model[-1][-1].data == posted
    if interactions(engine_api):
        # The composite is not what the model made: its interaction is not continued; the
        # local history is sent once, and the conversation continues from that interaction.
        assert after.previous_interaction_id is None and after.sent_images >= 1
        assert later.previous_interaction_id == after.interaction["id"] and later.sent_images == 0


async def test_a_region_edit_keeps_every_pixel_outside_the_painted_region(core: Core) -> None:
    turn_id, original = await _original(core)
    mask = Image.new("RGBA", (200, 150), (0, 0, 0, 0))  # any size: scaled to the image's
    ImageDraw.Draw(mask).ellipse((60, 40, 140, 110), fill=(255, 0, 0, 255))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    request = TurnRequest(
        kind=TurnKind.REGION_EDIT,
        key=KEY,
        request_id="edit:1",
        author=ALICE,
        position=Position.now(),
        text="a blue hat",
        source_turn=turn_id,
        mask_png=out.getvalue(),
    )
    sink = RecordingSink()
    result = await core.service.run(request, sink)
    assert result.status is TurnStatus.ANSWERED
    sent = core.fake.requests[-1]
    assert [_image(i.data).size for i in sent.images[-1]] == [original.size] * 3
    assert "a blue hat" in sent.prompt
    region = canvas.binary_mask(mask, original.size)
    posted = _image(sink.replies[-1].images[0].data)
    outside = Image.composite(Image.new("RGB", original.size), posted, region)
    kept = Image.composite(Image.new("RGB", original.size), original, region)
    assert changed(outside, kept) == 0  # outside the region: 0 pixels changed
    assert changed(posted, original) > 0  # inside it, the model's


@pytest.mark.parametrize(
    ("name", "argument", "said"),
    [
        (CommandName.ZOOM, "3", messages.ZOOM_WHICH),
        (CommandName.ZOOM, "", messages.ZOOM_WHICH),
        (CommandName.PAN, "diagonal", messages.PAN_WHICH),
        (CommandName.EDIT, "", messages.EDITOR_OFF),
    ],
)
async def test_bad_zoom_pan_and_edit_commands_get_one_sentence_and_no_request(
    core: Core, name: CommandName, argument: str, said: str
) -> None:
    await _original(core)
    sink = await _command(core, name, argument)
    assert [r.text for r in sink.replies] == [said]
    assert len(core.fake.requests) == 1


async def test_zoom_before_any_image_is_refused(core: Core) -> None:
    sink = await _command(core, CommandName.ZOOM, "2")
    assert [r.text for r in sink.replies] == [messages.NO_IMAGE_YET]
    assert core.fake.requests == []


async def test_zoom_of_another_conversations_turn_changes_nothing(core: Core) -> None:
    turn_id, _ = await _original(core)
    other = ConversationKey(KEY.platform, KEY.workspace, KEY.channel, "elsewhere")
    sink = RecordingSink()
    request = TurnRequest.on_turn(TurnKind.FRAME, other, turn_id, ALICE, "x1", frame="zoom:2")
    await core.service.run(request, sink)
    assert [r.text for r in sink.replies] == [messages.UNKNOWN_TURN]
    assert len(core.fake.requests) == 1


async def test_zoom_of_a_reply_without_an_image_is_refused(core: Core) -> None:
    core.fake.enqueue(fg.text_only())
    result, _ = await core.say("describe a harbour")
    assert result.turn_id is not None
    sink = await _command(core, CommandName.ZOOM, "2", turn_id=result.turn_id)
    assert [r.text for r in sink.replies] == [messages.NO_IMAGE_TO_FRAME]
    assert len(core.fake.requests) == 1


async def test_a_region_edit_without_an_instruction_or_of_a_forgotten_image_is_refused(core: Core) -> None:
    turn_id, _ = await _original(core)
    for text, source, said in (
        ("", turn_id, editor_words.EDIT_NO_INSTRUCTION),
        ("a hat", 999, messages.UNKNOWN_TURN),
    ):
        sink = RecordingSink()
        request = TurnRequest(
            kind=TurnKind.REGION_EDIT,
            key=KEY,
            request_id=uuid.uuid4().hex,
            author=ALICE,
            position=Position.now(),
            text=text,
            source_turn=source,
            mask_png=b"",
        )
        await core.service.run(request, sink)
        assert [r.text for r in sink.replies] == [said]
    assert len(core.fake.requests) == 1


async def test_edit_with_public_url_answers_with_a_personal_link(
    fake_gemini: fg.FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    env = {"PUBLIC_URL": "https://bot.example.com", "GEMINI_API": engine_api}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    try:
        turn_id, _ = await _original(core)
        reply = await core.service.dialogue.run(Command(CommandName.EDIT, KEY, ALICE))
        assert reply.turn is None and not reply.refused
        prefix = messages.EDITOR_LINK.format(url="https://bot.example.com/edit/")
        assert reply.text.startswith(prefix)
        assert core.editor is not None
        grant = await core.editor.links.check(reply.text[len(prefix) :], person=ALICE.id)
        assert (grant.key, grant.turn_id) == (KEY, turn_id)
        actions = (await core.say("a second one"))[1].replies[-1].actions
        assert ActionKind.EDIT in {a.kind for a in actions}
    finally:
        await core.stop()


def test_only_requests_this_bot_framed_look_framed() -> None:
    framed = [
        framing.instruction(framing.Frame("zoom", "2")),
        framing.instruction(framing.Frame("pan", "up")),
        framing.instruction(framing.Frame("region"), "a blue hat"),
    ]
    assert all(framing.looks_framed(user_record(text, [])) for text in framed)
    assert not framing.looks_framed(user_record("zoom out please, leave the picture as it is", []))
    assert [framing.Frame.parse(s) for s in ("zoom:1.5", "zoom:3", "pan:up", "pan:x", "region", "nope")] == [
        framing.Frame("zoom", "1.5"),
        None,
        framing.Frame("pan", "up"),
        None,
        framing.Frame("region"),
        None,
    ]
