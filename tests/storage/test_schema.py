"""Both migration histories arrive at the one schema ``storage.schema`` describes."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import asyncpg

from storage import schema
from storage.postgres_store import PostgresStore
from storage.sqlite_store import SqliteStore
from tests.storage.test_store_migrations import build_v1

_COORDINATION = {"bot_processes", "turn_queue", "answered_marks", "limit_reservations", "job_leases"}


def expected(dialect: str, table: schema.Table) -> list[tuple[str, str]]:
    return [(name, schema.TYPES[dialect][kind]) for name, kind in table.columns]


def sqlite_columns(path: Path) -> dict[str, list[tuple[str, str]]]:
    with closing(sqlite3.connect(path)) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] != "sqlite_sequence"
        ]
        return {t: [(r[1], r[2]) for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}


async def test_a_fresh_and_an_upgraded_sqlite_file_have_the_described_tables(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite3"
    build_v1(old)
    for path in (tmp_path / "fresh.sqlite3", old):
        store = SqliteStore(path)
        await store.open()
        await store.close()
        assert sqlite_columns(path) == {
            t.name: expected("sqlite", t) for t in schema.TABLES + schema.OWN_TABLES
        }


async def test_postgresql_has_the_described_tables_and_its_coordination_besides(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
        )
    finally:
        await conn.close()
    found: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        found.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
    extra = {t: [(n, schema.TYPES["postgresql"][k]) for n, k in c] for t, c in schema.POSTGRES_ONLY.items()}
    shared = {
        name: [column for column in columns if column not in extra.get(name, [])]
        for name, columns in found.items()
        if name not in _COORDINATION | {"schema_migrations"}
    }
    assert shared == {t.name: expected("postgresql", t) for t in schema.TABLES + schema.OWN_TABLES}
    for name, columns in extra.items():
        assert set(columns) <= set(found[name])
