"""Forms (modals) survive a restart: Edit with Nano Banana, Pin as reference and Refine are answered
from the form's custom id alone. The real discord.py client against the fake Discord and Gemini; the
bot stops and a new one starts on the same fake and database between opening and submitting."""

from __future__ import annotations

import hashlib
from pathlib import Path

from adapters.discord.words import (
    FORM_FROM_BEFORE_RESTART,
    FORM_MESSAGE_GONE,
    FORM_UNREADABLE,
    NO_IMAGE_TO_EDIT,
    NO_IMAGE_TO_PIN,
)
from bot.entry.service import UNKNOWN_TURN_MESSAGE
from bot.text import pin_words
from tests.auxil import image_factory as img
from tests.auxil.discord_bot import EDIT, PIN, Bot, ephemeral_answer, photo, start_bot, stop_and_check
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
    FakeDiscord,
    FakeFile,
    FakeInteraction,
    FakeMessage,
)
from tests.auxil.fake_gemini import FakeGemini


async def open_form(fake: FakeDiscord, menu: str, message: FakeMessage) -> FakeInteraction:
    opened = await fake.message_command(menu, message)
    await fake.wait_until(lambda: opened.modal)
    return opened


async def restarted(bot: Bot, db: Path) -> Bot:
    """The bot stopped, and a new one (a new client, no memory of the old) on the same database."""
    await bot.stop()
    return await start_bot(bot.fake, bot.gemini, db)


async def followups(fake: FakeDiscord, record: FakeInteraction, count: int) -> list[FakeMessage]:
    def enough() -> list[FakeMessage] | None:
        return [fake.messages[i] for i in record.followup_ids] if len(record.followup_ids) >= count else None

    return (await fake.wait_until(enough))[:count]


# -- what a form's custom id carries ---------------------------------------------------------------


