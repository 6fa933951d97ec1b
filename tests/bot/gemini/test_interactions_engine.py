"""GEMINI_API=interactions end to end: the real core, store and SDK (``client.aio.interactions``)
against the fake Gemini's Interactions protocol."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.entry.leaving import forget_workspace
from bot.entry.service import TurnStatus
from bot.gemini.interactions import InteractionsEngine
from bot.text import messages
from bot.vocabulary import ConversationKey, SettingName, SettingScope
from tests.auxil.core import KEY, Core, bytes_ref
from tests.auxil.fake_gemini import FakeGemini, finish, prompt_blocked, render_png

FLASH3 = "gemini-3.1-flash-image"


@pytest.fixture
async def core(fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Core]:
    env = {"GEMINI_API": "interactions", "GEMINI_MODEL": FLASH3}
    started = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    yield started
    await started.stop()


def photo(n: int) -> bytes:
    return render_png((n, 40, 90), (512, 512), noisy=True)


async def test_a_later_turn_sends_only_what_is_new_and_the_previous_id(core: Core) -> None:
    assert isinstance(core.engine, InteractionsEngine)
    first, _ = await core.say("a fox", bytes_ref("a.png", photo(1)), bytes_ref("b.png", photo(2)))
    second, _ = await core.say("make it blue")
    assert first.status == second.status == TurnStatus.ANSWERED
    one, two = core.fake.requests
    assert (one.method, one.previous_interaction_id, one.sent_images) == ("interactions", None, 2)
    assert two.previous_interaction_id == one.interaction["id"]
    assert two.sent_images == 0 and two.body_bytes < 1000 < one.body_bytes
    # The model saw the whole conversation (server-side history), signatures included.
    assert len(two.contents) == 3 and len(two.all_images) == 3
    # The local history is written as on the generateContent path, plus the interaction's id.
    history = await core.store.history(KEY)
    model = history[-1].model_content
    assert model["interaction"] == {"id": two.interaction["id"], "model": FLASH3}
    assert model["role"] == "model" and model["parts"][0]["thought"] is True
    assert [bool(p.get("thought_signature")) for p in model["parts"][1:]] == [True, True]
    assert history[-1].usage.prompt_tokens == two.interaction["usage"]["total_input_tokens"]


async def test_an_unknown_previous_id_falls_back_to_the_local_history_once(core: Core) -> None:
    await core.say("a fox", bytes_ref("a.png", photo(1)))
    core.fake.interactions.stored.clear()  # expired, or deleted on Google's side
    result, _ = await core.say("make it blue")
    third, _ = await core.say("and bigger")
    assert result.status == third.status == TurnStatus.ANSWERED
    _, refused, resent, later = core.fake.requests
    assert (refused.status, refused.behaviour) == (404, "unknown_previous_interaction")
    assert resent.previous_interaction_id is None and resent.status == 200
    assert resent.sent_images == 2  # the photo and the first answer, signatures accepted
    assert later.previous_interaction_id == resent.interaction["id"] and later.sent_images == 0


async def test_a_restart_mid_conversation_continues_from_the_stored_id(core: Core) -> None:
    await core.say("a fox")
    await core.restart()
    result, _ = await core.say("make it blue")
    assert result.status == TurnStatus.ANSWERED
    first, second = core.fake.requests
    assert second.previous_interaction_id == first.interaction["id"]


async def test_another_key_cannot_continue_the_interaction(core: Core, tmp_path: Path) -> None:
    await core.say("a fox")
    await core.stop()
    env = {"GEMINI_API": "interactions", "GEMINI_MODEL": FLASH3, "GEMINI_API_KEY": "other-key"}
    other = Core(core.fake, core.db_path, env=env)
    await other.start()
    try:
        result, _ = await other.say("make it blue")
    finally:
        await other.stop()
        await core.start()
    assert result.status == TurnStatus.ANSWERED
    assert [r.status for r in core.fake.requests] == [200, 404, 200]


async def test_a_blocked_prompt_and_a_withheld_image_say_so(core: Core) -> None:
    core.fake.enqueue(prompt_blocked("SAFETY"), finish("IMAGE_SAFETY"))
    blocked, _ = await core.say("something")
    withheld, _ = await core.say("something else")
    assert blocked.reply is not None and withheld.reply is not None
    assert blocked.reply.parts[0].text == messages.PROMPT_BLOCKED["SAFETY"]  # type: ignore[union-attr]
    assert withheld.reply.parts[0].text == messages.MSG_IMAGE_SAFETY  # type: ignore[union-attr]
    assert await core.store.history(KEY) == []


async def test_forget_deletes_the_stored_interactions(core: Core) -> None:
    await core.say("a fox")
    await core.say("make it blue")
    made = list(core.fake.interactions.created)
    assert await core.service.forget(KEY) >= 1
    assert sorted(core.fake.interactions.deleted) == sorted(made)
    assert core.fake.interactions.stored == {}


async def test_forget_deletes_every_branchs_stored_interactions_not_only_the_heads(core: Core) -> None:
    await core.say("a fox --n 3")  # three takes: three sibling turns, one interaction each
    await core.say("make it blue")  # continues from one of them
    made = list(core.fake.interactions.created)
    assert len(made) == 4
    assert await core.service.forget(KEY) == 4
    assert sorted(core.fake.interactions.deleted) == sorted(made)
    assert core.fake.interactions.stored == {}


async def test_the_answer_format_goes_in_response_format_not_the_deprecated_fields(core: Core) -> None:
    await core.say("a fox --ar 16:9 --size 2k")
    await core.service.change_setting(SettingScope.for_thread(KEY), SettingName.RESPONSE_MODE, "image")
    await core.say("as a sketch")
    both, image_only = (r.wire_body for r in core.fake.requests)
    image = {"type": "image", "aspect_ratio": "16:9", "image_size": "2K"}
    assert both["response_format"] == [{"type": "text"}, image]
    assert image_only["response_format"] == [image]
    for body in (both, image_only):
        # google-genai 3.3 marks both deprecated for interactions.
        assert "response_modalities" not in body
        assert "image_config" not in body.get("generation_config", {})
    # The fake read them as the model would: the ratio, the size, the modalities.
    assert [(r.aspect_ratio, r.image_size, r.response_modalities) for r in core.fake.requests] == [
        ("16:9", "2K", ["TEXT", "IMAGE"]),
        ("16:9", "2K", ["IMAGE"]),
    ]


async def test_leaving_a_workspace_deletes_its_interactions_on_googles_side(core: Core) -> None:
    here = ConversationKey(KEY.platform, KEY.workspace, KEY.channel, "thread-2")
    elsewhere = ConversationKey(KEY.platform, "another-place", KEY.channel, KEY.thread)
    first, _ = await core.say("a fox")
    await core.say("make it blue")
    await core.say("a hen", key=here)
    await core.say("a duck", key=elsewhere)
    await core.say("a red fox instead", continue_from=first.turn_id)  # a branch off the first turn
    made = [r.interaction["id"] for r in core.fake.requests]
    drop = core.service.drop_remote

    gone = await forget_workspace(core.store, KEY.platform, KEY.workspace, reason="test", drop_remote=drop)

    assert (gone.conversations, gone.turns) == (2, 4)
    assert sorted(core.fake.interactions.deleted) == sorted(made[:3] + made[4:])
    assert list(core.fake.interactions.stored) == [made[3]]  # the other workspace's
    assert await core.store.conversation(KEY) is None and await core.store.conversation(here) is None


async def test_a_failed_delete_is_logged_and_the_workspace_is_forgotten_anyway(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    await core.say("a fox")
    core.fake.interactions.delete_status = 503
    drop, place = core.service.drop_remote, (core.store, KEY.platform, KEY.workspace)
    with caplog.at_level(logging.WARNING, logger="bot.gemini"):
        gone = await forget_workspace(*place, reason="test", drop_remote=drop)
    assert gone.conversations == 1 and await core.store.conversation(KEY) is None
    assert core.fake.interactions.delete_requests == [core.fake.requests[0].interaction["id"]]
    assert core.fake.interactions.deleted == []
    assert [r.getMessage() for r in caplog.records] == ["could not delete a stored interaction"]
