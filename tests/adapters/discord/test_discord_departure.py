"""Leaving a Discord server, end to end (the real discord.py client against the fake gateway):
a GUILD_DELETE deletes the server's data; a GUILD_DELETE with ``unavailable`` (an outage) keeps it."""

from __future__ import annotations

import logging

import pytest

from bot.vocabulary import ConversationKey, SettingScope
from storage.content import Blob
from tests.auxil import image_factory as img
from tests.auxil.discord_bot import Bot, ephemeral_answer
from tests.auxil.discord_bot import bot as bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import FakeFile
from tests.auxil.waiting import settled

OTHER_GUILD = "111111111111111111"


async def a_server_with_history(bot: Bot) -> ConversationKey:
    """A drawn image in a thread, a pin, a channel default, and another server's pin."""
    fake = bot.fake
    _, thread_id = await bot.mention("a lighthouse on a cliff")
    await bot.replies(thread_id)
    pin = await fake.command("pin", name="logo", image=FakeFile("logo.png", img.png(20, 20), "image/png"))
    await ephemeral_answer(fake, pin.token)
    key = bot.key(thread_id)
    await bot.core.store.set_setting(SettingScope.for_channel(key), "aspect_ratio", "16:9")
    await bot.core.store.add_pin("discord", OTHER_GUILD, "logo", Blob("image/png", img.png(12, 12)), "u0")
    assert len(await bot.core.store.history(key)) == 1
    return key


def forgotten_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "workspace forgotten"]


async def test_removed_from_a_server_its_data_goes(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    key = await a_server_with_history(bot)
    guild = str(bot.fake.guild_id)

    await bot.fake.remove_guild(bot.fake.guild_id)

    assert await settled(lambda: bool(forgotten_lines(caplog)), 15)
    store = bot.core.store
    assert await store.conversation(key) is None
    assert await store.pins("discord", guild) == []
    assert await store.scoped_settings([SettingScope.for_channel(key), SettingScope.for_thread(key)]) == {}
    assert [p.name for p in await store.pins("discord", OTHER_GUILD)] == ["logo"]
    assert (await store.count_images(0, platform="discord", workspace=guild))[0] == 1  # the ledger stays
    [line] = forgotten_lines(caplog)
    assert (line.platform, line.workspace, line.reason) == ("discord", guild, "guild_remove")
    assert (line.conversations, line.turns, line.images, line.settings, line.pins) == (1, 1, 2, 2, 1)


async def test_a_server_in_an_outage_keeps_everything(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    key = await a_server_with_history(bot)
    fake, client = bot.fake, bot.adapter._client
    assert client is not None

    await fake.remove_guild(fake.guild_id, unavailable=True)

    assert await settled(lambda: (g := client.get_guild(fake.guild_id)) is not None and g.unavailable, 15)
    # Back from the outage, the conversation goes on from its history (a whole turn later:
    # anything the outage had set off would have run by then).
    await fake.restore_guild(fake.guild_id)
    assert await settled(lambda: (g := client.get_guild(fake.guild_id)) is not None and not g.unavailable, 15)
    await fake.post(int(key.thread), "now at night")
    await bot.replies(int(key.thread), 2)
    assert forgotten_lines(caplog) == []
    assert len(await bot.core.store.history(key)) == 2
    assert len(bot.gemini.requests[-1].contents) == 3  # the first turn, its answer, the new prompt
    assert [p.name for p in await bot.core.store.pins("discord", str(fake.guild_id))] == ["logo"]
    assert (await bot.core.store.settings(key))["aspect_ratio"] == "16:9"
