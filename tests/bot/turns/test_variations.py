"""A model per conversation, variations (takes at once, Continue from one) and Redo larger, through
the real core, store and SDK against the fake Gemini."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.entry.service import TurnStatus
from bot.gemini import GenerationRequest, Outcome
from bot.text.settings import SettingError
from bot.turns.request import VARIATIONS_TAKES, TurnKind, TurnRequest
from bot.vocabulary import ActionKind, Reply, SettingName, SettingScope, TextPart
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.fake_gemini import FakeGemini, RecordedRequest, b64decode_any, numbered, prompt_blocked
from tests.auxil.sinks import RecordingSink

FLASH, PRO, OLD = "gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image"


@pytest.fixture(params=["generate_content", "interactions"])
async def flash(
    request: pytest.FixtureRequest, fake_gemini: FakeGemini, tmp_path: Path
) -> AsyncIterator[Core]:
    """The core on each engine (GEMINI_API): every scenario here concerns the model."""
    env = {"GEMINI_MODEL": FLASH, "GEMINI_API": request.param}
    started = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    yield started
    await started.stop()


async def click(core: Core, kind: TurnKind, turn_id: int, **kw: Any) -> tuple[Any, RecordingSink]:
    sink = RecordingSink()
    request = TurnRequest.on_turn(kind, KEY, turn_id, ALICE, f"action:{uuid.uuid4().hex}", **kw)
    return await core.service.run(request, sink), sink


def model_parts(rec: RecordedRequest) -> list[dict[str, Any]]:
    return rec.response["candidates"][0]["content"]["parts"]


def decoded(parts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Parts as the API means them, whichever spelling (camelCase or snake_case) and base64
    alphabet carried them: text, thought flag, signature bytes, image type and bytes."""
    out = []
    for part in parts:
        inline = part.get("inlineData") or part.get("inline_data") or {}
        signature = part.get("thoughtSignature") or part.get("thought_signature")
        out.append(
            (
                part.get("text"),
                bool(part.get("thought")),
                b64decode_any(signature) if signature else None,
                inline.get("mimeType") or inline.get("mime_type"),
                b64decode_any(inline["data"]) if inline else None,
            )
        )
    return out


def text_of(reply: Reply) -> str:
    return " ".join(p.text for p in reply.parts if isinstance(p, TextPart))


# -- a model per conversation -----------------------------------------------------------------


async def test_switching_model_reseeds_from_the_latest_image_without_old_signatures(flash: Core) -> None:
    fake = flash.fake
    await flash.say("a red kite")
    first_image = fake.requests[0].response_images[-1].data
    result, sink = await flash.say(f"make it blue --model {PRO}")
    assert result.status is TurnStatus.ANSWERED
    switched = fake.requests[1]
    assert switched.model == PRO
    # No turn of the old model is sent: one user turn led by the latest image, no signatures.
    assert [c["role"] for c in switched.contents] == ["user"]
    assert switched.signatures() == []
    assert [img.data for img in switched.images[0]] == [first_image]
    assert switched.status == 200
    assert [a.choices for a in sink.last.actions if a.kind is ActionKind.MODEL] == [(PRO,)]
    # The next turn sends the run of PRO turns, which starts with the seeded one; the fake
    # (which refuses another model's signatures) accepts it.
    result, _ = await flash.say("now add a moon")
    following = fake.requests[2]
    assert (following.model, following.status, result.status) == (PRO, 200, TurnStatus.ANSWERED)
    assert [c["role"] for c in following.contents] == ["user", "model", "user"]
    assert following.contents[0] == switched.contents[0]
    assert following.signatures() == fake.requests[1].response_signatures


async def test_the_fake_refuses_another_models_signatures(flash: Core) -> None:
    await flash.say("a red kite")
    history = await flash.store.history(KEY)
    blobs = await flash.store.load_blobs(
        [p["inline_data"]["blob"] for t in history for p in t.model_content["parts"] if "inline_data" in p]
    )
    records = [history[0].user_content, history[0].model_content]
    user = {"role": "user", "parts": [{"text": "again"}]}
    sent = await flash.engine.generate(GenerationRequest(history=records, user=user, blobs=blobs, model=PRO))
    assert sent.outcome is Outcome.REJECTED
    assert flash.fake.requests[-1].status == 400
    same = await flash.engine.generate(
        GenerationRequest(history=records, user=user, blobs=blobs, model=FLASH)
    )
    assert same.ok


