"""Shared fixtures: the fake Gemini and Slack servers, a production-wired conversation core, and a
real PostgreSQL server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.auxil.core import Core
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.ledger import LEDGER
from tests.auxil.postgres import PostgresServer


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def core(fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Core]:
    started = await Core(fake_gemini, tmp_path / "bot.sqlite3").start()
    yield started
    await started.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run, started on first use. If it cannot start,
    every test that needs it errors (never skips)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on that server."""
    return await postgres_server.create_database()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """End the run with the fault and abuse suite's table when any of its cases ran."""
    if LEDGER.tried:
        terminalreporter.write_line("")
        for line in LEDGER.table():
            terminalreporter.write_line(line)
