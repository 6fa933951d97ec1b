"""Native on Discord: Edit with Nano Banana, the user install, takes in one message, alt text. The
real discord.py client against the fake Discord and Gemini."""

from __future__ import annotations

from adapters.discord.gallery import alt_text
from adapters.discord.words import ALT_WITHOUT_PROMPT, NO_IMAGE_TO_EDIT
from bot.entry.service import UNKNOWN_TURN_MESSAGE
from bot.vocabulary import ImagePart
from tests.auxil import fake_gemini as fg
from tests.auxil.discord_bot import EDIT, PIN, Bot, ephemeral_answer, photo
from tests.auxil.discord_bot import bot as bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
    IS_COMPONENTS_V2,
    MODAL,
    FakeDiscord,
    FakeFile,
    FakeInteraction,
    FakeMessage,
)
from tests.bot.turns.test_variations import model_parts


async def open_form(fake: FakeDiscord, message: FakeMessage) -> FakeInteraction:
    opened = await fake.message_command(EDIT, message)
    await fake.wait_until(lambda: opened.modal)
    return opened


async def followups(fake: FakeDiscord, record: FakeInteraction, count: int) -> list[FakeMessage]:
    """The first ``count`` followup messages the bot sent for an interaction."""

    def enough() -> list[FakeMessage] | None:
        return [fake.messages[i] for i in record.followup_ids] if len(record.followup_ids) >= count else None

    return (await fake.wait_until(enough))[:count]


# -- the commands, in both installs and every context ----------------------------------------------


async def test_every_command_is_offered_in_both_installs_and_every_context(bot: Bot) -> None:
    registered = {c["name"]: c for c in bot.fake.commands[None]}
    assert registered[EDIT]["type"] == registered[PIN]["type"] == 3  # message context-menu commands
    assert sorted(registered) == sorted(
        [EDIT, PIN, "aspect", "forget", "help", "imagine", "model", "pin", "pins", "unpin", "usage"]
    )
    for command in registered.values():
        assert command["integration_types"] == [0, 1], command["name"]
        assert command["contexts"] == [0, 1, 2], command["name"]


# -- Edit with Nano Banana where the bot is ---------------------------------------------------------


