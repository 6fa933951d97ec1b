"""The fault suite's crash and load cases run on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auxil.postgres import PostgresServer
from tests.faults.databases import Database, PostgresDatabase, SqliteDatabase


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return SqliteDatabase(tmp_path / "bot.sqlite3")
    server = request.getfixturevalue("postgres_server")
    return PostgresDatabase(await server.create_database())


@pytest.fixture(scope="module")
def restartable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the module's own, which its tests may stop and start again (the
    shared ``postgres_server`` serves every other test and must stay up). Always started here,
    even when ``NBB_TEST_POSTGRES_PORT`` names a shared one; a server that cannot start errors
    the tests that need it, never skips them."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def restartable_url(restartable_postgres: PostgresServer) -> str:
    """A fresh schema on that server, started again first if an earlier test left it down."""
    if not restartable_postgres.running:
        await asyncio.to_thread(restartable_postgres.start_again)
    return await restartable_postgres.create_database()
