"""Discord under hostile or broken input: one bounded answer per message or interaction."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.words import MALFORMED_COMMAND, POST_FAILED
from bot.entry.service import UNKNOWN_TURN_MESSAGE
from bot.turns.forgetting import FORGET_REFUSED
from tests.auxil.discord_bot import Bot, ephemeral_answer, start_bot
from tests.auxil.discord_bot import bot as bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import FakeDiscord, FakeMessage
from tests.auxil.fake_gemini import FakeGemini

FLASH_RATIOS = "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9"


# -- 3. a message full of bad flags gets one answer ----------------------------------------------


async def test_a_message_of_bad_flags_gets_one_answer(bot: Bot) -> None:
    flood = " ".join(["--ar x"] * 281)  # 1,966 characters
    _, thread_id = await bot.mention(flood)
    [answer] = await bot.replies(thread_id)
    assert answer.content == (
        f"x is not an aspect ratio gemini-2.5-flash-image supports; use one of {FLASH_RATIOS}. "
        "280 more flags in this message can't be used either."
    )
    assert len(bot.fake.bot_messages(thread_id)) == 1
    assert bot.gemini.requests == []


def forged(message: FakeMessage, real: str, fake_id: str) -> FakeMessage:
    """``message`` as a modified client could present it: a control's custom id swapped."""
    payload = json.loads(json.dumps(message.payload).replace(f'"{real}"', f'"{fake_id}"'))
    return FakeMessage(payload)


# -- 6. a refused control changes nothing --------------------------------------------------------


async def test_a_ratio_pick_carrying_another_threads_turn_is_refused_and_changes_nothing(bot: Bot) -> None:
    _, castle = await bot.mention("a castle")
    await bot.replies(castle)
    _, harbour = await bot.mention("a harbour")
    [reply] = await bot.replies(harbour)
    click = await bot.fake.click(forged(reply, "nb:ar:2", "nb:ar:1"), "nb:ar:1", values=["9:16"])
    answer = await ephemeral_answer(bot.fake, click.token)
    assert answer.content == UNKNOWN_TURN_MESSAGE
    assert "aspect_ratio" not in await bot.core.store.settings(bot.key(harbour))
    assert "aspect_ratio" not in await bot.core.store.settings(bot.key(castle))
    assert len(bot.gemini.requests) == 2


# -- 7. impossible ids in signed interactions ----------------------------------------------------

IMPOSSIBLE_IDS = ["1" + "0" * 23, str(2**63), "²", "-1", "", "1 "]


@pytest.mark.parametrize("turn_id", IMPOSSIBLE_IDS)
@pytest.mark.parametrize("control", ["nb:regen", "nb:ar"])
async def test_a_control_with_an_impossible_turn_id_gets_a_plain_private_answer(
    bot: Bot, caplog: pytest.LogCaptureFixture, control: str, turn_id: str
) -> None:
    _, thread_id = await bot.mention("a castle")
    [reply] = await bot.replies(thread_id)
    custom_id = f"{control}:{turn_id}"
    values = ["9:16"] if control == "nb:ar" else []
    click = await bot.fake.click(forged(reply, f"{control}:1", custom_id), custom_id, values=values)
    answer = await ephemeral_answer(bot.fake, click.token)
    assert answer.content == UNKNOWN_TURN_MESSAGE
    assert len(bot.gemini.requests) == 1
    assert "aspect_ratio" not in await bot.core.store.settings(bot.key(thread_id))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


# -- 4. whatever body a failing Discord call answers with, the turn goes on -----------------------


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [(503, "text/plain", b"upstream connect error"), (502, "text/html", b"<h1>502 Bad Gateway</h1>")],
    ids=["plain-503", "html-502"],
)
async def test_a_failing_typing_indicator_never_drops_the_turn(
    bot: Bot, caplog: pytest.LogCaptureFixture, status: int, content_type: str, body: bytes
) -> None:
    bot.fake.answer_raw("POST", r"/channels/\d+/typing", status, body, content_type, times=10)
    _, thread_id = await bot.mention("a castle")
    [reply] = await bot.replies(thread_id)
    assert reply.files and reply.custom_ids() == [
        "nb:regen:1",
        "nb:var:1",
        "nb:ar:1",
        "nb:model:1",
        "nb:frame:zoom:1.5:1",
        "nb:frame:zoom:2:1",
        "nb:frame:pan:left:1",
        "nb:frame:pan:right:1",
        "nb:frame:pan:up:1",
        "nb:frame:pan:down:1",
    ]
    assert [r.prompt for r in bot.gemini.requests] == ["a castle"]
    assert ("POST", f"/channels/{thread_id}/typing") in bot.fake.raw_answered
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert await bot.core.store.unfinished_messages("discord", 0) == []


# -- 9. malformed interactions get one plain sentence within Discord's limits ----------------------


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("aspect", [{"name": "ratio", "type": 4, "value": 5}]),
        ("imagine", []),
        ("imagine", [{"name": "prompt", "type": 4, "value": 12}]),
        (
            "imagine",
            [{"name": "prompt", "type": 3, "value": "a cat"}, {"name": "image", "type": 11, "value": "9"}],
        ),
    ],
    ids=["aspect-integer", "imagine-nothing", "imagine-integer", "imagine-missing-attachment"],
)
async def test_a_command_with_malformed_options_gets_one_plain_sentence(
    bot: Bot, caplog: pytest.LogCaptureFixture, command: str, options: list[dict[str, Any]]
) -> None:
    record = await bot.fake.command(command, unchecked=True, raw_options=options)
    answer = await ephemeral_answer(bot.fake, record.token)
    assert answer.content == MALFORMED_COMMAND
    assert bot.gemini.requests == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


