"""The Discord adapter as people use it: the real discord.py client against a fake Discord and Gemini."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.sink import UPLOAD_MARGIN
from adapters.discord.words import BAD_TOKEN, FORGET_WHERE, INTENT_REFUSED, THREAD_FORBIDDEN
from bot import gemini as engine
from bot.entry.routing import Inbound, Router
from bot.entry.service import EMPTY_PROMPT_MESSAGE, INTERRUPTED_MESSAGE, QUEUED_MESSAGE
from bot.images.checks import too_many_images_message
from bot.ports import PlatformError
from bot.turns.order import LocalTurnOrder
from bot.vocabulary import Author, ConversationKey, Position, Turn
from tests.auxil import fake_gemini as fg
from tests.auxil import image_factory as img
from tests.auxil.core import refusal, wait_claimed
from tests.auxil.discord_bot import Bot, ephemeral_answer, start_bot
from tests.auxil.discord_bot import bot as bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
    MESSAGE_CONTENT,
    FakeDiscord,
    FakeFile,
    pings_nobody,
)
from tests.auxil.fake_gemini import FakeGemini


def image_size(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as opened:
        return str(opened.format), opened.size


def held(gate: asyncio.Event) -> fg.Behaviour:
    """A Gemini answer that waits for ``gate`` (a turn kept in flight as long as a test needs)."""

    async def respond(gemini: FakeGemini, rec: fg.RecordedRequest, request: Any) -> Any:
        await gate.wait()
        return await fg.image().respond(gemini, rec, request)

    return fg.Behaviour("held", respond)


# -- 1. a mention starts a conversation in a thread ------------------------------------------------


async def test_mention_opens_a_thread_named_from_the_prompt_and_answers_there(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a red bicycle at dawn --ar 16:9")

    thread = fake.channels[thread_id]
    assert thread["name"] == "a red bicycle at dawn"
    assert thread["parent_id"] == str(fake.general_id)
    [reply] = await bot.replies(thread_id)
    assert reply.content == "Here is your image."
    [file] = reply.files
    assert file.data == gemini.requests[0].response_images[-1].data
    assert image_size(file.data) == ("PNG", (1024, 576))
    # The mention token never reaches the model; the inline flag set the ratio.
    assert gemini.requests[0].prompt == "a red bicycle at dawn"
    assert gemini.requests[0].aspect_ratio == "16:9"
    # Typing showed in the thread before the reply landed.
    assert fake.position(("typing", thread_id)) < fake.position(("message", thread_id, reply.id))
    assert reply.custom_ids() == [
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
    select = reply.component("nb:ar:1")
    assert select is not None
    assert [o["value"] for o in select["options"]] == list(bot.core.service.capabilities.aspect_ratios)
    # Nothing was posted in the channel itself.
    assert fake.bot_messages(fake.general_id) == []


async def test_model_text_and_images_are_posted_in_the_models_order(bot: Bot) -> None:
    bot.gemini.enqueue(fg.storyboard(3))
    _, thread_id = await bot.mention("how to fold a paper crane")
    replies = await bot.replies(thread_id, 3)
    assert [(m.content, len(m.files)) for m in replies] == [("Step 1.", 1), ("Step 2.", 1), ("Step 3.", 1)]
    # Controls go on the last message only.
    assert [bool(m.custom_ids()) for m in replies] == [False, False, True]


async def test_long_text_is_split_at_discords_2000_characters(bot: Bot) -> None:
    words = " ".join(f"word{i:03}" for i in range(1000))
    bot.gemini.enqueue(fg.text_only(words))
    _, thread_id = await bot.mention("describe a harbour at length")
    replies = await bot.fake.wait_until(
        lambda: (
            (found := bot.fake.bot_messages(thread_id))
            and " ".join(m.content for m in found) == words
            and found
        )
    )
    assert len(replies) == 4  # 7,000 characters
    assert all(1900 < len(m.content) <= 2000 for m in replies[:-1])


# -- 2. replies in the thread refine ---------------------------------------------------------------


async def test_every_later_message_in_the_thread_is_the_next_turn(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a red bicycle at dawn")
    await bot.replies(thread_id)
    refine = await fake.post(thread_id, "make the sky warmer")
    _, second = await bot.replies(thread_id, 2)
    assert gemini.requests[1].prompt == "make the sky warmer"
    assert len(gemini.requests[1].contents) == 3  # first prompt, first answer, the refinement
    assert second.reference_id == refine.id
    assert second.custom_ids() == [
        "nb:regen:2",
        "nb:var:2",
        "nb:ar:2",
        "nb:model:2",
        "nb:frame:zoom:1.5:2",
        "nb:frame:zoom:2:2",
        "nb:frame:pan:left:2",
        "nb:frame:pan:right:2",
        "nb:frame:pan:up:2",
        "nb:frame:pan:down:2",
    ]


async def test_a_mention_in_someone_elses_thread_makes_it_a_conversation(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    thread_id = await fake.user_thread("ideas")
    await fake.post(thread_id, "people chatting, not for the bot")
    asked = await fake.post(thread_id, f"{fake.mention()} a dragon made of clouds")
    [answer] = await bot.replies(thread_id)
    assert answer.reference_id == asked.id
    assert [r.prompt for r in gemini.requests] == ["a dragon made of clouds"]
    await fake.post(thread_id, "now at night")
    await bot.replies(thread_id, 2)
    assert gemini.requests[1].prompt == "now at night"
    assert len(gemini.requests[1].contents) == 3


async def test_a_mention_of_the_bots_role_counts_as_a_mention(bot: Bot) -> None:
    message = await bot.fake.post(bot.fake.general_id, f"<@&{bot.fake.bot_role_id}> a kite over the sea")
    await bot.replies(message.id)
    assert bot.gemini.requests[0].prompt == "a kite over the sea"


async def test_voice_channel_chat_is_answered_in_place(bot: Bot) -> None:
    fake = bot.fake
    asked = await fake.post(fake.voice_id, f"{fake.mention()} a lantern")
    [answer] = await bot.replies(fake.voice_id)
    assert answer.reference_id == asked.id and answer.files
    assert fake.threads() == []


async def test_without_message_content_intent_threads_need_a_mention(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake.allow_message_content = False
    bot = await start_bot(fake, fake_gemini, tmp_path / "db.sqlite3", {"DISCORD_MESSAGE_CONTENT": "false"})
    try:
        assert not int(fake.identifies[0]["intents"]) & MESSAGE_CONTENT
        _, thread_id = await bot.mention("a red bicycle")
        await bot.replies(thread_id)
        await fake.post(thread_id, "make it blue")  # arrives without content: ignored
        await fake.post(thread_id, f"{fake.mention()} make it green")
        await bot.replies(thread_id, 2)
        assert [r.prompt for r in fake_gemini.requests] == ["a red bicycle", "make it green"]
        assert [len(m.files) for m in fake.bot_messages(thread_id)] == [1, 1]
    finally:
        await bot.stop()


async def test_a_refused_message_content_intent_stops_with_one_line(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    fake.allow_message_content = False
    with pytest.raises(PlatformError) as caught:
        await start_bot(fake, fake_gemini, tmp_path / "db.sqlite3")
    assert str(caught.value) == INTENT_REFUSED


async def test_a_rejected_token_stops_with_one_line(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = {"DISCORD_TOKEN": "wrong", "DISCORD_API_URL": fake.api_url}
    assert await refusal(DiscordAdapter, fake_gemini, tmp_path / "db.sqlite3", env) == BAD_TOKEN
    assert fake.identifies == []


async def test_an_unreachable_api_stops_with_one_line(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    async with FakeDiscord() as gone:
        api_url = gone.api_url  # nothing listens there once this block ends
    env = {"DISCORD_TOKEN": "token", "DISCORD_API_URL": api_url}
    assert await refusal(DiscordAdapter, fake_gemini, tmp_path / "db.sqlite3", env) == (
        f"Could not reach Discord at {api_url} (ClientConnectorError); check the network or DISCORD_API_URL."
    )


# -- 3. photos edit; replying to an earlier image continues from it --------------------------------


async def test_attached_photos_are_sent_to_the_model(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    photo = img.jpeg(80, 60)
    message = await fake.post(
        fake.general_id,
        f"{fake.mention()} put a hat on this cat",
        files=[FakeFile("cat.jpg", photo, "image/jpeg")],
    )
    await bot.replies(message.id)
    [sent] = gemini.requests[0].all_images
    assert sent.mime_type == "image/jpeg"
    assert image_size(sent.data) == ("JPEG", (80, 60))


async def test_more_photos_than_the_model_takes_get_a_clear_message(bot: Bot) -> None:
    fake = bot.fake
    files = [FakeFile(f"p{i}.png", img.png(), "image/png") for i in range(4)]
    message = await fake.post(fake.general_id, f"{fake.mention()} combine these", files=files)
    [answer] = await bot.replies(message.id)
    caps = bot.core.service.capabilities
    assert answer.content == too_many_images_message(4, caps.max_input_images, caps.model)
    assert answer.custom_ids() == []
    assert bot.gemini.requests == []


async def test_an_attachment_discord_cannot_serve_is_explained(bot: Bot) -> None:
    fake = bot.fake
    gone = FakeFile("sunset.png", img.png(), "image/png", available=False)
    message = await fake.post(fake.general_id, f"{fake.mention()} brighten this", files=[gone])
    [answer] = await bot.replies(message.id)
    assert answer.content == "I couldn't download sunset.png from Discord; attach it again."
    assert bot.gemini.requests == []


async def test_a_file_that_is_not_an_image_is_named_in_the_answer(bot: Bot) -> None:
    fake = bot.fake
    notes = FakeFile("notes.txt", img.random_bytes(), "text/plain")
    message = await fake.post(fake.general_id, f"{fake.mention()} illustrate this", files=[notes])
    [answer] = await bot.replies(message.id)
    assert answer.content == "notes.txt is not an image; attach a PNG, JPEG, WebP or HEIC photo."
    assert bot.gemini.requests == []


async def test_an_attachment_over_the_limit_is_refused_before_downloading(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    bot = await start_bot(fake, fake_gemini, tmp_path / "db.sqlite3", {"MAX_ATTACHMENT_MB": "1"})
    try:
        big = FakeFile("big.png", img.random_bytes(1_200_000), "image/png")
        message = await fake.post(fake.general_id, f"{fake.mention()} upscale this", files=[big])
        [answer] = await bot.replies(message.id)
        assert answer.content == "big.png is larger than 1 MB; attach a smaller image."
        assert not [e for e in fake.events if e[0] == "download"]
    finally:
        await bot.stop()


async def test_a_mention_without_a_prompt_asks_for_one(bot: Bot) -> None:
    _, thread_id = await bot.mention("")
    [answer] = await bot.replies(thread_id)
    assert answer.content == EMPTY_PROMPT_MESSAGE
    assert bot.fake.channels[thread_id]["name"] == "Image"


async def test_replying_to_an_earlier_image_continues_from_that_image(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a red bicycle")
    [first] = await bot.replies(thread_id)
    await fake.post(thread_id, "make it blue")
    await bot.replies(thread_id, 2)
    await fake.post(thread_id, "make it green instead", reply_to=first.id)
    third = (await bot.replies(thread_id, 3))[2]
    # History is turn 1 only (not turn 2), then the new prompt.
    request = gemini.requests[2]
    assert request.prompt == "make it green instead"
    assert len(request.contents) == 3
    assert request.contents[0]["parts"][0]["text"] == "a red bicycle"
    assert third.custom_ids() == [
        "nb:regen:3",
        "nb:var:3",
        "nb:ar:3",
        "nb:model:3",
        "nb:frame:zoom:1.5:3",
        "nb:frame:zoom:2:3",
        "nb:frame:pan:left:3",
        "nb:frame:pan:right:3",
        "nb:frame:pan:up:3",
        "nb:frame:pan:down:3",
    ]


# -- 4. DMs ----------------------------------------------------------------------------------------


async def test_in_a_dm_every_message_is_a_turn_of_one_conversation(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    dm = fake.dm_channel()
    await fake.post(dm, "a cat in a teacup")
    [first] = await bot.replies(dm)
    assert first.files and first.custom_ids() == [
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
    await fake.post(dm, "make it orange")
    await bot.replies(dm, 2)
    assert [r.prompt for r in gemini.requests] == ["a cat in a teacup", "make it orange"]
    assert len(gemini.requests[1].contents) == 3
    assert await bot.core.store.conversation(ConversationKey("discord", "dm", str(dm), str(dm))) is not None


# -- 5. slash commands -----------------------------------------------------------------------------


async def test_commands_are_registered_globally_with_the_models_choices(bot: Bot) -> None:
    fake = bot.fake
    registered = {c["name"]: c for c in fake.commands[None]}
    # No /size; and the message context-menu commands.
    assert sorted(registered) == [
        "Edit with Nano Banana",
        "Pin as reference",
        "aspect",
        "forget",
        "help",
        "imagine",
        "model",
        "pin",
        "pins",
        "unpin",
        "usage",
    ]  # no sizes
    ratios = [c["value"] for c in registered["aspect"]["options"][0]["choices"]]
    assert ratios == list(bot.core.service.capabilities.aspect_ratios)
    models = [c["value"] for c in registered["model"]["options"][0]["choices"]]
    assert models == list(bot.core.service.allowed_models)
    options = [(o["name"], o["type"], o.get("required", False)) for o in registered["imagine"]["options"]]
    assert options == [
        ("prompt", 3, True),
        ("aspect_ratio", 3, False),
        ("image", 11, False),
        ("image2", 11, False),
        ("image3", 11, False),
    ]


async def test_with_a_guild_id_commands_are_registered_in_that_guild_with_sizes(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = {"DISCORD_GUILD_ID": str(fake.guild_id), "GEMINI_MODEL": "gemini-3-pro-image-preview"}
    bot = await start_bot(fake, fake_gemini, tmp_path / "db.sqlite3", env)
    try:
        assert sorted(c["name"] for c in fake.commands[fake.guild_id]) == [
            "Edit with Nano Banana",
            "Pin as reference",
            "aspect",
            "forget",
            "help",
            "imagine",
            "model",
            "pin",
            "pins",
            "size",
            "unpin",
            "usage",
        ]
        assert fake.commands[None] == []  # no global duplicates
        _, thread_id = await bot.mention("a lighthouse")
        await bot.replies(thread_id)
        command = await fake.command("size", thread_id, size="2K")
        answer = await ephemeral_answer(fake, command.token)
        assert answer.content == "Image size is now 2K for this conversation."
        await fake.post(thread_id, "at night")
        await bot.replies(thread_id, 2)
        assert fake_gemini.requests[1].image_size == "2K"
    finally:
        await bot.stop()


async def test_imagine_defers_posts_the_prompt_and_opens_a_thread(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    command = await fake.command(
        "imagine",
        prompt="a lighthouse in a storm @everyone",
        aspect_ratio="9:16",
        image=FakeFile("coast.png", img.png(), "image/png"),
    )
    record = fake.interactions[command.token]
    original_id = await fake.wait_until(lambda: record.original_id)
    thread_id = (await fake.wait_until(lambda: fake.thread_on(original_id)))["id"]
    [reply] = await bot.replies(int(thread_id))
    assert record.callbacks == [DEFERRED_CHANNEL_MESSAGE] and record.late_callbacks == 0
    original = fake.messages[original_id]
    assert (
        original.content
        == f"<@{fake.alice['id']}>: a lighthouse in a storm @everyone (9:16, 1 image attached)"
    )
    assert not original.ephemeral and not original.loading
    assert pings_nobody(original.allowed_mentions)
    assert reply.files
    assert gemini.requests[0].aspect_ratio == "9:16"
    assert len(gemini.requests[0].all_images) == 1
    assert fake.channels[int(thread_id)]["name"] == "a lighthouse in a storm @everyone"


async def test_imagine_in_a_thread_continues_that_conversation(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a castle")
    await bot.replies(thread_id)
    await fake.command("imagine", thread_id, prompt="add a moat")
    _, echo, answer = await bot.replies(thread_id, 3)
    assert echo.content == f"<@{fake.alice['id']}>: add a moat"
    assert answer.files
    assert gemini.requests[1].prompt == "add a moat"
    assert len(gemini.requests[1].contents) == 3


async def test_imagine_in_a_dm_answers_in_the_dm(bot: Bot) -> None:
    fake = bot.fake
    dm = fake.dm_channel()
    command = await fake.command("imagine", dm, prompt="a cat in a teacup")
    echo, answer = await bot.replies(dm, 2)
    assert fake.interactions[command.token].callbacks == [DEFERRED_CHANNEL_MESSAGE]
    assert echo.content == f"<@{fake.alice['id']}>: a cat in a teacup"
    assert answer.files and answer.custom_ids() == [
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
    assert fake.threads() == []


async def test_aspect_sets_the_thread_ratio_in_a_thread_and_the_default_elsewhere(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    command = await fake.command("aspect", ratio="21:9")
    answer = await ephemeral_answer(fake, command.token)
    assert answer.content == "Aspect ratio is now 21:9 for new conversations in this channel."
    _, thread_id = await bot.mention("a wide valley")
    await bot.replies(thread_id)
    assert gemini.requests[0].aspect_ratio == "21:9"

    command = await fake.command("aspect", thread_id, ratio="3:2")
    answer = await ephemeral_answer(fake, command.token)
    assert answer.content == "Aspect ratio is now 3:2 for this conversation."
    await fake.post(thread_id, "add a river")
    await bot.replies(thread_id, 2)
    assert gemini.requests[1].aspect_ratio == "3:2"

    command = await fake.command("aspect", thread_id)
    answer = await ephemeral_answer(fake, command.token)
    ratios = ", ".join(bot.core.service.capabilities.aspect_ratios)
    assert (
        answer.content
        == f"Aspect ratio for this conversation: 3:2. Change it with /aspect (choices: {ratios})."
    )
    assert fake.bot_messages(thread_id)[-1].files  # the thread itself only holds images


async def test_forget_deletes_the_threads_history(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a red bicycle")
    await bot.replies(thread_id)
    command = await fake.command("forget", thread_id)
    record = fake.interactions[command.token]
    await fake.wait_until(lambda: record.original_id and not fake.messages[record.original_id].loading)
    answer = fake.messages[record.original_id]  # type: ignore[index]
    assert answer.content == (
        "Forgot this conversation: 1 turn and their images are deleted. Your next message starts a new image."
    )
    assert not answer.ephemeral
    assert await bot.core.store.conversation(bot.key(thread_id)) is None
    await fake.post(thread_id, "a green bicycle")
    await bot.replies(thread_id, 3)  # the image, the forget answer, the new image
    assert len(gemini.requests[1].contents) == 1  # a fresh start, nothing from before


async def test_forget_outside_a_thread_says_where_it_works(bot: Bot) -> None:
    command = await bot.fake.command("forget")
    answer = await ephemeral_answer(bot.fake, command.token)
    assert answer.content == FORGET_WHERE


async def test_help_is_private_and_names_the_commands(bot: Bot) -> None:
    command = await bot.fake.command("help")
    answer = await ephemeral_answer(bot.fake, command.token)
    assert "/imagine" in answer.content and "Regenerate" in answer.content and "--ar 16:9" in answer.content
    assert bot.fake.interactions[command.token].callbacks == [4]


async def test_usage_is_private_and_counts_the_callers_images(bot: Bot) -> None:
    _, thread_id = await bot.mention("a lighthouse")
    await bot.replies(thread_id)
    command = await bot.fake.command("usage")
    answer = await ephemeral_answer(bot.fake, command.token)
    assert answer.content.startswith("You: 1 image today (about $0.04), 1 image this month (about $0.04).")


# -- 6. buttons ------------------------------------------------------------------------------------


async def test_regenerate_makes_a_new_image_from_the_same_prompt(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a red bicycle")
    [first] = await bot.replies(thread_id)
    click = await fake.click(first, "nb:regen:1")
    _, second = await bot.replies(thread_id, 2)
    assert fake.interactions[click.token].callbacks == [DEFERRED_UPDATE]
    assert gemini.requests[1].prompt == "a red bicycle"
    assert len(gemini.requests[1].contents) == 1  # same starting point as the first image
    assert second.files and second.custom_ids() == [
        "nb:regen:2",
        "nb:var:2",
        "nb:ar:2",
        "nb:model:2",
        "nb:frame:zoom:1.5:2",
        "nb:frame:zoom:2:2",
        "nb:frame:pan:left:2",
        "nb:frame:pan:right:2",
        "nb:frame:pan:up:2",
        "nb:frame:pan:down:2",
    ]


async def test_the_ratio_select_regenerates_at_the_chosen_ratio(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a red bicycle")
    [first] = await bot.replies(thread_id)
    await fake.click(first, "nb:ar:1", values=["9:16"])
    _, second = await bot.replies(thread_id, 2)
    assert gemini.requests[1].aspect_ratio == "9:16"
    assert image_size(second.files[0].data)[1] == (576, 1024)
    await fake.post(thread_id, "add a basket")  # the ratio stays for the conversation
    await bot.replies(thread_id, 3)
    assert gemini.requests[2].aspect_ratio == "9:16"


async def test_a_failed_regenerate_is_told_only_to_the_person_who_clicked(bot: Bot) -> None:
    fake = bot.fake
    _, thread_id = await bot.mention("a red bicycle")
    [first] = await bot.replies(thread_id)
    bot.gemini.enqueue(fg.finish("IMAGE_SAFETY"))
    click = await fake.click(first, "nb:regen:1", user=fake.bob)
    answer = await ephemeral_answer(fake, click.token)
    assert answer.content == engine.MSG_IMAGE_SAFETY
    assert fake.bot_messages(thread_id) == [first]


async def test_after_a_restart_threads_continue_and_old_buttons_work(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    _, thread_id = await bot.mention("a red bicycle")
    [first] = await bot.replies(thread_id)
    await bot.stop()

    # The new session's GUILD_CREATE leaves the thread out: it reaches the bot uncached.
    fake.announce_threads = False
    bot = await start_bot(fake, fake_gemini, db)
    try:
        await fake.post(thread_id, "make it blue")
        await bot.replies(thread_id, 2)
        assert ("GET", f"/channels/{thread_id}") in fake.requests
        assert fake_gemini.requests[1].prompt == "make it blue"
        assert len(fake_gemini.requests[1].contents) == 3

        await fake.click(first, "nb:regen:1")
        third = (await bot.replies(thread_id, 3))[2]
        assert fake_gemini.requests[2].prompt == "a red bicycle"
        assert third.custom_ids() == [
            "nb:regen:3",
            "nb:var:3",
            "nb:ar:3",
            "nb:model:3",
            "nb:frame:zoom:1.5:3",
            "nb:frame:zoom:2:3",
            "nb:frame:pan:left:3",
            "nb:frame:pan:right:3",
            "nb:frame:pan:up:3",
            "nb:frame:pan:down:3",
        ]
    finally:
        await bot.stop()


async def test_a_turn_cut_off_by_a_crash_is_announced_after_the_restart(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    message, thread_id = await bot.mention("a red bicycle")
    await bot.replies(thread_id)
    key = bot.key(thread_id)
    # What a crash mid-turn leaves: messages claimed, their turns never finished; one of them
    # was a first mention whose thread was never opened.
    await bot.core.store.claim_message("discord", key.channel, "4242", key)
    unopened = ConversationKey("discord", key.workspace, key.channel, str(message.id + 999))
    await bot.core.store.claim_message("discord", key.channel, str(message.id + 999), unopened)
    await bot.stop()
    bot = await start_bot(fake, fake_gemini, db)
    try:
        notices = await bot.replies(thread_id, 2)
        assert notices[-1].content == INTERRUPTED_MESSAGE
        assert pings_nobody(notices[-1].allowed_mentions)
        in_channel = await fake.wait_until(
            lambda: [m for m in fake.bot_messages(int(key.channel)) if m.content == INTERRUPTED_MESSAGE]
        )
        assert len(in_channel) == 1
    finally:
        await bot.stop()
    bot = await start_bot(fake, fake_gemini, db)
    try:
        await fake.post(thread_id, "make it blue")
        assert [m.content for m in await bot.replies(thread_id, 3)].count(INTERRUPTED_MESSAGE) == 1
    finally:
        await bot.stop()


# -- 7. feedback while working ---------------------------------------------------------------------


async def test_a_message_sent_while_the_thread_is_busy_is_told_it_is_queued(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    gate = asyncio.Event()
    gemini.enqueue(held(gate))
    _, thread_id = await bot.mention("a red bicycle")
    await gemini.wait_for_requests(1)
    waiting = await fake.post(thread_id, "make it blue")
    notice = (
        await fake.wait_until(
            lambda: [m for m in fake.bot_messages(thread_id) if m.content == QUEUED_MESSAGE]
        )
    )[0]
    assert notice.reference_id == waiting.id
    gate.set()
    replies = [m for m in await bot.replies(thread_id, 3) if m.files]
    assert [r.reference_id for r in replies] == [None, waiting.id]
    assert [r.prompt for r in gemini.requests] == ["a red bicycle", "make it blue"]


async def test_shutdown_lets_a_turn_in_flight_post_its_reply_before_disconnecting(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    gate = asyncio.Event()
    gemini.enqueue(held(gate))
    _, thread_id = await bot.mention("a slow oil painting")
    await gemini.wait_for_requests(1)
    closing = asyncio.create_task(bot.adapter.close())
    gate.set()
    await asyncio.wait_for(closing, 15)
    [reply] = fake.bot_messages(thread_id)
    disconnect = next(e for e in fake.events if e[0] == "disconnect")
    assert fake.position(("message", thread_id, reply.id)) < fake.position(disconnect)


# -- 8. limits and safety --------------------------------------------------------------------------


async def test_bots_webhooks_and_the_bots_own_messages_are_ignored(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    await fake.post(fake.general_id, f"{fake.mention()} draw a robot", author=fake.other_bot)
    await fake.post(fake.general_id, f"{fake.mention()} draw a hook", webhook=True)
    _, thread_id = await bot.mention("a red bicycle")  # the bot's reply echoes back as MESSAGE_CREATE
    await bot.replies(thread_id)
    dm = fake.dm_channel()
    await fake.post(dm, "a teapot")  # a barrier: handled after everything above
    await bot.replies(dm)
    assert [r.prompt for r in gemini.requests] == ["a red bicycle", "a teapot"]
    assert len(fake.threads()) == 1


async def test_a_redelivered_mention_never_generates_twice(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    message, thread_id = await bot.mention("a red bicycle")
    await bot.replies(thread_id)
    await fake.redeliver(message)
    dm = fake.dm_channel()
    await fake.post(dm, "a teapot")  # read from the gateway after the redelivery
    await bot.replies(dm)
    assert await bot.adapter.wait_idle(15)
    assert [r.prompt for r in gemini.requests] == ["a red bicycle", "a teapot"]
    assert len(fake.bot_messages(thread_id)) == 1 and len(fake.threads()) == 1


async def test_a_blocked_image_is_explained_in_plain_words(bot: Bot) -> None:
    fake = bot.fake
    bot.gemini.enqueue(fg.finish("IMAGE_SAFETY"))
    _, thread_id = await bot.mention("something the model refuses")
    [answer] = await bot.replies(thread_id)
    assert answer.content == engine.MSG_IMAGE_SAFETY
    assert answer.files == [] and answer.custom_ids() == []
    # The thread is still the bot's: the next message there is a turn.
    await fake.post(thread_id, "a friendly puppy instead")
    await bot.replies(thread_id, 2)
    assert bot.gemini.requests[1].prompt == "a friendly puppy instead"


async def test_gemini_errors_reach_users_as_one_sentence(bot: Bot) -> None:
    bot.gemini.enqueue(*[fg.error(503, "UNAVAILABLE")] * 4)
    _, thread_id = await bot.mention("a red bicycle")
    [answer] = await bot.replies(thread_id)
    assert answer.content == engine.MSG_UNAVAILABLE


async def test_an_oversized_image_is_re_encoded_to_fit_the_upload_limit(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    gemini.image_side, gemini.noisy = 2900, True
    _, thread_id = await bot.mention("a detailed city at night")
    [reply] = await bot.replies(thread_id)
    original = gemini.requests[0].response_images[-1].data
    assert len(original) > fake.upload_limit
    [file] = reply.files
    assert file.filename == "image-1.jpg"
    assert len(file.data) <= fake.upload_limit - UPLOAD_MARGIN
    assert image_size(file.data)[0] == "JPEG"


async def test_more_than_ten_images_are_split_across_messages(bot: Bot) -> None:
    bot.gemini.enqueue(fg.image(n_images=12))
    _, thread_id = await bot.mention("twelve variations of a logo")
    first, second = await bot.replies(thread_id, 2)
    assert (first.content, len(first.files)) == ("Here is your image.", 10)
    assert (second.content, len(second.files)) == ("", 2)
    assert first.custom_ids() == [] and second.custom_ids() == [
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
    # Replying to either message continues from this turn.
    key = bot.key(thread_id)
    continued = []
    for m in (first, second):
        reply = Turn(key, "a-reply", Author("someone"), "")
        router = Router(bot.core.service.store, LocalTurnOrder())
        decision = await router.consider(Inbound(reply, True, replying_to=str(m.id)), Position.now())
        decision.ticket.leave()
        continued.append(decision.continue_from)
    assert continued == [1, 1]


def permission_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("discord permission missing")]


async def test_without_thread_permission_the_bot_says_what_to_ask_for(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    fake = bot.fake
    fake.forbidden_threads.add(fake.general_id)
    asked = await fake.post(fake.general_id, f"{fake.mention()} a red bicycle")
    [answer] = await bot.replies(fake.general_id)
    assert answer.content == THREAD_FORBIDDEN
    assert answer.reference_id == asked.id
    assert bot.gemini.requests == []
    assert permission_lines(caplog) == ["discord permission missing: Create Public Threads"]


@pytest.mark.parametrize(
    ("code", "message", "permission"),
    [
        (50001, "Missing Access", "View Channel"),
        (50013, "Missing Permissions", "Send Messages in Threads or Attach Files"),
    ],
)
async def test_a_403_on_posting_logs_the_missing_permission_once(
    bot: Bot, caplog: pytest.LogCaptureFixture, code: int, message: str, permission: str
) -> None:
    fake = bot.fake
    body = json.dumps({"message": message, "code": code}).encode()
    # The first message the bot posts (its reply, in the thread on the mention) is refused.
    fake.answer_raw("POST", r"/channels/\d+/messages", 403, body, "application/json")
    asked = await fake.post(fake.general_id, f"{fake.mention()} a red bicycle")
    await fake.wait_until(lambda: fake.thread_on(asked.id))
    await bot.replies(asked.id)  # the upload failed; the fallback sentence got through
    assert permission_lines(caplog) == [f"discord permission missing: {permission}"]
    assert "discord post failed" not in [r.getMessage() for r in caplog.records]


async def test_a_bad_inline_flag_is_answered_with_what_works(bot: Bot) -> None:
    _, thread_id = await bot.mention("a red bicycle --ar 7:3")
    [answer] = await bot.replies(thread_id)
    ratios = ", ".join(bot.core.service.capabilities.aspect_ratios)
    assert (
        answer.content == f"7:3 is not an aspect ratio gemini-2.5-flash-image supports; use one of {ratios}."
    )


# -- the fake itself -------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [None, "zlib-stream"])
async def test_fake_gateway_honours_the_compress_parameter(fake: FakeDiscord, compress: str | None) -> None:
    import json
    import zlib

    import aiohttp

    query = {"v": "10", "encoding": "json", **({"compress": compress} if compress else {})}
    async with aiohttp.ClientSession() as session, session.ws_connect(fake.gateway_url, params=query) as ws:
        frame = await ws.receive(timeout=5)
        if compress:
            assert frame.type == aiohttp.WSMsgType.BINARY
            assert frame.data.endswith(b"\x00\x00\xff\xff")
            hello = json.loads(zlib.decompressobj().decompress(frame.data))
        else:
            assert frame.type == aiohttp.WSMsgType.TEXT
            hello = json.loads(frame.data)
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0


# ---------------------------------------------------------------------------------------------
# Order: a thread's turns run one at a time, in the order people posted them


async def test_messages_delivered_out_of_order_are_answered_in_posting_order(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    bot = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3", {"TURN_ORDER_SETTLE_MS": "2000"})
    try:
        _, thread_id = await bot.mention("a lighthouse")
        await bot.replies(thread_id)
        names = ["one", "two", "three", "four"]
        burst = [fake.compose(thread_id, f"burst {n}") for n in names]
        watch = fg.OverlapWatch()
        fake_gemini.enqueue(*watch.behaviours(len(burst)))
        # The third arrives first (a resumed session replaying it, say) and is taken up before
        # the others arrive.
        await fake.deliver(burst[2])
        await wait_claimed(bot.core.store, "discord", str(burst[2].id))
        for i in (0, 3, 1):
            await fake.deliver(burst[i])
        await bot.replies(thread_id, 1 + len(burst))
    finally:
        await bot.stop()
    requests = fake_gemini.requests
    assert [r.prompt for r in requests] == ["a lighthouse", *(f"burst {n}" for n in names)]
    assert [r.contents[-3]["parts"][0]["text"] for r in requests[1:]] == [r.prompt for r in requests[:-1]]
    assert watch.peak == 1
