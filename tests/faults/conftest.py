"""The fault suite's crash and load cases run on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.databases import Database, PostgresDatabase, SqliteDatabase


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return SqliteDatabase(tmp_path / "bot.sqlite3")
    server = request.getfixturevalue("postgres_server")
    return PostgresDatabase(await server.create_database())
