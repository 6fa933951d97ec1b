"""Variations, Continue from this one, Redo at 4K and /model on Slack: the real Bolt app against the
fake Slack and Gemini."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.slack.test_slack import controls
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.slack_bot import Bot, slack_env
from tests.bot.turns.test_variations import FLASH, OLD, PRO, decoded, model_parts

LIMIT_SENTENCE = (
    ":warning: You've made 8 images in the last hour, the limit for each person; you can make more "
    "in about 1 h."
)


@pytest.fixture
async def bot(fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Bot]:
    env = {**slack_env(slack), "GEMINI_MODEL": FLASH, "USER_IMAGES_PER_HOUR": "8"}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    running = await Bot(core, slack, socket=False).start()
    yield running
    await running.stop()
    await core.stop()


async def click(bot: Bot, message: dict[str, Any], action_id: str) -> None:
    assert bot.sender is not None
    await bot.sender.action(bot.slack.block_actions(message, action_id))


async def test_takes_continue_redo_and_limits_on_slack(bot: Bot, fake_gemini: FakeGemini) -> None:
    slack = bot.slack
    fake_gemini.enqueue(*(fg.numbered(n) for n in (1, 2, 3)))
    message = await bot.mention("a lighthouse --n 3")
    posted = await bot.replies(message["ts"], 6)
    assert len(fake_gemini.requests) == 3 and len({str(r.contents) for r in fake_gemini.requests}) == 1
    uploads, buttons = posted[0::2], posted[1::2]
    # Posted together, numbered, in order, each its own image followed by its controls.
    assert [u["text"].split("\n")[0] for u in uploads] == ["Take 1 of 3", "Take 2 of 3", "Take 3 of 3"]
    answers = {model_parts(r)[1]["text"]: r for r in fake_gemini.requests}
    sources = [answers[u["text"].split("\n")[-1]] for u in uploads]
    assert [slack.uploads[u["files"][0]["id"]].data for u in uploads] == [
        s.response_images[0].data for s in sources
    ]
    third = controls(buttons[2])
    assert list(third) == [
        "nb_continue",
        "nb_regenerate",
        "nb_variations",
        "nb_aspect",
        "nb_redo_2K",
        "nb_redo_4K",
        "nb_model",
        "nb_frame_zoom_1.5",
        "nb_frame_zoom_2",
        "nb_frame_pan_left",
        "nb_frame_pan_right",
        "nb_frame_pan_up",
        "nb_frame_pan_down",
        "nb_forget",
    ]
    assert third["nb_model"]["text"]["text"] == FLASH
    assert third["nb_redo_4K"]["value"] == third["nb_continue"]["value"] + "|4K"

    await click(bot, buttons[2], "nb_continue")
    note = (await bot.replies(message["ts"], 7))[6]
    assert note["text"] == "Continuing from this take: your next message refines it."
    await bot.say("add a storm", thread_ts=message["ts"])
    storm = (await bot.replies(message["ts"], 9))[8]
    sent = fake_gemini.requests[3]
    assert sent.status == 200
    assert decoded(sent.contents[1]["parts"]) == decoded(model_parts(sources[2]))

    await click(bot, storm, "nb_redo_4K")
    await bot.replies(message["ts"], 11)
    assert (fake_gemini.requests[3].image_size, fake_gemini.requests[4].image_size) == (None, "4K")
    # Five images made, eight an hour: four more takes do not fit.
    await click(bot, storm, "nb_variations")
    refused = (await bot.replies(message["ts"], 12))[11]
    assert refused["text"] == LIMIT_SENTENCE
    assert len(fake_gemini.requests) == 5


async def test_one_take_blocked_posts_the_others_and_one_sentence(bot: Bot, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(fg.numbered(1), fg.prompt_blocked("SAFETY"), fg.numbered(3))
    message = await bot.mention("a lighthouse --n 3")
    posted = await bot.replies(message["ts"], 5)
    assert [p["text"].split("\n")[0] for p in posted[0::2]] == [
        "Take 1 of 2",
        "Take 2 of 2",
        "1 of the 3 takes did not come back: Gemini blocked this prompt for safety reasons; "
        "try rephrasing it.",
    ]
    assert [len(p.get("files") or []) for p in posted] == [1, 0, 1, 0, 0]


async def test_model_command_sets_the_channel_default_and_the_button_names_it(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    assert bot.sender is not None
    choices = f"{FLASH}, {PRO}, {OLD}"
    hint = "Inside a thread, add --model and a model id to a message."
    status, text = await bot.command("/model", "")
    assert (status, text) == (
        200,
        f"Model for new conversations in this channel: {FLASH}. Change it with /model (choices: {choices}). "
        f"{hint}",
    )
    _, text = await bot.command("/model", "gemini-9-ultra")
    assert text == f"gemini-9-ultra is not a model this bot offers; use one of {choices}."
    _, text = await bot.command("/model", OLD)
    assert text == f"The model is now {OLD} for new conversations in this channel. {hint}"
    message = await bot.mention("a lighthouse")
    _, buttons = await bot.replies(message["ts"], 2)
    assert fake_gemini.requests[0].model == OLD
    assert controls(buttons)["nb_model"]["text"]["text"] == OLD
    assert "nb_redo_4K" not in controls(buttons)
    await click(bot, buttons, "nb_model")
    told = await bot.slack.wait_for(lambda: [m for m in bot.slack.ephemerals if m["user"] == fs.ALICE])
    assert told[0]["text"] == (
        f"Model for this conversation: {OLD}. "
        f"Change it with --model and a model id in a message (choices: {choices})."
    )
    await bot.say(f"a comet --model {PRO}", thread_ts=message["ts"])
    await bot.replies(message["ts"], 4)
    assert fake_gemini.requests[1].model == PRO


async def test_the_new_controls_work_after_a_restart(bot: Bot, fake_gemini: FakeGemini) -> None:
    message = await bot.mention("a lighthouse")
    _, buttons = await bot.replies(message["ts"], 2)
    await bot.restart()
    await click(bot, buttons, "nb_variations")
    posted = await bot.replies(message["ts"], 2 + 2 * 4)
    assert len(fake_gemini.requests) == 5
    assert [p["text"].split("\n")[0] for p in posted[2::2]] == [f"Take {n} of 4" for n in range(1, 5)]
    await click(bot, buttons, "nb_redo_2K")
    await bot.replies(message["ts"], 12)
    assert fake_gemini.requests[5].image_size == "2K"
