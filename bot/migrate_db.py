"""`python -m bot migrate-db --to postgresql://...`: copy the SQLite database into PostgreSQL."""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from bot.config import Config, check_postgres_url, is_postgres_url, redacted_database_url
from storage.copy_to_postgres import copy_sqlite_to_postgres
from storage.errors import StoreError
from storage.sqlite_file import DatabaseInUse

USAGE = "migrate-db needs --to postgresql://user:password@host:5432/database (an empty database)."


def migrate_db(config: Config, to: str | None) -> int:
    """Run the copy; one line on stdout when it worked, one on stderr when not. Returns the
    exit code (2: wrong arguments, 1: the copy could not be made)."""
    if not to or not is_postgres_url(to):
        print(f"error: {USAGE}", file=sys.stderr)
        return 2
    try:
        check_postgres_url(to)
    except ValueError as exc:
        print(f"error: {str(exc).replace('DATABASE_URL', '--to')}", file=sys.stderr)
        return 2
    if config.storage.is_postgres:
        print(
            "error: migrate-db copies the SQLite database DATABASE_URL names, but DATABASE_URL "
            "is PostgreSQL already; point it at the SQLite file.",
            file=sys.stderr,
        )
        return 2
    target = redacted_database_url(to)
    try:
        report = asyncio.run(copy_sqlite_to_postgres(config.storage.path, to))
    except DatabaseInUse as exc:
        holder = f"a bot process (pid {exc.pid})" if exc.pid else "a bot process"
        print(
            f"error: {holder} is still using {config.storage.path}; stop it, then run migrate-db again.",
            file=sys.stderr,
        )
        return 1
    except (StoreError, asyncpg.PostgresError, OSError) as exc:
        print(f"error: nothing was copied to {target}: {exc}", file=sys.stderr)
        return 1
    print(f"Copied {report.summary()} from {config.storage.path} to {target}.")
    return 0
