"""Builds the store a configuration names: SQLite for ``sqlite:///``, PostgreSQL for ``postgres(ql)://``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.aftercare import Aftercare
from bot.config import Config, redacted_database_url
from bot.fence import Fence
from bot.fence import SoleProcess as SoleProcessFence
from bot.limits import InProcessReservations, Reservations
from bot.patience import Patience
from bot.retention import JobLeases
from bot.retention import SoleProcess as SoleProcessJobs
from bot.turn_order import LocalTurnOrder, TurnOrder
from storage.protocol import Store


def open_store(config: Config) -> Store:
    """The (not yet opened) store for ``config.storage.url``; backends are imported on use."""
    if config.storage.is_postgres:
        from storage.postgres_store import PostgresStore

        return PostgresStore(
            config.storage.url,
            lease_s=config.storage.process_lease_s,
            max_connections=config.storage.pool_size,
        )
    from storage.sqlite_store import SqliteStore

    return SqliteStore(config.storage.path)


def describe_store(config: Config) -> str:
    """Where the store lives, for messages (never with a password)."""
    if config.storage.is_postgres:
        return redacted_database_url(config.storage.url)
    return str(config.storage.path)


@dataclass(frozen=True, slots=True)
class Coordination:
    """What keeps turns in order and limits whole across every process sharing the store."""

    order: TurnOrder
    reservations: Reservations
    jobs: JobLeases
    # Whether a turn is still this process's (another may take over a paused one's).
    fence: Fence
    # Whether other processes may share the store (then cut-off turns are looked for now and
    # then, not only at start, since another process may die at any time).
    shared: bool


def coordination_for(store: Store, config: Config, patience: Patience, aftercare: Aftercare) -> Coordination:
    """In-process coordination for SQLite (one process); the database's for PostgreSQL. Both
    wait out a database outage (``patience``) and leave clean-up to ``aftercare``."""
    if config.storage.is_postgres:
        from storage.pg_coordination import PgJobLeases, PgReservations, PgTurnOrder
        from storage.pg_fence import PgFence
        from storage.postgres_store import PostgresStore

        assert isinstance(store, PostgresStore)
        return Coordination(
            PgTurnOrder(store, config.storage.turn_order_settle_s, patience=patience, aftercare=aftercare),
            PgReservations(store, aftercare=aftercare),
            PgJobLeases(store),
            PgFence(store, patience),
            True,
        )
    return Coordination(
        LocalTurnOrder(config.storage.turn_order_settle_s),
        InProcessReservations(),
        SoleProcessJobs(),
        SoleProcessFence(),
        False,
    )
