"""The same command gives the same words on the console, Discord and Slack: each platform only
maps its command onto the core's dialogue and renders the reply (end to end through the fakes)."""

from __future__ import annotations

from pathlib import Path

from adapters.slack.words import MODEL_HINT
from bot.gemini.registry import shipped
from bot.text import messages
from bot.vocabulary import ScopeLevel, SettingName
from tests.adapters.console.test_console import run_piped
from tests.auxil.core import Core
from tests.auxil.discord_bot import ephemeral_answer, start_bot
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.slack_bot import Bot as SlackBot
from tests.auxil.slack_bot import slack_env
from tests.bot.turns.test_variations import FLASH

# What each model accepts and costs: the file shipped with the bot.
capabilities_for = shipped().capabilities_for

ENV = {"GEMINI_MODEL": FLASH}
BAD_RATIO = messages.bad_aspect_ratio("5:7", FLASH, capabilities_for(FLASH).aspect_ratios)


async def test_console_discord_and_slack_say_the_same(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    said = (await run_piped(fake_gemini, tmp_path, ["/aspect 5:7", "/model", "/usage"], ENV)).splitlines()

    async with FakeDiscord() as fake:
        discord = await start_bot(fake, fake_gemini, tmp_path / "discord.sqlite3", ENV)
        try:
            answers = []
            for name, options in (("aspect", {"ratio": "5:7"}), ("model", {}), ("usage", {})):
                command = await fake.command(name, unchecked=True, **options)
                answers.append((await ephemeral_answer(fake, command.token)).content)
            models = discord.core.service.allowed_models
        finally:
            await discord.stop()

    core = await Core(fake_gemini, tmp_path / "slack.sqlite3", env={**slack_env(slack), **ENV}).start()
    slack_bot = await SlackBot(core, slack, socket=False).start()
    try:
        slack_said = [(await slack_bot.command(name, text))[1] for name, text in _SLACK_LINES]
    finally:
        await slack_bot.stop()
        await core.stop()

    # A value the model lacks: one sentence, word for word (the console marks refusals with "!").
    assert f"! {BAD_RATIO}" in said
    assert answers[0] == slack_said[0] == BAD_RATIO
    # The current model: the conversation's on the console, the channel's default on Discord
    # (outside a thread) and on Slack, which adds how to change a thread's.
    shown = messages.current_setting(SettingName.MODEL, FLASH, ScopeLevel.THREAD, "/model", models)
    channel = messages.current_setting(SettingName.MODEL, FLASH, ScopeLevel.CHANNEL, "/model", models)
    assert shown in said
    assert answers[1] == channel
    assert slack_said[1] == f"{channel} {MODEL_HINT}"
    # Usage before any image: the same report everywhere.
    report = "\n".join(
        [
            messages.usage_line("You", 0, 0.0, 0, 0.0),
            messages.your_limits(["60 an hour", "200 a day"]),
            messages.draws_with(FLASH),
        ]
    )
    assert report in "\n".join(said)
    assert answers[2] == slack_said[2] == report


_SLACK_LINES = (("/aspect", "5:7"), ("/model", ""), ("/usage", ""))
