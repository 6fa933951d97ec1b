"""`python -m bot` on PostgreSQL: DATABASE_URL picks the store, and a dead server is one line."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncpg

from tests.adapters.console.test_console import console_env, run_piped
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.process import run_bot


async def test_the_console_keeps_its_conversation_in_postgres(
    fake_gemini: FakeGemini, postgres_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": postgres_url}
    first = await run_piped(fake_gemini, tmp_path, ["a lighthouse on a cliff", "make the sky warmer"], env)
    assert "New conversation." in first
    second = await run_piped(fake_gemini, tmp_path, ["now as a watercolor"], env)
    assert "Continuing your conversation (2 turns); /new starts a fresh one." in second
    # The third request replays both earlier answers with their thought signatures.
    assert fake_gemini.requests[2].signatures() == (
        fake_gemini.requests[0].response_signatures + fake_gemini.requests[1].response_signatures
    )
    assert not (tmp_path / "data" / "bot.sqlite3").exists()
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT COUNT(*) FROM turns") == 3
        assert await conn.fetchval("SELECT COUNT(*) FROM usage_log") == 3
    finally:
        await conn.close()


async def test_an_unreachable_server_is_one_line_without_the_password(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://bot:hunter2@127.0.0.1:{port}/nano"
    result = await asyncio.to_thread(
        run_bot, ["console"], tmp_path, console_env(fake_gemini, {"DATABASE_URL": url})
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: cannot open the database at postgresql://bot:***@127.0.0.1:{port}/nano: "
        "Could not connect to PostgreSQL:"
    )
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert fake_gemini.requests == []
