"""Three `python -m bot` processes on one PostgreSQL, each running a Discord shard and Slack in HTTP
mode, as an operator deploys them: the dashboard served by any one of them lists all three with
their platforms' states, its figures are the ledger's across all three, each process's /metrics
counts its own turns, and a process killed outright is shown as gone once its lease lapses."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from html import unescape
from pathlib import Path

import aiohttp
import asyncpg

from tests.adapters.discord.test_discord_process import discord_env
from tests.auxil import fake_slack as fs
from tests.auxil.admin import TOKEN
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender
from tests.auxil.process import BotProcess
from tests.bot.observing.test_metrics import samples
from tests.test_multiprocess import CHANNEL, answered, http_env

LEASE_S = 3
SHARDS = 3
SECRETS = (fs.BOT_TOKEN, fs.SIGNING_SECRET, "process-key", TOKEN)
Rows = list[list[str]]


def table(page: str, table_id: str) -> Rows:
    """The text of each body cell of one of the page's tables, row by row."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body is not None, f"no table {table_id}"
    rows = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body.group(1))]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)) for cell in row] for row in rows]


class Operator:
    """An operator's browser, as far as HTTP goes: signed in to one process's dashboard."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self) -> None:
        async with self.client.post(f"{self.base}/admin/sign-in", data={"token": TOKEN}) as signed:
            assert signed.status == 200 and "sign-out" in await signed.text()

    async def page(self) -> str:
        async with self.client.get(f"{self.base}/admin") as response:
            assert response.status == 200
            return await response.text()

    async def page_once(self, shows: Callable[[str], bool], limit_s: float = 30.0) -> str:
        deadline = time.monotonic() + limit_s
        while True:
            page = await self.page()
            if shows(page):
                return page
            assert time.monotonic() < deadline, table(page, "processes")
            await asyncio.sleep(0.25)


def processes(page: str) -> dict[str, tuple[str, str]]:
    """Each listed process's short id (marked when it is the serving one): its status and platforms."""
    return {row[0]: (row[1], row[4]) for row in table(page, "processes")}


async def turns_seen(port: int) -> dict[str, float]:
    """A process's own turns, by platform, from its /metrics."""
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{port}/metrics") as got:
        text = await got.text()
    counted: dict[str, float] = {}
    for (name, labels), count in samples(text).items():
        if name == "nanobanana_turns_total" and count:
            platform = dict(labels)["platform"]
            counted[platform] = counted.get(platform, 0.0) + count
    return counted


async def ledger(url: str) -> tuple[Rows, Rows]:
    """The ledger's images and cost per (UTC) day, newest first, and per person, as the page
    formats them."""
    conn = await asyncpg.connect(url)
    try:
        days = await conn.fetch(
            "SELECT to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'Mon DD') AS day, "
            "SUM(images_generated), SUM(cost_usd) FROM usage_log GROUP BY 1 ORDER BY 1 DESC"
        )
        people = await conn.fetch(
            "SELECT platform, author_id, SUM(images_generated), SUM(cost_usd) FROM usage_log "
            "GROUP BY platform, author_id ORDER BY SUM(cost_usd) DESC, SUM(images_generated) DESC, "
            "platform, author_id"
        )
    finally:
        await conn.close()
    return (
        [[r[0], f"{r[1]:,.0f}", f"${r[2]:,.3f}"] for r in days],
        [[r[0], r[1], f"{r[2]:,.0f}", f"${r[3]:,.3f}"] for r in people],
    )


