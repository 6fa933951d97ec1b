"""The composition root: builds the store, the coordination and the core's parts from one configuration."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Config, redacted_database_url
from bot.limits.quotas import InProcessReservations, Reservations
from bot.turns.fence import Fence
from bot.turns.fence import SoleProcess as SoleProcessFence
from bot.turns.order import InProcessFirst, LocalTurnOrder, TurnOrder
from bot.turns.retention import JobLeases
from bot.turns.retention import SoleProcess as SoleProcessJobs
from storage.aftercare import Aftercare
from storage.patience import Patience
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
            InProcessFirst(
                LocalTurnOrder(config.storage.turn_order_settle_s),
                PgTurnOrder(store, patience=patience, aftercare=aftercare),
            ),
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


def patience_for(config: Config) -> Patience:
    """One process's patience: ``DATABASE_OUTAGE_S``, holding at most ``MAX_QUEUED_TURNS`` calls
    (the bound on turns waiting for Gemini applies to turns waiting for the database too)."""
    return Patience(config.storage.outage_s, max_held=max(config.limits.max_queued_turns, 1))
