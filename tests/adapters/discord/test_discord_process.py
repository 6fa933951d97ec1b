"""`python -m bot` as a deployment runs it, on the fake Discord and the fake Gemini."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import discord

from adapters.discord.permissions import REST_CALLS, invite_url
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import BotProcess, run_bot

# What the bot's REST calls need (Discord's permission bits): view channel, send messages, attach
# files, read message history (replies), create public threads, send messages in threads. Not use
# application commands (1 << 31): members need that to run the bot's commands, the bot does not.
EXPECTED_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 15) | (1 << 16) | (1 << 35) | (1 << 38)


def route_pattern(route: str) -> str:
    return re.escape(route).replace(r"\{id\}", r"\d+").replace(r"\{token\}", r"[^/]+")


def test_the_invite_asks_for_exactly_what_the_rest_calls_need() -> None:
    value = int(parse_qs(urlsplit(invite_url(1)).query)["permissions"][0])
    granted_bits = {bit for bit in range(64) if value >> bit & 1}
    needed = {name for call in REST_CALLS for name in call.needs}
    needed_bits = {discord.Permissions.VALID_FLAGS[name].bit_length() - 1 for name in needed}
    assert granted_bits == needed_bits
    assert value == EXPECTED_PERMISSIONS


def discord_env(
    fake: FakeDiscord, gemini: FakeGemini, tmp_path: Path, token: str | None = None
) -> dict[str, str]:
    return {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": gemini.base_url,
        "DISCORD_TOKEN": token or fake.token,
        "DISCORD_API_URL": fake.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
    }


async def test_python_m_bot_serves_discord_and_stops_cleanly_on_sigterm(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    bot = await BotProcess.start(tmp_path, discord_env(fake, fake_gemini, tmp_path))
    try:
        await bot.wait_while_running(fake.wait_ready())
        message = await fake.post(fake.general_id, f"{fake.mention()} a red bicycle at dawn")
        await fake.wait_until(lambda: fake.thread_on(message.id))
        [reply] = await fake.wait_until(lambda: fake.bot_messages(message.id))
        assert reply.files and reply.custom_ids() == [
            "nb:regen:1",
            "nb:var:1",
            "nb:ar:1",
            "nb:model:1",
            "nb:frame:zoom:1.5:1",
            "nb:frame:zoom:2:1",
            "nb:frame:pan:left:1",
            "nb:frame:pan:right:1",
            "nb:frame:pan:up:1",
            "nb:frame:pan:down:1",
        ]
        assert fake_gemini.requests[0].prompt == "a red bicycle at dawn"
        # The gateway connection came from GET /gateway/bot, zlib-compressed as discord.py asks.
        assert ("GET", "/gateway/bot") in fake.requests
        assert fake.gateway_queries[0]["compress"] == "zlib-stream"
        code = await bot.stop()
    finally:
        bot.ensure_dead()
    stderr = "\n".join(bot.lines)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert fake.token not in stderr and "process-key" not in stderr
    logs = [json.loads(line) for line in bot.lines if line.startswith("{")]  # each must parse
    messages = [entry["message"] for entry in logs]
    assert "discord commands registered" in messages and "bot stopped" in messages
    assert not [e for e in logs if e["level"] in ("warning", "error")]
    [invite] = [entry["invite_url"] for entry in logs if entry["message"] == "discord invite URL"]
    query = parse_qs(urlsplit(invite).query)
    assert urlsplit(invite).netloc == "discord.com"
    assert query["client_id"] == [str(fake.application_id)]
    assert query["scope"] == ["bot applications.commands"]
    assert query["permissions"] == [str(EXPECTED_PERMISSIONS)]
    # Every request the bot made is one the invite's permissions were worked out from.
    known = [(call.method, route_pattern(call.route)) for call in REST_CALLS]
    unlisted = [
        (method, path)
        for method, path in fake.requests
        if not any(m == method and re.fullmatch(p, path) for m, p in known)
    ]
    assert unlisted == []


async def test_python_m_bot_with_a_rejected_token_says_what_to_do(
    fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    env = discord_env(fake, fake_gemini, tmp_path, token="not-the-token")
    result = await asyncio.to_thread(run_bot, [], tmp_path, env)
    assert result.returncode == 1
    assert "error: Discord rejected DISCORD_TOKEN; copy the bot token again from the Developer Portal.\n" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "not-the-token" not in result.stderr
