"""The reference board on Slack, end to end (the real Bolt app in HTTP mode against the fake Web
API): a character pinned once with /pin and reused in three prompts, /pins, who may unpin, and
every refusal's one sentence."""

from __future__ import annotations

import hashlib

from bot.text import pin_words
from tests.auxil import fake_slack as fs
from tests.auxil.fake_gemini import FakeGemini, described
from tests.auxil.slack_bot import CHANNEL, Bot
from tests.auxil.slack_bot import bot as bot


async def command_as(bot: Bot, user: str, command: str, text: str) -> str:
    assert bot.sender is not None
    fields = bot.slack.slash_command(command, text, CHANNEL, user=user)
    status, body = await bot.sender.command(fields)
    assert (status, body) == (200, "")
    answer = await bot.slack.answer_to(fields)
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


async def test_a_character_pinned_once_is_reused_in_three_prompts(bot: Bot, fake_gemini: FakeGemini) -> None:
    assert await command_as(bot, fs.ALICE, "/pin", "alice") == pin_words.NOTHING_TO_PIN
    first = await bot.mention("a girl called Alice in a red coat")
    upload, _ = await bot.replies(first["ts"], 2)
    drawn = bot.slack.uploads[upload["files"][0]["id"]].data
    alice = "image:" + hashlib.sha256(drawn).hexdigest()[:12]
    assert await command_as(bot, fs.ALICE, "/pin", "Alice") == pin_words.pinned("alice")
    assert await command_as(bot, fs.BOB, "/pin", "alice") == pin_words.name_taken("alice")

    await bot.say("she rides a bicycle --ref alice", thread_ts=first["ts"])
    await bot.replies(first["ts"], 4)
    second = await bot.mention("Alice at the beach --ref ALICE")
    await bot.replies(second["ts"], 2)
    third = await bot.mention("Alice and the lighthouse --ref alice")
    await bot.replies(third["ts"], 2)
    assert len(fake_gemini.requests) == 4
    for request in fake_gemini.requests[1:]:
        parts = described(request.contents[-1]["parts"])
        assert parts[-3:-1] == [pin_words.reference_label("alice"), alice]

    listing = await command_as(bot, fs.BOB, "/pins", "")
    assert listing.splitlines() == [pin_words.PINS_HEADING, "• alice"]


async def test_two_refs_go_in_order_and_unknown_ones_are_one_sentence(
    bot: Bot, fake_gemini: FakeGemini
) -> None:
    for name in ("alice", "bob"):
        message = await bot.mention(f"a portrait of {name}")
        await bot.replies(message["ts"], 2)
        assert await command_as(bot, fs.ALICE, "/pin", name) == pin_words.pinned(name)
    [alice, bob] = [
        "image:" + hashlib.sha256(r.response_images[-1].data).hexdigest()[:12] for r in fake_gemini.requests
    ]
    tea = await bot.mention("tea together --ref bob --ref alice")
    await bot.replies(tea["ts"], 2)
    parts = described(fake_gemini.requests[2].contents[-1]["parts"])
    labels = [pin_words.reference_label(n) for n in ("bob", "alice")]
    assert parts == [labels[0], bob, labels[1], alice, "tea together"]
    ghost = await bot.mention("a castle --ref ghost --ref nobody")
    [answer] = await bot.replies(ghost["ts"], 1)
    assert answer["text"] == ":warning: " + pin_words.unknown_refs(["ghost", "nobody"])
    assert len(fake_gemini.requests) == 3


async def test_unpin_by_someone_else_is_refused_unless_a_workspace_admin(bot: Bot) -> None:
    message = await bot.mention("a logo")
    await bot.replies(message["ts"], 2)
    await command_as(bot, fs.ALICE, "/pin", "logo")
    assert await command_as(bot, fs.BOB, "/unpin", "logo") == pin_words.unpin_refused("logo")
    assert [p.name for p in await bot.core.store.pins("slack", fs.TEAM_ID)] == ["logo"]
    bot.slack.workspace_admins.add(fs.BOB)
    assert await command_as(bot, fs.BOB, "/unpin", "logo") == pin_words.unpinned("logo")
    assert await command_as(bot, fs.ALICE, "/unpin", "logo") == pin_words.unknown_pin("logo")
    assert await command_as(bot, fs.ALICE, "/pins", "") == pin_words.NO_PINS
    assert await command_as(bot, fs.ALICE, "/pin", "") == pin_words.PIN_WHICH_NAME
    assert await command_as(bot, fs.ALICE, "/pin", "two words") == pin_words.bad_name("two words")
