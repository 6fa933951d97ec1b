"""/think on Discord and Slack (issue 22): each platform's command maps onto the dialogue's THINK,
and the level reaches Gemini as the request's thinking configuration."""

from __future__ import annotations

from pathlib import Path

from tests.auxil.core import Core
from tests.auxil.discord_bot import ephemeral_answer, start_bot
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.slack_bot import Bot as SlackBot
from tests.auxil.slack_bot import slack_env

FLASH_3 = "gemini-3.1-flash-image"


async def test_discord_registers_think_with_the_models_levels_and_keeps_it_per_thread(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        env = {"DISCORD_GUILD_ID": str(fake.guild_id), "GEMINI_MODEL": FLASH_3}
        bot = await start_bot(fake, fake_gemini, tmp_path / "db.sqlite3", env)
        try:
            registered = {c["name"]: c for c in fake.commands[fake.guild_id]}
            assert [c["value"] for c in registered["think"]["options"][0]["choices"]] == ["minimal", "high"]
            # Next to the reference board's and the doors' commands, in both installs and every context.
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
                "size",
                "think",
                "unpin",
                "usage",
            ]
            assert registered["think"]["integration_types"] == [0, 1]
            assert registered["think"]["contexts"] == [0, 1, 2]
            _, thread_id = await bot.mention("a lighthouse")
            await bot.replies(thread_id)
            command = await fake.command("think", thread_id, level="high")
            answer = await ephemeral_answer(fake, command.token)
            assert answer.content == "Thinking is now high for this conversation."
            await fake.post(thread_id, "at night")
            await bot.replies(thread_id, 2)
            assert [r.thinking_level for r in fake_gemini.requests] == [None, "HIGH"]
        finally:
            await bot.stop()


async def test_discord_offers_no_think_on_a_model_without_levels(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        bot = await start_bot(
            fake, fake_gemini, tmp_path / "db.sqlite3", {"DISCORD_GUILD_ID": str(fake.guild_id)}
        )
        try:
            assert "think" not in {c["name"] for c in fake.commands[fake.guild_id]}
        finally:
            await bot.stop()


async def test_slack_think_sets_the_channel_default(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    env = {**slack_env(slack), "GEMINI_MODEL": FLASH_3}
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=env).start()
    bot = await SlackBot(core, slack, socket=False).start()
    try:
        hint = "Inside a thread, add --think high to a message for that image."
        assert await bot.command("/think", "medium") == (
            200,
            "gemini-3.1-flash-image doesn't offer the thinking level medium; use minimal or high.",
        )
        assert await bot.command("/think", "high") == (
            200,
            f"Thinking is now high for new conversations in this channel. {hint}",
        )
        message = await bot.mention("a lighthouse")
        await bot.replies(message["ts"], 1)
        assert [r.thinking_level for r in fake_gemini.requests] == ["HIGH"]
    finally:
        await bot.stop()
        await core.stop()
