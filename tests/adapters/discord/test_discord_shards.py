"""Discord sharding: the settings, and the real discord.py client on a fake Discord that routes
each guild's events to its shard, in one process running every shard or two running one each."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.shards import IDENTIFY_INTERVAL_S, IdentifyGate
from tests.adapters.discord.test_discord_process import discord_env
from tests.auxil.core import Core, refusal
from tests.auxil.discord_bot import start_adapter
from tests.auxil.fake_discord import DEFERRED_UPDATE, FakeDiscord, FakeGuild, FakeMessage, shard_of
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import BotProcess
from tests.test_health import get_ready

# Parsing DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS is tested with the other settings in
# tests/bot/config/test_config_groups.py.


async def test_identifies_wait_five_seconds_per_bucket_only() -> None:
    now = [100.0]
    gate = IdentifyGate(max_concurrency=2, clock=lambda: now[0])
    await gate.wait(0)
    await gate.wait(1)  # another bucket: no wait
    assert gate.delay(2) == IDENTIFY_INTERVAL_S  # shard 2 shares shard 0's bucket
    assert gate.delay(3) == IDENTIFY_INTERVAL_S
    now[0] += 2.0
    assert gate.delay(2) == IDENTIFY_INTERVAL_S - 2.0
    now[0] += 3.0
    assert gate.delay(2) == 0.0


# -- the client against the fake --------------------------------------------------------------------


@dataclass
class Process:
    """One DiscordAdapter on its own core, as one process of the bot."""

    core: Core
    adapter: DiscordAdapter
    task: asyncio.Task[None]

    def guild_ids(self) -> set[int]:
        client = self.adapter._client
        assert client is not None
        return {g.id for g in client.guilds}

    async def stop(self) -> None:
        await self.adapter.close()
        await asyncio.wait_for(self.task, 15)
        await self.core.stop()


async def start_process(
    fake: FakeDiscord, gemini: FakeGemini, db: Path, sessions: int, env: dict[str, str] | None = None
) -> Process:
    """Start an adapter and wait until the fake has sent READY to ``sessions`` connections."""
    core, adapter, task = await start_adapter(fake, gemini, db, env, sessions)
    process = Process(core, adapter, task)
    try:
        assert adapter._client is not None
        # READY sent; discord.py is ready once every shard has its guilds.
        await asyncio.wait_for(adapter._client.wait_until_ready(), 10)
        assert await adapter.connected()
    except BaseException:
        await process.stop()
        raise
    return process


async def workspaces(process: Process) -> list[str]:
    """The guild (or "@me" for a DM) of every conversation the process stored."""
    keys = await process.core.store.idle_conversations(time.time() + 3600)
    return [k.workspace for k in keys]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    # Two shards recommended, two sessions may start at once (Discord's large-bot limits).
    async with FakeDiscord(shards=2, max_concurrency=2) as server:
        yield server


def two_guilds(fake: FakeDiscord) -> tuple[FakeGuild, FakeGuild]:
    return fake.add_guild("Shard Zero", shard=0, count=2), fake.add_guild("Shard One", shard=1, count=2)


async def mention_and_reply(fake: FakeDiscord, channel_id: int, text: str) -> tuple[FakeMessage, FakeMessage]:
    message = await fake.post(channel_id, f"{fake.mention()} {text}")
    await fake.wait_until(lambda: fake.thread_on(message.id))
    [reply] = await fake.wait_until(lambda: fake.bot_messages(message.id))
    return message, reply


async def test_one_process_runs_every_shard_discord_recommends_and_answers_in_each(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    zero, one = two_guilds(fake)
    process = await start_process(fake, fake_gemini, tmp_path / "bot.sqlite3", sessions=2)
    try:
        assert sorted(i["shard"] for i in fake.identifies) == [[0, 2], [1, 2]]
        assert process.guild_ids() == {fake.guild_id, zero.id, one.id}
        for guild, prompt in ((zero, "a red fox"), (one, "a blue whale")):
            _, reply = await mention_and_reply(fake, guild.general_id, prompt)
            assert reply.files
            shard = shard_of(guild.id, 2)
            assert [s for s, e, g in fake.dispatched if e == "MESSAGE_CREATE" and g == guild.id] == [
                (shard, 2),  # the person's message, on its guild's shard only
                (shard, 2),  # the bot's reply
            ]
        assert [r.prompt for r in fake_gemini.requests] == ["a red fox", "a blue whale"]
    finally:
        await process.stop()


async def test_a_button_and_a_slash_command_work_in_a_guild_on_shard_one(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    _, one = two_guilds(fake)
    process = await start_process(fake, fake_gemini, tmp_path / "bot.sqlite3", sessions=2)
    try:
        message, first = await mention_and_reply(fake, one.general_id, "a paper boat")
        click = await fake.click(first, "nb:regen:1")
        second = await fake.wait_until(lambda: fake.bot_messages(message.id)[1:])
        assert fake.interactions[click.token].callbacks == [DEFERRED_UPDATE]
        controls = [
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
        assert second[0].files and second[0].custom_ids() == controls
        assert [r.prompt for r in fake_gemini.requests] == ["a paper boat", "a paper boat"]
        command = await fake.command("help", one.general_id)
        await fake.wait_until(lambda: fake.interactions[command.token].callbacks)
        interactions = [s for s, e, _ in fake.dispatched if e == "INTERACTION_CREATE"]
        assert interactions == [(1, 2), (1, 2)]
    finally:
        await process.stop()
    assert not fake.unhandled


async def test_two_processes_each_run_one_shard_and_answer_only_their_guilds(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    zero, one = two_guilds(fake)
    env = {"DISCORD_SHARD_COUNT": "2"}
    first = await start_process(
        fake, fake_gemini, tmp_path / "a.sqlite3", 1, {**env, "DISCORD_SHARD_IDS": "0"}
    )
    second = await start_process(
        fake, fake_gemini, tmp_path / "b.sqlite3", 2, {**env, "DISCORD_SHARD_IDS": "1"}
    )
    try:
        assert [i["shard"] for i in fake.identifies] == [[0, 2], [1, 2]]
        home_shard = shard_of(fake.guild_id, 2)
        assert first.guild_ids() == {zero.id} | ({fake.guild_id} if home_shard == 0 else set())
        assert second.guild_ids() == {one.id} | ({fake.guild_id} if home_shard == 1 else set())
        await mention_and_reply(fake, zero.general_id, "a red fox")
        await mention_and_reply(fake, one.general_id, "a blue whale")
        # Each conversation was made, and stored, by the process running its guild's shard.
        assert await workspaces(first) == [str(zero.id)]
        assert await workspaces(second) == [str(one.id)]
        # A DM reaches shard 0 only.
        dm = fake.dm_channel()
        await fake.post(dm, "a green frog")
        [reply] = await fake.wait_until(lambda: fake.bot_messages(dm))
        assert reply.files
        assert [s for s, e, g in fake.dispatched if e == "MESSAGE_CREATE" and g is None] == [(0, 2), (0, 2)]
        assert len(await workspaces(first)) == 2
        assert len(await workspaces(second)) == 1
    finally:
        await first.stop()
        await second.stop()


async def test_too_few_shards_for_discord_stop_the_bot_with_one_line(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    async with FakeDiscord(shards=2, max_concurrency=2, sharding_required=True) as fake:
        env = {"DISCORD_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url, "DISCORD_SHARD_COUNT": "1"}
        line = await refusal(DiscordAdapter, fake_gemini, tmp_path / "bot.sqlite3", env)
    assert line == (
        "Discord refused shard 0 of 1 (code 4011); it asks for 2 shards: set DISCORD_SHARD_COUNT "
        "to at least that, or unset it and DISCORD_SHARD_IDS."
    )


# -- as processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_two_bot_processes_on_one_postgres_each_run_one_shard_and_report_health(
    fake_gemini: FakeGemini, postgres_url: str, tmp_path: Path
) -> None:
    async with FakeDiscord(shards=2, max_concurrency=2) as fake:
        zero, one = two_guilds(fake)
        ports = [free_port(), free_port()]
        processes: list[BotProcess] = []
        try:
            for shard, port in enumerate(ports):
                cwd = tmp_path / f"shard{shard}"
                cwd.mkdir()
                env = {
                    **discord_env(fake, fake_gemini, cwd),
                    "DATABASE_URL": postgres_url,
                    "DISCORD_SHARD_COUNT": "2",
                    "DISCORD_SHARD_IDS": str(shard),
                    "PORT": str(port),
                }
                processes.append(await BotProcess.start(cwd, env))
            for shard, process in enumerate(processes):
                connected = await process.wait_for_log("discord connected")
                assert (connected["shards"], connected["shard_count"]) == ([shard], 2)
                listening = await process.wait_for_log("health check listening")
                assert listening["port"] == ports[shard]
            for port in ports:
                status, body = await get_ready(port)
                assert (status, body["parts"]) == (200, {"discord": "up", "database": "up", "model": "up"})
            await mention_and_reply(fake, zero.general_id, "a red fox")
            await mention_and_reply(fake, one.general_id, "a blue whale")
            # Each guild's messages reached only the process running its shard.
            for guild in (zero, one):
                shards = {s for s, e, g in fake.dispatched if e == "MESSAGE_CREATE" and g == guild.id}
                assert shards == {(shard_of(guild.id, 2), 2)}
            codes = [await process.stop() for process in processes]
        finally:
            for process in processes:
                process.ensure_dead()
    assert codes == [0, 0]
    assert sorted(r.prompt for r in fake_gemini.requests) == ["a blue whale", "a red fox"]
    conn = await asyncpg.connect(postgres_url)
    try:
        workspaces = await conn.fetch("SELECT DISTINCT workspace FROM conversations ORDER BY workspace")
    finally:
        await conn.close()
    assert [r["workspace"] for r in workspaces] == sorted([str(zero.id), str(one.id)])
    for process in processes:
        assert process.problems([fake.token, "process-key"]) == []