async def lease_ids(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT to_regclass('bot_processes') IS NOT NULL"):
            return set()  # before the first process made the schema
        return {r[0] for r in await conn.fetch("SELECT id FROM bot_processes")}
    finally:
        await conn.close()


async def test_the_dashboard_of_any_process_shows_the_whole_fleet_and_a_killed_one_as_gone(
    fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeDiscord(shards=SHARDS, max_concurrency=SHARDS))
        guilds = [fake.add_guild(f"Shard {n}", shard=n, count=SHARDS) for n in range(SHARDS)]
        bots: list[BotProcess] = []
        ports: list[int] = []
        ids: list[str] = []
        for shard in range(SHARDS):
            cwd = tmp_path / f"p{shard}"
            cwd.mkdir()
            env = {
                **discord_env(fake, fake_gemini, cwd),
                **http_env(fake_gemini, slack, postgres_url),
                "DISCORD_SHARD_COUNT": str(SHARDS),
                "DISCORD_SHARD_IDS": str(shard),
                "ADMIN_TOKEN": TOKEN,
                "PROCESS_LEASE_S": str(LEASE_S),
            }
            before = await lease_ids(postgres_url)
            bot = await BotProcess.start(cwd, env)
            stack.callback(bot.ensure_dead)
            bots.append(bot)
            ports.append((await bot.wait_for_log("slack connected", limit_s=60))["port"])
            await bot.wait_for_log("discord connected", limit_s=60)
            [lease] = await lease_ids(postgres_url) - before
            ids.append(lease[:12])

        # A Discord turn and a Slack turn through each process, from two people on each platform.
        people = [(fake.alice, fs.ALICE), (fake.bob, fs.BOB), (fake.alice, fs.ALICE)]
        for n, (port, guild, (discord_person, slack_person)) in enumerate(
            zip(ports, guilds, people, strict=True)
        ):
            message = await fake.post(
                guild.general_id, f"{fake.mention()} a red fox {n}", author=discord_person
            )
            await fake.wait_until(lambda m=message: fake.thread_on(m.id))
            await fake.wait_until(lambda m=message: fake.bot_messages(m.id))
            async with SlackSender(f"http://127.0.0.1:{port}/slack/events") as sender:
                event = slack.user_message(
                    CHANNEL, f"<@{fs.BOT_USER_ID}> a lighthouse {n}", user=slack_person
                )
                status, _ = await sender.event(FakeSlack.event_body(event))
                assert status == 200
            await answered(slack, event["ts"], 1)

        # Each process counted its own turns.
        assert [await turns_seen(port) for port in ports] == [{"discord": 1.0, "slack": 1.0}] * SHARDS

        # The dashboard of the middle process lists all three with their platforms.
        operator = Operator(f"http://127.0.0.1:{ports[1]}")
        stack.push_async_callback(operator.client.close)
        await operator.sign_in()
        everything_up = "discord: connected, slack: connected"
        fleet = {ids[0]: ("live", everything_up), f"{ids[1]} (this process)": ("live", everything_up)}
        fleet[ids[2]] = ("live", everything_up)
        page = await operator.page_once(lambda p: processes(p) == fleet)
        days, spenders = await ledger(postgres_url)
        assert table(page, "days") == days and sum(int(d[1]) for d in days) == 6
        assert [row[:4] for row in table(page, "people")] == spenders
        assert {(row[0], row[1]) for row in spenders} == {
            ("discord", str(fake.alice["id"])),
            ("discord", str(fake.bob["id"])),
            ("slack", fs.ALICE),
            ("slack", fs.BOB),
        }

        # The third process dies outright and Discord goes away: on the first process's dashboard,
        # the dead one is gone (its last report kept) and the others' Discord is disconnected.
        assert await bots[2].kill() != 0
        await fake.close()
        operator = Operator(f"http://127.0.0.1:{ports[0]}")
        stack.push_async_callback(operator.client.close)
        await operator.sign_in()
        slack_only = "discord: disconnected, slack: connected"
        after = {f"{ids[0]} (this process)": ("live", slack_only), ids[1]: ("live", slack_only)}
        after[ids[2]] = ("gone", f"last reported {everything_up}")
        page = await operator.page_once(lambda p: processes(p) == after, limit_s=LEASE_S * 10)
        for bot in bots[:2]:
            assert await bot.stop(20) == 0
        for bot in bots:
            assert bot.problems(SECRETS) in ([], ["a traceback"])
            # The only tracebacks: discord.py's own, trying to reach the Discord that went away.
            traced = [e for e in bot.logs() if "Traceback" in str(e.get("traceback", ""))]
            assert all(e["logger"] == "discord.shard" for e in traced), traced
            assert all(str(e["message"]).startswith("Attempting a reconnect") for e in traced), traced
            assert len(traced) == sum("Traceback" in line for line in bot.lines)
