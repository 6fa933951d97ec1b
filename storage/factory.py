"""Builds the store a configuration names: SQLite for ``sqlite:///``, PostgreSQL for ``postgres(ql)://``."""

from __future__ import annotations

from bot.config import Config, redacted_database_url
from storage.protocol import Store


def open_store(config: Config) -> Store:
    """The (not yet opened) store for ``config.database_url``; backends are imported on use."""
    if config.database_is_postgres:
        from storage.postgres_store import PostgresStore

        return PostgresStore(config.database_url)
    from storage.sqlite_store import SqliteStore

    return SqliteStore(config.database_path)


def describe_store(config: Config) -> str:
    """Where the store lives, for messages (never with a password)."""
    if config.database_is_postgres:
        return redacted_database_url(config.database_url)
    return str(config.database_path)