async def test_a_form_carries_ids_only_within_discords_100_characters(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    bot = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3")
    try:
        message = await fake.post(fake.general_id, "our harbour this morning", files=[photo()])
        edit = await open_form(fake, EDIT, message)
        pin = await open_form(fake, PIN, message)
        assert edit.modal is not None and pin.modal is not None
        assert edit.modal["custom_id"] == f"nb:edit:{fake.general_id}:{message.id}"
        assert pin.modal["custom_id"] == f"nb:pin:{fake.general_id}:{message.id}"
        assert all(len(m["custom_id"]) <= 100 for m in (edit.modal, pin.modal))
    finally:
        await stop_and_check(bot)


# -- submitted after a restart ---------------------------------------------------------------------


async def test_an_edit_form_submitted_after_a_restart_edits_the_image(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    picture = photo()
    message = await fake.post(fake.general_id, "our harbour this morning", files=[picture])
    opened = await open_form(fake, EDIT, message)
    bot = await restarted(bot, db)
    try:
        submitted = await fake.submit(opened, "make the sky a stormy purple")
        thread = await fake.wait_until(lambda: fake.thread_on(message.id))
        echo, reply = await bot.replies(message.id, 2)
        assert echo.content == f"<@{fake.alice['id']}>: make the sky a stormy purple (1 image attached)"
        assert reply.files and thread["name"]
        [sent] = fake_gemini.requests
        assert sent.prompt == "make the sky a stormy purple"
        assert [i.data for i in sent.all_images] == [picture.data]
        # The new process fetched the message again over REST to find its image.
        assert ("GET", f"/channels/{fake.general_id}/messages/{message.id}") in fake.requests
        answer = await ephemeral_answer(fake, submitted.token)
        assert answer.content == f"Editing it in <#{message.id}>."
    finally:
        await stop_and_check(bot)


async def test_a_pin_form_submitted_after_a_restart_pins_the_image_byte_for_byte(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    picture = FakeFile("alice.png", img.png(64, 80, img.RED), "image/png")
    message = await fake.post(fake.general_id, "this is Alice", files=[picture])
    opened = await open_form(fake, PIN, message)
    bot = await restarted(bot, db)
    try:
        submitted = await fake.submit(opened, "Alice")
        answer = await ephemeral_answer(fake, submitted.token)
        assert submitted.callbacks == [DEFERRED_CHANNEL_MESSAGE]
        assert answer.content == pin_words.pinned("alice") and answer.ephemeral
        [pin] = await bot.core.store.pins("discord", str(fake.guild_id))
        assert (pin.name, pin.sha256) == ("alice", hashlib.sha256(picture.data).hexdigest())

        _, thread_id = await bot.mention("Alice rides a bicycle --ref alice")
        await bot.replies(thread_id)
        [sent] = fake_gemini.requests
        assert [i.data for i in sent.all_images] == [picture.data]
    finally:
        await stop_and_check(bot)


async def test_a_refine_form_submitted_after_a_restart_continues_from_that_image(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    channel = fake.add_foreign_guild()
    command = await fake.command("imagine", channel, prompt="a paper boat")
    [reply] = await followups(fake, command, 1)
    assert await bot.core.service.drain(15)
    turn = reply.custom_ids()[0].removeprefix("nb:refine:")
    refine = await fake.click(reply, f"nb:refine:{turn}")
    await fake.wait_until(lambda: refine.modal)
    assert refine.modal is not None and refine.modal["custom_id"] == f"nb:refine:{turn}"
    bot = await restarted(bot, db)
    try:
        before = len(fake.requests)
        refined = await fake.submit(refine, "give it a red sail")
        echo, again = await followups(fake, refined, 2)
        assert refined.callbacks == [DEFERRED_UPDATE]
        assert echo.content == f"<@{fake.alice['id']}>: give it a red sail" and again.files
        sent = fake_gemini.requests[1]
        assert sent.prompt == "give it a red sail" and len(sent.contents) == 3
        # The image it continues from goes back to Gemini byte for byte.
        assert [i.data for i in sent.all_images] == [reply.files[0].data]
        assert await bot.core.service.drain(15)
        assert {path.split("/")[1] for _, path in fake.requests[before:]} == {"interactions", "webhooks"}
    finally:
        await stop_and_check(bot)


# -- the message gone, or changed, meanwhile --------------------------------------------------------


async def test_a_message_deleted_meanwhile_gets_one_private_sentence(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    message = await fake.post(fake.general_id, "our harbour this morning", files=[photo()])
    edit = await open_form(fake, EDIT, message)
    pin = await open_form(fake, PIN, message)
    bot = await restarted(bot, db)
    try:
        del fake.messages[message.id]
        for opened, text in ((edit, "make it snow"), (pin, "harbour")):
            submitted = await fake.submit(opened, text)
            answer = await ephemeral_answer(fake, submitted.token)
            assert answer.content == FORM_MESSAGE_GONE and answer.ephemeral
        assert not fake.threads() and not fake_gemini.requests
        assert fake.bot_messages(fake.general_id) == []
        assert await bot.core.store.pins("discord", str(fake.guild_id)) == []
    finally:
        await stop_and_check(bot)


async def test_a_message_whose_image_was_removed_meanwhile_gets_the_no_image_sentence(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    message = await fake.post(fake.general_id, "our harbour this morning", files=[photo()])
    edit = await open_form(fake, EDIT, message)
    pin = await open_form(fake, PIN, message)
    bot = await restarted(bot, db)
    try:
        message.payload["attachments"] = []  # the author edited the picture out
        for opened, sentence in ((edit, NO_IMAGE_TO_EDIT), (pin, NO_IMAGE_TO_PIN)):
            submitted = await fake.submit(opened, "harbour")
            answer = await ephemeral_answer(fake, submitted.token)
            assert answer.content == sentence and answer.ephemeral
        assert not fake.threads() and not fake_gemini.requests
    finally:
        await stop_and_check(bot)


async def test_where_the_bot_cannot_read_a_form_from_before_the_restart_is_told_so(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    channel = fake.add_foreign_guild()
    message = await fake.post(channel, "look at this", files=[photo()])
    opened = await open_form(fake, EDIT, message)
    bot = await restarted(bot, db)
    try:
        before = len(fake.requests)
        submitted = await fake.submit(opened, "make it snow")
        answer = await ephemeral_answer(fake, submitted.token)
        assert answer.content == FORM_FROM_BEFORE_RESTART and answer.ephemeral
        assert not fake_gemini.requests
        # No lookup of a message the bot may not read: only the interaction's answer.
        assert {path.split("/")[1] for _, path in fake.requests[before:]} == {"interactions"}
    finally:
        await stop_and_check(bot)


# -- forged custom ids -------------------------------------------------------------------------------


async def test_a_forged_form_gets_one_private_sentence_and_no_turn(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    bot = await start_bot(fake, fake_gemini, db)
    try:
        elsewhere = fake.add_foreign_guild()
        theirs = await fake.post(elsewhere, "their photo", files=[photo()])
        message = await fake.post(fake.general_id, "our harbour this morning", files=[photo()])
        general = fake.general_id
        forged = {
            "nb:frob:1:2": FORM_UNREADABLE,  # an unknown prefix
            "a0b1c2d3e4f5": FORM_UNREADABLE,  # not ours at all
            f"nb:edit:{general}:x{message.id}": FORM_UNREADABLE,  # not numeric
            f"nb:pin:general:{message.id}": FORM_UNREADABLE,
            f"nb:edit:{general}:{message.id}:1": FORM_UNREADABLE,  # one id too many
            f"nb:edit:{general}:0": FORM_UNREADABLE,
            f"nb:edit:{elsewhere}:{theirs.id}": FORM_UNREADABLE,  # another server's channel
            f"nb:pin:{elsewhere}:{theirs.id}": FORM_UNREADABLE,
            "nb:refine:abc": FORM_UNREADABLE,
            "nb:refine:-1": FORM_UNREADABLE,
            "nb:refine:4242": UNKNOWN_TURN_MESSAGE,  # no such turn
        }
        for custom_id, sentence in forged.items():
            opened = await open_form(fake, EDIT, message)
            assert opened.modal is not None
            opened.modal["custom_id"] = custom_id
            submitted = await fake.submit(opened, "make it snow")
            answer = await ephemeral_answer(fake, submitted.token)
            assert (custom_id, answer.content, answer.ephemeral) == (custom_id, sentence, True)
            assert len([m for m in fake.messages.values() if m.content == sentence]) >= 1
        assert not fake.threads() and not fake_gemini.requests
        assert fake.bot_messages(general) == [] and fake.bot_messages(elsewhere) == []
        assert await bot.core.store.pins("discord", str(fake.guild_id)) == []
        assert await bot.core.store.turn(1) is None
    finally:
        await stop_and_check(bot)
