"""``bot.turns.fence.Fence`` across processes: a turn whose process lease lapsed checks that its claim
is still its own before storing or posting; while the lease held, nobody can have taken it."""

from __future__ import annotations

import time

from storage.errors import StoreUnavailable
from storage.patience import Patience
from storage.pg_errors import translated
from storage.postgres_store import PostgresStore
from storage.records import ConversationKey


class PgFence:
    def __init__(self, store: PostgresStore, patience: Patience) -> None:
        self._store = store
        self._patience = patience

    def for_turn(self, key: ConversationKey, message_id: str) -> _PgTurnFence:
        return _PgTurnFence(self._store, self._patience, key, message_id, time.monotonic())


class _PgTurnFence:
    def __init__(
        self, store: PostgresStore, patience: Patience, key: ConversationKey, message_id: str, since: float
    ) -> None:
        self._store = store
        self._patience = patience
        self._key = key
        self._message_id = message_id
        self._since = since
        self._taken_over = False

    async def holds(self) -> bool:
        if self._taken_over:
            return False
        if self._store.lease.intact_since(self._since):
            return True
        checked_at = time.monotonic()
        if await self._patience.call(self._check):
            self._since = checked_at  # still ours then: only a later lapse needs a new look
            return True
        self._taken_over = True
        return False

    async def _check(self) -> bool:
        lease = self._store.lease
        # Alive again first: from here on nobody takes this process's claims for a dead one's.
        if not await lease.renew():
            raise StoreUnavailable("PostgreSQL is unavailable: the process lease cannot be renewed")
        with translated():
            async with self._store.pool.acquire() as conn, conn.transaction():
                # FOR UPDATE: a takeover committing right now is waited for, then seen.
                row = await conn.fetchrow(
                    "SELECT owner, finished_at FROM processed_messages "
                    "WHERE platform = $1 AND channel = $2 AND message_id = $3 FOR UPDATE",
                    self._key.platform,
                    self._key.channel,
                    self._message_id,
                )
        return row is not None and row["owner"] == lease.id and row["finished_at"] is None
