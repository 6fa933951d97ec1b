"""Pin as reference: the message context menu that pins a message's image on the reference board.
The real discord.py client against the fake Discord and Gemini; the pins read back from the store."""

from __future__ import annotations

import hashlib
from typing import Any

from adapters.discord.words import NO_IMAGE_TO_PIN, PIN_LABEL, PIN_MENU, PIN_PLACEHOLDER
from bot.text import messages, pin_words
from tests.auxil import image_factory as img
from tests.auxil.discord_bot import Bot, ephemeral_answer
from tests.auxil.discord_bot import bot as bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE,
    MESSAGE_COMMAND,
    MODAL,
    FakeDiscord,
    FakeFile,
    FakeInteraction,
    FakeMessage,
)


def portrait() -> FakeFile:
    return FakeFile("alice.png", img.png(64, 80, img.RED), "image/png")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def open_form(fake: FakeDiscord, message: FakeMessage) -> FakeInteraction:
    opened = await fake.message_command(PIN_MENU, message)
    await fake.wait_until(lambda: opened.modal)
    return opened


async def pin_as(
    fake: FakeDiscord, message: FakeMessage, name: str, user: dict[str, Any] | None = None
) -> str:
    """Right-click ``message`` → Pin as reference, submit ``name``; the private answer."""
    opened = await fake.message_command(PIN_MENU, message, user=user)
    await fake.wait_until(lambda: opened.modal)
    submitted = await fake.submit(opened, name, user=user)
    answer = await ephemeral_answer(fake, submitted.token)
    assert submitted.callbacks == [DEFERRED_CHANNEL_MESSAGE] and answer.ephemeral
    return answer.content


async def test_pin_as_reference_is_a_message_command_in_both_installs_and_every_context(bot: Bot) -> None:
    registered = {c["name"]: c for c in bot.fake.commands[None]}
    command = registered[PIN_MENU]
    assert command["type"] == MESSAGE_COMMAND == 3
    assert command["integration_types"] == [0, 1]
    assert command["contexts"] == [0, 1, 2]
    assert "options" not in command or not command["options"]


