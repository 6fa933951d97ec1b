"""Variations, Continue from this one, Redo at 4K and /model on Discord: the real discord.py client
against the fake Discord and Gemini."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.auxil import fake_gemini as fg
from tests.auxil.discord_bot import Bot, ephemeral_answer, start_bot, stop_and_check
from tests.auxil.fake_discord import DEFERRED_UPDATE, FakeDiscord, FakeMessage
from tests.auxil.fake_gemini import FakeGemini
from tests.bot.turns.test_variations import FLASH, OLD, PRO, decoded, model_parts

LIMIT_SENTENCE = (
    "You've made 8 images in the last hour, the limit for each person; you can make more in about 1 h."
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        # Takes one message each, as channels that refuse Components V2 get them (the gallery of
        # takes in one message is tests/adapters/discord/test_discord_doors.py).
        server.classic_only = True
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    env = {"GEMINI_MODEL": FLASH, "USER_IMAGES_PER_HOUR": "8"}
    running = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3", env)
    yield running
    await stop_and_check(running)


def turn_of(message: FakeMessage, prefix: str) -> str:
    """The turn id a control on ``message`` carries (its custom id starts with ``prefix``)."""
    [found] = [c for c in message.custom_ids() if c.startswith(prefix)]
    return found


async def test_takes_continue_redo_and_limits_on_discord(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    gemini.enqueue(*(fg.numbered(n) for n in (1, 2, 3)))
    _, thread_id = await bot.mention("a lighthouse --n 3")
    takes = await bot.replies(thread_id, 3)
    assert len(gemini.requests) == 3 and len({str(r.contents) for r in gemini.requests}) == 1
    # Posted together, numbered, in order, each its own image with Continue from this one.
    assert [m.content.split("\n")[0] for m in takes] == ["Take 1 of 3", "Take 2 of 3", "Take 3 of 3"]
    answers = {model_parts(r)[1]["text"]: r for r in gemini.requests}
    sources = [answers[m.content.split("\n")[-1]] for m in takes]
    assert [m.files[0].data for m in takes] == [s.response_images[0].data for s in sources]
    ids = [turn_of(m, "nb:cont:").removeprefix("nb:cont:") for m in takes]
    assert takes[2].custom_ids() == [
        f"nb:cont:{ids[2]}",
        f"nb:regen:{ids[2]}",
        f"nb:var:{ids[2]}",
        f"nb:ar:{ids[2]}",
        f"nb:size:{ids[2]}:2K",
        f"nb:size:{ids[2]}:4K",
        f"nb:model:{ids[2]}",
        *(
            f"nb:frame:{f}:{ids[2]}"
            for f in ("zoom:1.5", "zoom:2", "pan:left", "pan:right", "pan:up", "pan:down")
        ),
    ]
    model_button = takes[2].component(f"nb:model:{ids[2]}")
    assert model_button is not None and (model_button["label"], model_button["disabled"]) == (FLASH, True)

    click = await fake.click(takes[2], f"nb:cont:{ids[2]}")
    note = (await bot.replies(thread_id, 4))[3]
    assert fake.interactions[click.token].callbacks == [DEFERRED_UPDATE]
    assert note.content == "Continuing from this take: your next message refines it."
    await fake.post(thread_id, "add a storm")
    storm = (await bot.replies(thread_id, 5))[4]
    sent = gemini.requests[3]
    assert sent.status == 200
    assert decoded(sent.contents[1]["parts"]) == decoded(model_parts(sources[2]))

    storm_id = turn_of(storm, "nb:var:").removeprefix("nb:var:")
    await fake.click(storm, f"nb:size:{storm_id}:4K")
    await bot.replies(thread_id, 6)
    assert (gemini.requests[3].image_size, gemini.requests[4].image_size) == (None, "4K")
    # Five images made, eight an hour: four more takes do not fit.
    click = await fake.click(storm, turn_of(storm, "nb:var:"))
    answer = await ephemeral_answer(fake, click.token)
    assert answer.content == LIMIT_SENTENCE
    assert len(gemini.requests) == 5


async def test_one_take_blocked_posts_the_others_and_one_sentence(bot: Bot) -> None:
    bot.gemini.enqueue(fg.numbered(1), fg.prompt_blocked("SAFETY"), fg.numbered(3))
    _, thread_id = await bot.mention("a lighthouse --n 3")
    posted = await bot.replies(thread_id, 3)
    assert [m.content.split("\n")[0] for m in posted] == [
        "Take 1 of 2",
        "Take 2 of 2",
        "1 of the 3 takes did not come back: Gemini blocked this prompt for safety reasons; "
        "try rephrasing it.",
    ]
    assert [len(m.files) for m in posted] == [1, 1, 0]


async def test_model_command_and_inline_model(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a lighthouse --ar 4:1")
    await bot.replies(thread_id)
    shown = await ephemeral_answer(fake, (await fake.command("model", thread_id)).token)
    assert shown.content == (
        f"Model for this conversation: {FLASH}. Change it with /model (choices: {FLASH}, {PRO}, {OLD})."
    )
    set_ = await ephemeral_answer(fake, (await fake.command("model", thread_id, model=OLD)).token)
    assert set_.content == (
        f"The model is now {OLD} for this conversation. "
        f"{OLD} has no 4:1 aspect ratio, so it is back to the model's default."
    )
    refused = await fake.command("model", thread_id, unchecked=True, model="gemini-9-ultra")
    assert (await ephemeral_answer(fake, refused.token)).content == (
        f"gemini-9-ultra is not a model this bot offers; use one of {FLASH}, {PRO}, {OLD}."
    )
    await fake.post(thread_id, "make it night")
    reply = (await bot.replies(thread_id, 2))[1]
    assert gemini.requests[1].model == OLD
    assert [c["role"] for c in gemini.requests[1].contents] == ["user"]  # re-seeded
    assert turn_of(reply, "nb:model:") and reply.component(turn_of(reply, "nb:model:"))["label"] == OLD
    assert not [c for c in reply.custom_ids() if c.startswith("nb:size:")]  # 2.5 flash has one size
    await fake.post(thread_id, f"a comet --model {PRO}")
    await bot.replies(thread_id, 3)
    assert gemini.requests[2].model == PRO


async def test_the_new_controls_work_after_a_restart(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db, env = tmp_path / "bot.sqlite3", {"GEMINI_MODEL": FLASH}
    bot = await start_bot(fake, fake_gemini, db, env)
    _, thread_id = await bot.mention("a lighthouse")
    [first] = await bot.replies(thread_id)
    await bot.stop()
    bot = await start_bot(fake, fake_gemini, db, env)
    try:
        await fake.click(first, "nb:var:1")
        posted = await bot.replies(thread_id, 5)
        assert [m.content.split("\n")[0] for m in posted[1:]] == [f"Take {n} of 4" for n in range(1, 5)]
        await fake.click(first, "nb:size:1:2K")
        await bot.replies(thread_id, 6)
        assert fake_gemini.requests[5].image_size == "2K"
    finally:
        await bot.stop()