async def test_model_command_shows_sets_and_refuses(flash: Core) -> None:
    scope = SettingScope.for_thread(KEY)
    assert (await flash.service.effective_settings(KEY)).model == FLASH
    said = await flash.service.change_setting(scope, SettingName.MODEL, "Gemini-3-Pro-Image")
    assert said == f"The model is now {PRO} for this conversation."
    assert (await flash.service.effective_settings(KEY)).model == PRO
    with pytest.raises(SettingError) as refused:
        await flash.service.change_setting(scope, SettingName.MODEL, "gemini-9-ultra")
    assert refused.value.user_message == (
        f"gemini-9-ultra is not a model this bot offers; use one of {FLASH}, {PRO}, {OLD}."
    )
    assert (await flash.service.effective_settings(KEY)).model == PRO


async def test_only_the_operators_allowed_models(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    env = {"GEMINI_MODEL": FLASH, "ALLOWED_MODELS": f"{OLD}, {FLASH}"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    try:
        with pytest.raises(SettingError) as refused:
            await core.service.change_setting(SettingScope.for_thread(KEY), SettingName.MODEL, PRO)
        assert refused.value.user_message == (
            f"{PRO} is not a model this bot offers; use one of {FLASH}, {OLD}."
        )
        result, sink = await core.say(f"a kite --model {PRO}")
        assert result.status is TurnStatus.REJECTED
        assert sink.last.text == refused.value.user_message
        assert fake_gemini.requests == []
        result, sink = await core.say(f"a kite --model {OLD}")
        assert (result.status, fake_gemini.requests[0].model) == (TurnStatus.ANSWERED, OLD)
    finally:
        await core.stop()


async def test_settings_the_new_model_lacks_are_reset_with_a_note(flash: Core) -> None:
    result, sink = await flash.say("--ar 4:1 --size 4K")
    assert result.status is TurnStatus.SETTINGS_ONLY
    result, sink = await flash.say(f"--model {OLD}")
    assert sink.last.text == (
        f"This conversation now uses the model {OLD}; send a prompt to make an image. "
        f"{OLD} has no 4:1 aspect ratio, so it is back to the model's default. "
        f"{OLD} makes images at a single size, so the 4K size is reset."
    )
    settings = await flash.service.effective_settings(KEY)
    assert (settings.model, settings.aspect_ratio, settings.image_size) == (OLD, None, None)
    assert await flash.store.settings(KEY) == {"model": OLD}
    await flash.say("a kite")
    assert flash.fake.requests[0].image_config == {}
    # Inline, with a prompt: the note leads the reply.
    await flash.say(f"--model {FLASH} --ar 8:1")
    result, sink = await flash.say(f"a bridge --model {PRO}")
    assert result.status is TurnStatus.ANSWERED
    assert text_of(sink.last).startswith(
        f"{PRO} has no 8:1 aspect ratio, so it is back to the model's default."
    )


async def test_usage_names_the_conversations_model(flash: Core) -> None:
    await flash.say(f"--model {PRO}")
    report = await flash.service.usage_report(KEY, ALICE)
    assert report.splitlines()[-1] == f"This conversation draws with {PRO}."


# -- variations ---------------------------------------------------------------------------------


async def test_takes_are_posted_together_and_continue_from_take_3(flash: Core) -> None:
    fake = flash.fake
    fake.enqueue(*(numbered(n) for n in range(1, 5)))
    result, sink = await flash.say("a lighthouse --n 4")
    assert result.status is TurnStatus.ANSWERED
    assert len(fake.requests) == 4
    # One request per take, all the same turn.
    assert len({str(r.contents) for r in fake.requests}) == 1
    replies = sink.replies
    assert [text_of(r).split("\n\n")[0] for r in replies] == [f"Take {n} of 4" for n in range(1, 5)]
    assert all(ActionKind.CONTINUE in [a.kind for a in r.actions] for r in replies)
    takes = [r.turn_id for r in replies]
    assert len(set(takes)) == 4
    stored = [await flash.store.turn(t) for t in takes]
    assert len({t.parent_id for t in stored if t is not None}) == 1
    info = await flash.store.conversation(KEY)
    assert info is not None and info.head_turn_id == takes[0] == result.turn_id
    # The images posted are the takes' own, in order.
    by_text = {model_parts(r)[1]["text"]: r for r in fake.requests}
    take3 = by_text[text_of(replies[2]).removeprefix("Take 3 of 4\n\n")]
    assert replies[2].images[0].data == take3.response_images[0].data

    moved, note = await click(flash, TurnKind.CONTINUE, takes[2])
    assert (moved.status, note.last.text) == (
        TurnStatus.SETTINGS_ONLY,
        "Continuing from this take: your next message refines it.",
    )
    await flash.say("add a storm")
    following = fake.requests[-1]
    assert following.status == 200
    sent = following.contents[1]
    assert sent["role"] == "model"
    assert decoded(sent["parts"]) == decoded(model_parts(take3))
    assert decoded(sent["parts"])[2][4] == replies[2].images[0].data


async def test_variations_button_draws_the_turn_again_n_times(flash: Core) -> None:
    result, _ = await flash.say("a lighthouse")
    assert result.turn_id is not None
    first = flash.fake.requests[0]
    done, sink = await click(flash, TurnKind.VARIATIONS, result.turn_id, takes=VARIATIONS_TAKES)
    assert done.status is TurnStatus.ANSWERED
    again = flash.fake.requests[1:]
    assert len(again) == VARIATIONS_TAKES == len(sink.replies)
    assert all(r.contents == first.contents for r in again)


async def test_takes_count_against_the_limits(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    env = {"GEMINI_MODEL": FLASH, "USER_IMAGES_PER_HOUR": "4"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    try:
        result, _ = await core.say("a lighthouse --n 3")
        assert result.status is TurnStatus.ANSWERED
        result, sink = await core.say("a boat --n 2")
        assert result.status is TurnStatus.LIMITED
        assert sink.last.text.startswith("You've made 4 images in the last hour, the limit for each person")
        assert len(fake_gemini.requests) == 3
        result, _ = await core.say("a boat")
        assert result.status is TurnStatus.ANSWERED
    finally:
        await core.stop()


async def test_one_take_blocked_posts_the_others_and_one_sentence(flash: Core) -> None:
    flash.fake.enqueue(numbered(1), prompt_blocked("SAFETY"), numbered(3))
    result, sink = await flash.say("a lighthouse --n 3")
    assert result.status is TurnStatus.ANSWERED
    replies = sink.replies
    assert [len(r.images) for r in replies] == [1, 1, 0]
    assert [text_of(r)[:11] for r in replies[:2]] == ["Take 1 of 2", "Take 2 of 2"]
    assert replies[2].text == (
        "1 of the 3 takes did not come back: "
        "Gemini blocked this prompt for safety reasons; try rephrasing it."
    )
    assert len(await flash.store.history(KEY)) == 1
    assert (await flash.store.usage_since(0)).images_generated == 2


# -- redo larger --------------------------------------------------------------------------------


async def test_redo_at_4k_sends_the_size_for_that_turn_only(flash: Core) -> None:
    result, sink = await flash.say("a lighthouse")
    assert result.turn_id is not None
    redo = [a for a in sink.last.actions if a.kind is ActionKind.REDO_SIZE]
    assert [a.choices for a in redo] == [("2K", "4K")]
    done, larger = await click(flash, TurnKind.REDO_SIZE, result.turn_id, image_size="4K")
    assert done.status is TurnStatus.ANSWERED
    assert flash.fake.requests[1].image_size == "4K"
    assert flash.fake.requests[1].contents == flash.fake.requests[0].contents
    assert [a.kind for a in larger.last.actions].count(ActionKind.REDO_SIZE) == 0
    assert (await flash.service.effective_settings(KEY)).image_size is None
    await flash.say("now at dusk")
    assert flash.fake.requests[2].image_size is None


async def test_redo_larger_on_a_model_without_sizes_is_refused(core: Core) -> None:
    result, sink = await core.say("a lighthouse")
    assert result.turn_id is not None
    assert ActionKind.REDO_SIZE not in [a.kind for a in sink.last.actions]
    done, refused = await click(core, TurnKind.REDO_SIZE, result.turn_id, image_size="4K")
    assert done.status is TurnStatus.REJECTED
    assert refused.last.text == (
        "gemini-2.5-flash-image makes images at a single size, so the size can't be changed."
    )
    assert len(core.fake.requests) == 1
