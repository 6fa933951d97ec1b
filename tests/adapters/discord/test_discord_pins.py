"""The reference board on Discord, end to end (the real discord.py client against the fake gateway
and REST): a character pinned once and reused in three prompts, an attached image pinned, /pins
with previews, and who may unpin."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from bot.text import pin_words
from tests.auxil import image_factory as img
from tests.auxil.discord_bot import Bot, ephemeral_answer
from tests.auxil.discord_bot import bot as bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import FakeFile
from tests.auxil.fake_gemini import described

# View channel, send messages, read history: a member who may not manage the server.
MEMBER = (1 << 10) | (1 << 11) | (1 << 16)


def image_key(data: bytes) -> str:
    return "image:" + hashlib.sha256(data).hexdigest()[:12]


async def test_a_character_pinned_once_is_reused_in_three_prompts(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    _, thread_id = await bot.mention("a girl called Alice in a red coat")
    [drawn] = await bot.replies(thread_id)
    alice = image_key(drawn.files[0].data)
    pin = await fake.command("pin", thread_id, name="Alice")
    assert (await ephemeral_answer(fake, pin.token)).content == pin_words.pinned("alice")
    taken = await fake.command("pin", name="alice", user=fake.bob)
    assert (await ephemeral_answer(fake, taken.token)).content == pin_words.name_taken("alice")

    await fake.post(thread_id, "she rides a bicycle --ref alice")
    _, ride = await bot.replies(thread_id, 2)
    _, second = await bot.mention("Alice at the beach --ref ALICE")
    await bot.replies(second)
    _, third = await bot.mention("Alice reads in a library --ref alice", author=fake.bob)
    await bot.replies(third)
    assert ride.files
    assert len(gemini.requests) == 4
    for request in gemini.requests[1:]:
        parts = described(request.contents[-1]["parts"])
        assert parts[-3:-1] == [pin_words.reference_label("alice"), alice]


async def test_an_attached_image_is_pinned_and_refs_go_in_order(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    bob_png = img.png(40, 40)
    pin = await fake.command("pin", name="bob", image=FakeFile("bob.png", bob_png, "image/png"))
    assert (await ephemeral_answer(fake, pin.token)).content == pin_words.pinned("bob")
    _, thread_id = await bot.mention("a girl called Alice")
    [drawn] = await bot.replies(thread_id)
    await ephemeral_answer(fake, (await fake.command("pin", thread_id, name="alice")).token)
    await fake.post(thread_id, "tea together --ref alice --ref bob")
    await bot.replies(thread_id, 2)
    parts = described(gemini.requests[1].contents[-1]["parts"])
    label_a, label_b = pin_words.reference_label("alice"), pin_words.reference_label("bob")
    assert parts[-5:-1] == [label_a, image_key(drawn.files[0].data), label_b, parts[-2]]
    assert parts[-1] == "tea together"
    assert parts[-2].startswith("image:") and parts[-2] != image_key(drawn.files[0].data)

    listing = await fake.command("pins")
    answer = await ephemeral_answer(fake, listing.token)
    assert answer.content.splitlines() == [pin_words.PINS_HEADING, "• alice", "• bob"]
    assert [e["title"] for e in answer.embeds] == ["alice", "bob"]
    assert len(answer.files) == 2
    for file in answer.files:
        with Image.open(io.BytesIO(file.data)) as preview:
            assert preview.format == "JPEG" and max(preview.size) <= 256


async def test_over_the_models_limit_is_one_sentence_and_no_request(bot: Bot) -> None:
    fake, gemini = bot.fake, bot.gemini
    limit = bot.core.service.capabilities.max_input_images
    for i in range(limit + 1):
        pin = await fake.command(
            "pin", name=f"p{i}", image=FakeFile(f"p{i}.png", img.png(8 + i, 8), "image/png")
        )
        await ephemeral_answer(fake, pin.token)
    refs = " ".join(f"--ref p{i}" for i in range(limit + 1))
    _, thread_id = await bot.mention(f"everyone together {refs}")
    [answer] = await bot.replies(thread_id)
    model = bot.core.service.capabilities.model
    assert answer.content == pin_words.too_many_references(limit + 1, 0, limit, model)
    assert gemini.requests == []


async def test_unpin_by_someone_else_is_refused_unless_they_manage_the_server(bot: Bot) -> None:
    fake = bot.fake
    pin = await fake.command("pin", name="logo", image=FakeFile("logo.png", img.png(), "image/png"))
    await ephemeral_answer(fake, pin.token)
    fake.member_permissions[str(fake.bob["id"])] = MEMBER
    refused = await fake.command("unpin", name="logo", user=fake.bob)
    assert (await ephemeral_answer(fake, refused.token)).content == pin_words.unpin_refused("logo")
    assert [p.name for p in await bot.core.store.pins("discord", str(fake.guild_id))] == ["logo"]
    del fake.member_permissions[str(fake.bob["id"])]  # now bob manages the server
    done = await fake.command("unpin", name="LOGO", user=fake.bob)
    assert (await ephemeral_answer(fake, done.token)).content == pin_words.unpinned("logo")
    gone = await fake.command("unpin", name="logo")
    assert (await ephemeral_answer(fake, gone.token)).content == pin_words.unknown_pin("logo")
    empty = await fake.command("pins")
    assert (await ephemeral_answer(fake, empty.token)).content == pin_words.NO_PINS


async def test_bad_names_and_nothing_to_pin_are_one_sentence(bot: Bot) -> None:
    fake = bot.fake
    nothing = await fake.command("pin", name="early")
    assert (await ephemeral_answer(fake, nothing.token)).content == pin_words.NOTHING_TO_PIN
    bad = await fake.command("pin", name="no way!")
    assert (await ephemeral_answer(fake, bad.token)).content == pin_words.bad_name("no way!")
    _, thread_id = await bot.mention("a cat --ref ghost")
    [answer] = await bot.replies(thread_id)
    assert answer.content == pin_words.unknown_refs(["ghost"])