async def test_a_pinned_attachment_goes_to_gemini_byte_for_byte_with_ref(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    picture = portrait()
    message = await fake.post(fake.general_id, "this is Alice", files=[picture])
    opened = await open_form(fake, message)
    assert opened.callbacks == [MODAL]
    assert opened.modal is not None and opened.modal["title"] == PIN_MENU
    [row] = opened.modal["components"]
    [field] = row["components"]
    # One short line (style 1), the naming rule as its placeholder, no longer than a name may be.
    assert (field["type"], field["style"], field["label"]) == (4, 1, PIN_LABEL)
    assert field["placeholder"] == PIN_PLACEHOLDER
    assert (field["min_length"], field["max_length"]) == (1, pin_words.MAX_NAME)

    submitted = await fake.submit(opened, "Alice")
    answer = await ephemeral_answer(fake, submitted.token)
    assert answer.content == pin_words.pinned("alice") and answer.ephemeral
    [pin] = await bot.core.store.pins("discord", str(fake.guild_id))
    assert (pin.name, pin.sha256, pin.pinned_by) == ("alice", sha(picture.data), str(fake.alice["id"]))
    # Nothing public: no message in the channel, no thread, no request to Gemini.
    assert fake.bot_messages(fake.general_id) == [] and not fake.threads() and not gemini.requests

    _, thread_id = await bot.mention("Alice rides a bicycle --ref alice", author=fake.bob)
    [drawn] = await bot.replies(thread_id)
    assert drawn.files
    [sent] = gemini.requests
    assert [i.data for i in sent.all_images] == [picture.data]
    texts = [p["text"] for p in sent.contents[-1]["parts"] if "text" in p]
    assert texts == [pin_words.reference_label("alice"), "Alice rides a bicycle"]


async def test_a_taken_name_is_refused_and_the_first_pin_stays(bot: Bot) -> None:
    fake = bot.fake
    first = await fake.post(fake.general_id, "", files=[portrait()])
    assert await pin_as(fake, first, "alice") == pin_words.pinned("alice")
    other = FakeFile("other.png", img.png(30, 30, img.BLUE), "image/png")
    second = await fake.post(fake.general_id, "", files=[other], author=fake.bob)
    assert await pin_as(fake, second, "ALICE", user=fake.bob) == pin_words.name_taken("alice")
    [pin] = await bot.core.store.pins("discord", str(fake.guild_id))
    assert pin.sha256 == sha(portrait().data) and pin.pinned_by == str(fake.alice["id"])


async def test_a_message_without_an_image_gets_one_private_sentence_and_no_form(bot: Bot) -> None:
    fake = bot.fake
    message = await fake.post(
        fake.general_id, "just words", files=[FakeFile("notes.txt", b"hi", "text/plain")]
    )
    opened = await fake.message_command(PIN_MENU, message)
    answer = await ephemeral_answer(fake, opened.token)
    assert answer.content == NO_IMAGE_TO_PIN and answer.ephemeral
    assert opened.callbacks == [4] and opened.modal is None
    assert await bot.core.store.pins("discord", str(fake.guild_id)) == []


async def test_bad_names_too_big_and_not_an_image_are_one_sentence_each(bot: Bot) -> None:
    fake = bot.fake
    message = await fake.post(fake.general_id, "", files=[portrait()])
    assert await pin_as(fake, message, "no way!") == pin_words.bad_name("no way!")
    assert await pin_as(fake, message, "-dash") == pin_words.bad_name("-dash")
    assert await pin_as(fake, message, "   ") == pin_words.PIN_WHICH_NAME

    limit = bot.core.config.images.max_attachment_bytes
    huge = FakeFile("huge.png", img.png(), "image/png", declared_size=limit + 1)
    big = await fake.post(fake.general_id, "", files=[huge])
    assert await pin_as(fake, big, "huge") == messages.file_too_large("huge.png", "20 MB")
    fake_png = FakeFile("fake.png", b"this is plain text, not a picture", "image/png")
    text = await fake.post(fake.general_id, "", files=[fake_png])
    assert await pin_as(fake, text, "fake") == messages.not_an_image("fake.png")
    assert await bot.core.store.pins("discord", str(fake.guild_id)) == []


async def test_an_embedded_image_is_pinned_through_discords_media_proxy(bot: Bot) -> None:
    fake = bot.fake
    picture = portrait()
    hosted = await fake.post(fake.general_id, "", files=[picture])
    proxied = hosted.payload["attachments"][0]["proxy_url"]
    link = await fake.post(fake.general_id, "https://example.com/alice")
    # A link to an image on another site: Discord shows it as an embed, served by its media proxy.
    outside = "https://example.com/alice.png"
    thumbnail = {"url": outside, "proxy_url": proxied, "width": 64, "height": 80}
    link.payload["embeds"] = [{"type": "image", "url": outside, "thumbnail": thumbnail}]
    assert await pin_as(fake, link, "alice") == pin_words.pinned("alice")
    [pin] = await bot.core.store.pins("discord", str(fake.guild_id))
    assert pin.sha256 == sha(picture.data)


async def test_in_a_dm_the_pin_is_on_the_persons_own_board_as_with_slash_pin(bot: Bot) -> None:
    fake = bot.fake
    dm = fake.dm_channel()
    picture = portrait()
    message = await fake.post(dm, "", files=[picture])
    await bot.replies(dm)  # a DM with only a photo is a turn already
    assert await pin_as(fake, message, "me") == pin_words.pinned("me")
    [pin] = await bot.core.store.pins("discord", f"dm:{fake.alice['id']}")
    assert pin.sha256 == sha(picture.data)
    # /pin in the DM sees the same board: the name is taken.
    again = await fake.command("pin", dm, name="me")
    assert (await ephemeral_answer(fake, again.token)).content == pin_words.name_taken("me")
    # Another person's DM with the bot is another board: Alice's pin is not theirs to see.
    theirs = await fake.command("pins", fake.dm_channel(fake.bob), user=fake.bob)
    assert (await ephemeral_answer(fake, theirs.token)).content == pin_words.NO_PINS


async def test_in_a_group_dm_the_pin_goes_through_the_interaction_to_the_dm_board(bot: Bot) -> None:
    fake = bot.fake
    group = fake.group_dm(fake.alice, fake.bob)
    picture = portrait()
    # The bot is not in a group DM: its messages never reach it (composed, never delivered).
    message = fake.compose(group, "", files=[picture])
    before = len(fake.requests)
    assert await pin_as(fake, message, "us") == pin_words.pinned("us")
    [pin] = await bot.core.store.pins("discord", f"dm:{fake.alice['id']}")
    assert pin.sha256 == sha(picture.data)
    used = {path.split("/")[1] for _, path in fake.requests[before:]}
    assert used <= {"interactions", "webhooks", "attachments"}, fake.requests[before:]


async def test_where_the_bot_is_not_a_member_the_pin_is_that_servers(bot: Bot) -> None:
    fake = bot.fake
    channel = fake.add_foreign_guild()
    picture = portrait()
    message = await fake.post(channel, "look", files=[picture])
    guild = fake.channels[channel]["guild_id"]
    before = len(fake.requests)
    assert await pin_as(fake, message, "alice") == pin_words.pinned("alice")
    [pin] = await bot.core.store.pins("discord", guild)
    assert pin.sha256 == sha(picture.data)
    assert await bot.core.store.pins("discord", str(fake.guild_id)) == []
    used = {path.split("/")[1] for _, path in fake.requests[before:]}
    assert used <= {"interactions", "webhooks", "attachments"}, fake.requests[before:]


async def test_help_mentions_the_menu_and_still_lists_every_command(bot: Bot) -> None:
    command = await bot.fake.command("help")
    answer = await ephemeral_answer(bot.fake, command.token)
    assert f"*Apps* → *{PIN_MENU}*" in answer.content
    # Within Discord's 2000 characters without cutting (a cut text is exactly 2000 long).
    assert len(answer.content) < 2000 and answer.content.splitlines()[-1] == "`/help` this help"