async def test_edit_with_opens_a_form_then_edits_the_image_in_a_thread_on_the_message(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    picture = photo()
    message = await fake.post(fake.general_id, "our harbour this morning", files=[picture])
    opened = await open_form(fake, message)
    assert opened.callbacks == [MODAL]
    assert opened.modal is not None and opened.modal["title"] == EDIT
    [row] = opened.modal["components"]
    [field] = row["components"]
    assert (field["type"], field["label"], field["style"]) == (4, "What should change?", 2)

    submitted = await fake.submit(opened, "make the sky a stormy purple")
    thread = await fake.wait_until(lambda: fake.thread_on(message.id))
    echo, reply = await bot.replies(message.id, 2)
    assert thread["name"] == "make the sky a stormy purple"
    assert echo.content == f"<@{fake.alice['id']}>: make the sky a stormy purple (1 image attached)"
    # The image the person right-clicked went to Gemini byte for byte, with the instruction.
    [sent] = gemini.requests
    assert [i.data for i in sent.all_images] == [picture.data]
    assert sent.prompt == "make the sky a stormy purple"
    assert reply.files and reply.custom_ids()[0] == "nb:regen:1"
    # Alt text: the prompt that made the image.
    assert [f.description for f in reply.files] == ["make the sky a stormy purple"]
    assert [a["description"] for a in reply.payload["attachments"]] == ["make the sky a stormy purple"]
    # The person who asked is told where, privately; nothing else in the channel.
    answer = await ephemeral_answer(fake, submitted.token)
    assert submitted.callbacks == [DEFERRED_CHANNEL_MESSAGE]
    assert answer.content == f"Editing it in <#{message.id}>."
    assert fake.bot_messages(fake.general_id) == []

    # The thread is a conversation like any other.
    await fake.post(message.id, "now at night")
    await bot.replies(message.id, 3)
    assert len(gemini.requests[1].contents) == 3


async def test_edit_with_in_the_bots_thread_is_the_next_turn_there(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a lighthouse")
    [first] = await bot.replies(thread_id)
    opened = await open_form(fake, first)
    await fake.submit(opened, "paint it red")
    first_again, echo, second = await bot.replies(thread_id, 3)
    assert first_again.id == first.id and echo.content.endswith(": paint it red (1 image attached)")
    sent = gemini.requests[1]
    assert len(sent.contents) == 3  # the thread's history, then the image and the instruction
    assert sent.all_images[-1].data == first.files[0].data
    assert second.files and [f.description for f in second.files] == ["paint it red"]
    assert len(fake.threads()) == 1


async def test_edit_with_in_a_dm_answers_in_place(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    dm = fake.dm_channel()
    message = await fake.post(dm, "", files=[photo()])
    [reply] = await bot.replies(dm)  # a DM with only a photo is a turn already
    assert [f.description for f in reply.files] == [ALT_WITHOUT_PROMPT]  # no words: alt text still
    opened = await open_form(fake, reply)
    await fake.submit(opened, "add a rainbow")
    _, echo, edited = await bot.replies(dm, 3)
    assert echo.content.endswith(": add a rainbow (1 image attached)") and edited.files
    assert gemini.requests[1].all_images[-1].data == reply.files[0].data
    assert message.id < echo.id and not fake.threads()


async def test_a_message_without_an_image_gets_one_private_sentence(bot: Bot) -> None:
    fake = bot.fake
    message = await fake.post(
        fake.general_id, "just words", files=[FakeFile("notes.txt", b"hi", "text/plain")]
    )
    opened = await fake.message_command(EDIT, message)
    answer = await ephemeral_answer(fake, opened.token)
    assert answer.content == NO_IMAGE_TO_EDIT
    assert opened.modal is None and not fake.threads() and not bot.gemini.requests


# -- a person's own install, in a server without the bot --------------------------------------------


async def test_edit_with_where_the_bot_is_not_a_member_goes_through_the_interaction(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    channel = fake.add_foreign_guild()
    picture = photo()
    message = await fake.post(channel, "look at this", files=[picture])
    before = len(fake.requests)
    opened = await open_form(fake, message)
    submitted = await fake.submit(opened, "make it snow")
    [reply] = await followups(fake, submitted, 1)
    assert submitted.callbacks == [DEFERRED_CHANNEL_MESSAGE]
    original = fake.messages[submitted.original_id or 0]
    assert (
        original.content == f"<@{fake.alice['id']}>: make it snow (1 image attached)"
        and not original.ephemeral
    )
    assert [i.data for i in gemini.requests[0].all_images] == [picture.data]
    assert reply.files and not reply.ephemeral and reply.channel_id == channel
    turn = reply.custom_ids()[0].removeprefix("nb:refine:")
    assert reply.custom_ids()[:2] == [f"nb:refine:{turn}", f"nb:regen:{turn}"]
    assert [f.description for f in reply.files] == ["make it snow"]

    # Refine: the next instruction in a form, the answer continuing the same conversation.
    refine = await fake.click(reply, f"nb:refine:{turn}")
    await fake.wait_until(lambda: refine.modal)
    assert refine.modal is not None and refine.modal["title"] == "Refine this image"
    refined = await fake.submit(refine, "add a snowman")
    echo, again = await followups(fake, refined, 2)
    assert refined.callbacks == [DEFERRED_UPDATE]
    assert echo.content == f"<@{fake.alice['id']}>: add a snowman" and again.files
    assert gemini.requests[1].prompt == "add a snowman" and len(gemini.requests[1].contents) == 3

    # The other controls work there too.
    again_turn = again.custom_ids()[0].removeprefix("nb:refine:")
    regenerate = await fake.click(again, f"nb:regen:{again_turn}")
    [redrawn] = await followups(fake, regenerate, 1)
    assert redrawn.files and gemini.requests[2].prompt == "add a snowman"
    assert await bot.core.service.drain(15)

    # Only interaction endpoints were used: no thread, no channel post, no lookup of the channel.
    used = {path.split("/")[1] for _, path in fake.requests[before:]}
    assert used == {"interactions", "webhooks"}, fake.requests[before:]
    assert not fake.threads()


async def test_imagine_where_the_bot_is_not_a_member_answers_through_the_interaction(bot: Bot) -> None:
    fake = bot.fake
    channel = fake.add_foreign_guild()
    before = len(fake.requests)
    command = await fake.command("imagine", channel, prompt="a paper boat")
    [reply] = await followups(fake, command, 1)
    assert reply.files and reply.custom_ids()[0].startswith("nb:refine:")
    assert fake.messages[command.original_id or 0].content.endswith(": a paper boat")
    assert await bot.core.service.drain(15)
    assert {path.split("/")[1] for _, path in fake.requests[before:]} == {"interactions", "webhooks"}


async def test_in_a_group_dm_the_conversation_goes_on_through_the_interaction(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    group = fake.group_dm(fake.alice, fake.bob)
    before = len(fake.requests)
    command = await fake.command("imagine", group, prompt="a paper boat")
    [reply] = await followups(fake, command, 1)
    turn = reply.custom_ids()[0].removeprefix("nb:refine:")
    assert await bot.core.service.drain(15)
    refine = await fake.click(reply, f"nb:refine:{turn}")
    await fake.wait_until(lambda: refine.modal)
    refined = await fake.submit(refine, "give it a red sail")
    _, again = await followups(fake, refined, 2)
    assert again.files and again.channel_id == group
    assert gemini.requests[1].prompt == "give it a red sail" and len(gemini.requests[1].contents) == 3
    assert await bot.core.service.drain(15)
    assert {path.split("/")[1] for _, path in fake.requests[before:]} == {"interactions", "webhooks"}


async def test_a_control_naming_another_channels_turn_changes_nothing(bot: Bot) -> None:
    fake = bot.fake
    _, thread_id = await bot.mention("a castle")
    [mine] = await bot.replies(thread_id)
    channel = fake.add_foreign_guild()
    command = await fake.command("imagine", channel, prompt="a paper boat")
    [reply] = await followups(fake, command, 1)
    assert await bot.core.service.drain(15)
    # A forged custom id on the reply: the castle's turn (1) belongs to another channel.
    forged = FakeMessage({**reply.payload, "components": mine.payload["components"]})
    click = await fake.click(forged, "nb:regen:1")
    answer = await ephemeral_answer(fake, click.token)
    assert answer.content == UNKNOWN_TURN_MESSAGE
    assert len(bot.gemini.requests) == 2


# -- takes in one message ---------------------------------------------------------------------------


async def test_takes_are_one_message_with_a_gallery_and_continue_buttons(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    gemini.enqueue(*(fg.numbered(n) for n in (1, 2, 3)))
    _, thread_id = await bot.mention("a lighthouse --n 3")
    [takes] = await bot.replies(thread_id)
    assert await bot.core.service.drain(15)
    assert fake.bot_messages(thread_id) == [takes]
    assert takes.flags & IS_COMPONENTS_V2 and not takes.content
    gallery = takes.gallery()
    assert [g["description"] for g in gallery] == [f"Take {n} of 3: a lighthouse" for n in (1, 2, 3)]
    assert [g["media"]["url"] for g in gallery] == [f"attachment://take-{n}.png" for n in (1, 2, 3)]
    assert [f.filename for f in takes.files] == ["take-1.png", "take-2.png", "take-3.png"]
    assert [f.description for f in takes.files] == [g["description"] for g in gallery]
    # Each take's words, numbered as its image is (the takes come back in any order).
    said = sorted(model_parts(r)[1]["text"] for r in gemini.requests)
    assert said == ["Answer 1", "Answer 2", "Answer 3"]
    lines = takes.texts()[0].split("\n")
    assert [line.split(" ")[0] for line in lines] == ["**1.**", "**2.**", "**3.**"]
    assert sorted(line.split(" ", 1)[1] for line in lines) == said
    continues = [c for c in takes.custom_ids() if c.startswith("nb:cont:")]
    assert [takes.component(c)["label"] for c in continues] == [
        "Continue from 1",
        "Continue from 2",
        "Continue from 3",
    ]
    assert len({c for c in continues}) == 3
    shared = [c.split(":")[1] for c in takes.custom_ids() if not c.startswith("nb:cont:")]
    assert shared == ["regen", "var", "ar", "model"]

    # Continue from 2, then refine it.
    texts = takes.texts()[0].split("\n")
    second = texts[1].removeprefix("**2.** ")
    click = await fake.click(takes, continues[1])
    note = (await bot.replies(thread_id, 2))[1]
    assert fake.interactions[click.token].callbacks == [DEFERRED_UPDATE]
    assert note.content == "Continuing from this take: your next message refines it."
    await fake.post(thread_id, "add a storm")
    await bot.replies(thread_id, 3)
    model_turn = gemini.requests[3].contents[1]["parts"]
    assert any(p.get("text") == second for p in model_turn)


async def test_a_channel_that_refuses_components_v2_gets_the_takes_one_by_one(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    gemini.enqueue(*(fg.numbered(n) for n in (1, 2)))
    _, thread_id = await bot.mention("a lighthouse")
    await bot.replies(thread_id)
    fake.refuse_v2.add(thread_id)
    await fake.post(thread_id, "at dawn --n 2")
    posted = await bot.replies(thread_id, 3)
    assert await bot.core.service.drain(15)
    takes = posted[1:]
    assert [m.content.split("\n")[0] for m in takes] == ["Take 1 of 2", "Take 2 of 2"]
    assert all(not m.flags & IS_COMPONENTS_V2 and len(m.files) == 1 for m in takes)
    assert [m.files[0].description for m in takes] == ["at dawn", "at dawn"]
    assert all(any(c.startswith("nb:cont:") for c in m.custom_ids()) for m in takes)
    assert len(fake.bot_messages(thread_id)) == 3


async def test_takes_through_the_interaction_are_one_message_too(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    channel = fake.add_foreign_guild()
    gemini.enqueue(*(fg.numbered(n) for n in (1, 2)))
    command = await fake.command("imagine", channel, prompt="two kites --n 2")
    [takes] = await followups(fake, command, 1)
    assert takes.flags & IS_COMPONENTS_V2 and len(takes.gallery()) == 2
    assert [c.split(":")[1] for c in takes.custom_ids()] == [
        "cont",
        "cont",
        "regen",
        "var",
        "refine",
        "ar",
        "model",
    ]
    assert await bot.core.service.drain(15)
    continue_two = [c for c in takes.custom_ids() if c.startswith("nb:cont:")][1]
    click = await fake.click(takes, continue_two)
    [note] = await followups(fake, click, 1)
    assert note.content == "Continuing from this take: your next message refines it."


def test_alt_text_keeps_within_discords_1024_characters() -> None:
    long_prompt = "a very long harbour scene " * 60  # 1560 characters, past the limit
    alt = alt_text(ImagePart(b"", "image/png", "image-1.png", alt=long_prompt), "Take 2 of 4")
    assert len(alt) == 1024 and alt.startswith("Take 2 of 4: a very long harbour scene") and alt.endswith("…")
    assert alt_text(ImagePart(b"", "image/png", "x.png", alt="  two\nlines ")) == "two lines"
