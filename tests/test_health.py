"""GET /readyz: 200 while the process is connected to its platforms and database, else 503
naming the part that is down; GET /healthz: 200 while the process is alive, whatever is down.
Both on the Slack events server or on a small server of its own."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack.adapter import SlackAdapter
from bot.health import CHECK_TIMEOUT_S, Health, HealthServer
from bot.ports import PlatformError
from storage.postgres_store import PostgresStore
from tests.adapters.discord.test_discord_process import discord_env
from tests.auxil.core import Core
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.process import run_bot
from tests.auxil.readiness import discord_readiness, serving_readiness
from tests.auxil.slack_bot import slack_env
from tests.auxil.tcp_proxy import FreezableProxy

UP = {"ok": True, "down": []}


async def get_ready(port: int, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, await resp.json()


async def get_alive(port: int) -> tuple[int, dict[str, Any]]:
    return await get_ready(port, "/healthz")


async def ready_becomes(port: int, status: int, limit_s: float = 15.0) -> dict[str, Any]:
    """The body of the first /readyz answer with ``status``, asking every 50 ms."""
    for _ in range(int(limit_s / 0.05)):
        got, body = await get_ready(port)
        if got == status:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never answered {status}")


async def test_discord_is_healthy_while_connected_and_named_once_the_gateway_is_gone(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    async with discord_readiness(fake_gemini, tmp_path / "bot.sqlite3") as (fake, server):
        body = await ready_becomes(server.port, 200)
        assert body == {**UP, "parts": {"discord": "up", "database": "up"}}
        await fake.close()  # the gateway and the API go away; discord.py keeps trying
        body = await ready_becomes(server.port, 503)
        assert body == {"ok": False, "down": ["discord"], "parts": {"discord": "down", "database": "up"}}
        assert await get_alive(server.port) == (200, {"ok": True})  # alive all the same


async def test_socket_mode_is_named_once_its_socket_is_closed(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=slack_env(slack, socket=True)).start()
    adapter = SlackAdapter(core.config, core.service)
    assert not adapter.serves_http
    async with serving_readiness(core, adapter) as server:
        body = await ready_becomes(server.port, 200)
        assert body == {**UP, "parts": {"slack": "up", "database": "up"}}
        await slack.close()  # the socket closes and no new one can be opened
        body = await ready_becomes(server.port, 503)
        assert body == {"ok": False, "down": ["slack"], "parts": {"slack": "down", "database": "up"}}


async def test_http_mode_serves_the_process_health_on_its_events_server(
    fake_gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    core = await Core(fake_gemini, tmp_path / "bot.sqlite3", env=slack_env(slack)).start()
    adapter = SlackAdapter(core.config, core.service)
    assert adapter.serves_http
    adapter.http_routes = Health(core.store, [adapter]).routes()
    task = asyncio.create_task(adapter.run())
    try:
        await asyncio.wait_for(adapter.ready.wait(), 15)
        assert adapter.http_port
        status, body = await get_ready(adapter.http_port)
        assert (status, body) == (200, {**UP, "parts": {"slack": "up", "database": "up"}})
        await core.store.close()
        status, body = await get_ready(adapter.http_port)
        assert (status, body["down"]) == (503, ["database"])
        assert await get_alive(adapter.http_port) == (200, {"ok": True})
    finally:
        await adapter.close()
        await asyncio.wait_for(task, 15)
        await core.stop()


async def test_postgres_is_named_when_the_store_cannot_answer(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    server = HealthServer(Health(store, []), port=0)
    await server.start()
    assert server.port
    try:
        assert await get_ready(server.port) == (200, {**UP, "parts": {"database": "up"}})
        await store.close()
        assert await get_ready(server.port) == (
            503,
            {"ok": False, "down": ["database"], "parts": {"database": "down"}},
        )
    finally:
        await server.close()
        await store.close()


class _HangingStore:
    async def ping(self) -> None:
        await asyncio.sleep(3600)


async def test_a_check_that_does_not_answer_is_down_within_the_limit() -> None:
    health = Health(_HangingStore(), [], timeout_s=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await health.check() == {"database": False}
    assert loop.time() - started < 2.0


async def test_a_taken_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HealthServer(Health(_HangingStore(), []), port=port)
        with pytest.raises(PlatformError) as caught:
            await server.start()
    assert str(caught.value) == (
        f"Cannot serve /healthz on port {port} (address already in use); set PORT to a free port."
    )


async def test_a_discord_process_on_a_taken_port_stops_with_one_line(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    async with FakeDiscord() as fake:
        with socket.socket() as taken:
            taken.bind(("0.0.0.0", 0))
            taken.listen()
            port = taken.getsockname()[1]
            env = {**discord_env(fake, fake_gemini, tmp_path), "PORT": str(port)}
            result = await asyncio.to_thread(run_bot, [], tmp_path, env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert errors == [
        f"error: Cannot serve /healthz on port {port} (address already in use); set PORT to a free port."
    ]
    assert fake.identifies == []  # nothing connected before the port was refused


class _SlowToLetGo:
    """A ping that, once cancelled, takes a while to end: asyncpg with a silent connection."""

    def __init__(self) -> None:
        self.pings = 0
        self.answers = False

    async def ping(self) -> None:
        self.pings += 1
        if self.answers:
            return
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(1.0)
            raise


async def test_a_check_that_is_slow_to_cancel_is_down_within_the_limit_and_not_repeated_meanwhile() -> None:
    store = _SlowToLetGo()
    health = Health(store, [], timeout_s=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await health.check() == {"database": False}
    assert loop.time() - started < 0.8  # not the second the cut-off ping takes to end
    # Asked again while that ping lingers: still down, and no second ping beside it.
    assert await health.check() == {"database": False}
    assert store.pings == 1
    await asyncio.sleep(1.2)  # the lingering ping has ended; the database answers again
    store.answers = True
    assert await health.check() == {"database": True}
    assert store.pings == 2


async def test_a_database_that_stops_answering_is_named_within_the_limit_and_back_once_it_answers(
    postgres_url: str,
) -> None:
    proxy, relayed = await FreezableProxy.in_front_of(postgres_url)
    store = PostgresStore(relayed)
    await store.open()
    server = HealthServer(Health(store, []), port=0)
    await server.start()
    assert server.port
    try:
        assert await get_ready(server.port) == (200, {**UP, "parts": {"database": "up"}})
        proxy.freeze()  # a network partition: connections stay open, nothing answers
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await get_ready(server.port) == (
            503,
            {"ok": False, "down": ["database"], "parts": {"database": "down"}},
        )
        assert loop.time() - started < CHECK_TIMEOUT_S + 1.5
        for _ in range(3):  # a load balancer keeps asking
            assert (await get_ready(server.port))[0] == 503
        assert store.pool.get_size() - store.pool.get_idle_size() <= 1  # one stuck ping at most
        proxy.thaw()
        assert await ready_becomes(server.port, 200) == {**UP, "parts": {"database": "up"}}
    finally:
        proxy.thaw()
        await server.close()
        await store.close()
        await proxy.close()


async def test_discord_is_ready_again_once_its_gateway_comes_back(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    """The fake goes away and comes back on the same port: discord.py reconnects by itself (it
    backs off, then IDENTIFYs afresh) and /readyz goes 200, 503, then 200 again."""
    async with discord_readiness(fake_gemini, tmp_path / "bot.sqlite3") as (fake, server):
        await ready_becomes(server.port, 200)
        await fake.close()
        body = await ready_becomes(server.port, 503)
        assert body["down"] == ["discord"]
        await fake.start()  # the same port: the gateway and the API are back
        body = await ready_becomes(server.port, 200, limit_s=45)
        assert body == {**UP, "parts": {"discord": "up", "database": "up"}}
        assert len(fake.identifies) == 2  # a fresh IDENTIFY after the drop
        message = await fake.post(fake.general_id, f"{fake.mention()} a lighthouse")  # and it works
        assert await fake.wait_until(lambda: fake.bot_messages(message.id))