@pytest.mark.parametrize("command", ["aspect", "size"])
async def test_a_huge_setting_value_is_echoed_as_an_excerpt(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path, command: str
) -> None:
    bot = await start_bot(
        fake, fake_gemini, tmp_path / "db.sqlite3", {"GEMINI_MODEL": "gemini-3-pro-image-preview"}
    )
    try:
        name = "ratio" if command == "aspect" else "size"
        record = await fake.command(command, unchecked=True, **{name: "9" * 6000})
        answer = await ephemeral_answer(fake, record.token)
        what = "an aspect ratio" if command == "aspect" else "an image size"
        assert answer.content.startswith(f"{'9' * 30}… is not {what} gemini-3-pro-image-preview supports;")
        assert len(answer.content) < 300
    finally:
        await bot.stop()


async def test_a_huge_prompt_is_answered_within_discords_limits(bot: Bot) -> None:
    record = await bot.fake.command("imagine", unchecked=True, prompt="a castle " * 700)
    thread = await bot.fake.wait_until(lambda: bot.fake.threads())
    [answer] = await bot.replies(int(thread[0]["id"]))
    assert answer.content == "That prompt is 6,299 characters long; please keep it under 4,000 characters."
    echo = bot.fake.messages[bot.fake.interactions[record.token].original_id or 0]
    assert len(echo.content) <= 2000
    assert bot.gemini.requests == []


# -- 10. forget is for whoever started the conversation, admins and moderators --------------------

# Discord's Send Messages, Read Message History, View Channel, Use Application Commands and
# Send Messages in Threads: a plain member, without Manage Threads (1 << 34).
PLAIN_MEMBER = (1 << 11) | (1 << 16) | (1 << 10) | (1 << 31) | (1 << 38)


async def forget_answer(bot: Bot, thread_id: int, user: dict[str, Any]) -> FakeMessage:
    record = await bot.fake.command("forget", thread_id, user=user)
    return await bot.fake.wait_until(
        lambda: next(
            (
                bot.fake.messages[i]
                for i in ([record.original_id] if record.original_id else []) + record.followup_ids
                if bot.fake.messages[i].content and not bot.fake.messages[i].loading
            ),
            None,
        )
    )


async def test_someone_else_cannot_forget_a_thread_they_did_not_start(bot: Bot) -> None:
    bot.fake.member_permissions[str(bot.fake.bob["id"])] = PLAIN_MEMBER
    _, thread_id = await bot.mention("a castle")
    [reply] = await bot.replies(thread_id)
    await bot.fake.post(thread_id, "add a moat", author=bot.fake.bob)
    await bot.replies(thread_id, 2)
    # Bob regenerating the first image gives the history a root of his; it still is not his.
    await bot.fake.click(reply, "nb:regen:1", user=bot.fake.bob)
    await bot.replies(thread_id, 3)
    answer = await forget_answer(bot, thread_id, bot.fake.bob)
    assert answer.content == FORGET_REFUSED and answer.ephemeral
    assert await bot.core.store.conversation(bot.key(thread_id)) is not None
    answer = await forget_answer(bot, thread_id, bot.fake.alice)
    assert answer.content.startswith("Forgot this conversation: 3 turns") and not answer.ephemeral
    assert await bot.core.store.conversation(bot.key(thread_id)) is None


async def test_moderators_can_forget_any_thread(bot: Bot) -> None:
    _, castle = await bot.mention("a castle")
    await bot.replies(castle)
    answer = await forget_answer(bot, castle, bot.fake.bob)  # Bob has Manage Threads here
    assert answer.content.startswith("Forgot this conversation: 1 turn")


async def test_admins_can_forget_any_thread(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    bot = await start_bot(
        fake, fake_gemini, tmp_path / "db.sqlite3", {"ADMIN_USERS": f"discord:{fake.bob['id']}"}
    )
    try:
        fake.member_permissions[str(fake.bob["id"])] = PLAIN_MEMBER
        _, castle = await bot.mention("a castle")
        await bot.replies(castle)
        answer = await forget_answer(bot, castle, fake.bob)
        assert answer.content.startswith("Forgot this conversation: 1 turn")
    finally:
        await bot.stop()


async def test_whoever_made_a_thread_can_forget_the_conversation_in_it(bot: Bot) -> None:
    bot.fake.member_permissions[str(bot.fake.bob["id"])] = PLAIN_MEMBER
    thread_id = await bot.fake.user_thread("ideas", owner=bot.fake.bob)
    await bot.fake.post(thread_id, f"{bot.fake.mention()} a dragon")
    await bot.replies(thread_id)
    answer = await forget_answer(bot, thread_id, bot.fake.bob)
    assert answer.content.startswith("Forgot this conversation: 1 turn")


async def test_a_regenerated_image_discord_will_not_take_is_told_to_whoever_clicked(bot: Bot) -> None:
    _, thread_id = await bot.mention("a castle")
    [reply] = await bot.replies(thread_id)
    bot.fake.answer_raw("POST", rf"/channels/{thread_id}/messages", 503, b"Service Unavailable", times=2)
    click = await bot.fake.click(reply, "nb:regen:1", user=bot.fake.bob)
    answer = await ephemeral_answer(bot.fake, click.token)
    assert answer.content == POST_FAILED
    assert bot.fake.bot_messages(thread_id) == [reply]
    assert len(bot.gemini.requests) == 2
    assert await bot.core.service.drain(5)
    assert await bot.core.store.unfinished_messages("discord", 0) == []
