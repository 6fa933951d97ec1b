"""The PostgreSQL store: a pool of asyncpg connections shared by any number of bot processes.

asyncpg rather than psycopg 3: it is asyncio-native (no thread or sync core underneath), speaks
the binary protocol (image bytes travel as raw bytea, not hex text), and has a built-in
connection pool, so the bot needs no extra pool package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

import asyncpg

from storage import pg_turns, pg_usage
from storage.content import Blob, ContentRecord
from storage.errors import StoreError, StoreUnavailable
from storage.pg_errors import translated
from storage.pg_migrations import PG_MIGRATIONS, migrate, schema_version
from storage.pg_processes import DEFAULT_LEASE_S, LIVE_OWNERS, ProcessLease, server_up_a_lease
from storage.protocol import ConversationInfo, StoredTurn
from storage.records import ConversationKey, SettingScope, Usage
from storage.rows import CONVERSATION_COLUMNS, TURN_COLUMNS, conversation_from_row, key_params, turn_from_row
from storage.rules import (
    SettingsPrecedence,
    prepare_turn,
    require_blobs,
    require_head,
    require_parent,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]

IDLE_CONNECTION_S = 30.0
_KEY_MATCH = "c.platform = $1 AND c.workspace = $2 AND c.channel = $3 AND c.thread = $4"


class PostgresStore(SettingsPrecedence):
    """``storage.protocol.Store`` on a PostgreSQL database (``postgresql://`` or ``postgres://``).

    Every write is one transaction at READ COMMITTED; rows that decide a race are locked:
    the conversation row (upserted first) serialises appends to one conversation across
    processes, and blobs are locked before forget deletes them and while a turn references
    them, so neither side sees the other half done.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = time.time,
        max_connections: int = 10,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        self.url = url
        self._clock = clock
        self._max_connections = max_connections
        self._lease_s = lease_s
        self._pool: asyncpg.Pool | None = None
        self._arrivals: asyncpg.Pool | None = None
        self._lease: ProcessLease | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The connection pool, for the coordination that lives next to the store."""
        return self._connections()

    @property
    def arrivals_pool(self) -> asyncpg.Pool:
        """One connection of its own for queueing arriving turns (storage.pg_coordination), so
        a burst's places are never stuck behind the main pool's traffic."""
        if self._arrivals is None:
            raise StoreError("The store is not open.")
        return self._arrivals

    @property
    def lease(self) -> ProcessLease:
        """This process's lease: its id owns claims, queued turns and reservations."""
        if self._lease is None:
            raise StoreError("The store is not open.")
        return self._lease

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            raise StoreError("The store is already open.")
        try:
            # Connections a burst opened go back to the server after a short idle spell: where
            # processes share a connection limit, one's idle connections would starve another.
            pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self._max_connections,
                max_inactive_connection_lifetime=IDLE_CONNECTION_S,
            )
        except (OSError, asyncpg.PostgresError, ValueError) as exc:
            raise StoreError(f"Could not connect to PostgreSQL: {exc}") from exc
        try:
            async with pool.acquire() as conn:
                await migrate(conn, PG_MIGRATIONS)
            arrivals = await asyncpg.create_pool(self.url, min_size=1, max_size=1)
        except BaseException:
            await pool.close()
            raise
        try:
            lease = ProcessLease(pool, self._lease_s)
            await lease.start()
        except BaseException:
            await asyncio.gather(pool.close(), arrivals.close())
            raise
        self._pool, self._arrivals, self._lease = pool, arrivals, lease

    async def close(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        arrivals, self._arrivals = self._arrivals, None
        if arrivals is not None:
            await arrivals.close()

    async def schema_version(self) -> int:
        async with self._reading() as conn:
            return await schema_version(conn)

    async def ping(self) -> None:
        # No time limit here: bot.health bounds the whole check. A query cut off on a silent
        # connection still holds it until asyncpg gives up on it, so a limit here would not
        # make this return sooner.
        try:
            async with self._reading() as conn:
                await conn.fetchval("SELECT 1")
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"PostgreSQL does not answer: {type(exc.__cause__).__name__}") from exc
        except asyncpg.PostgresError as exc:
            raise StoreError(f"PostgreSQL does not answer: {type(exc).__name__}") from exc

    # -- processed messages -----------------------------------------------------------------

    async def claim_message(
        self,
        platform: str,
        channel: str,
        message_id: str,
        key: ConversationKey | None = None,
        *,
        token: str | None = None,
    ) -> bool:
        now = self._clock()
        workspace, thread = (key.workspace, key.thread) if key is not None else ("", "")
        async with self._reading() as conn:
            # On conflict the no-op update returns the row only when this attempt wrote it.
            claimed = await conn.fetchval(
                "INSERT INTO processed_messages (platform, channel, message_id, claimed_at, "
                "workspace, thread, finished_at, owner, claim_token) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                "ON CONFLICT (platform, channel, message_id) DO UPDATE SET claim_token = "
                "processed_messages.claim_token WHERE processed_messages.claim_token = $9 RETURNING TRUE",
                platform,
                channel,
                message_id,
                now,
                workspace,
                thread,
                None if key else now,
                self.lease.id,
                token,
            )
        return bool(claimed)

    async def finish_message(self, platform: str, channel: str, message_id: str) -> None:
        async with self._reading() as conn:
            await conn.execute(
                "UPDATE processed_messages SET finished_at = $1 WHERE platform = $2 AND channel = $3 "
                "AND message_id = $4 AND finished_at IS NULL",
                self._clock(),
                platform,
                channel,
                message_id,
            )

    async def unfinished_messages(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        async with self._reading() as conn:
            rows = await conn.fetch(
                "SELECT workspace, channel, thread, message_id FROM processed_messages "
                "WHERE platform = $1 AND finished_at IS NULL AND claimed_at > $2 "
                "ORDER BY claimed_at, message_id",
                platform,
                claimed_after,
            )
        return [(ConversationKey(platform, r[0], r[1], r[2]), r[3]) for r in rows]

    async def take_interrupted(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        # One UPDATE hands them to this process and returns them, so each is taken by one
        # process at a time; claims of a live process (a rolling deploy's other half) are its
        # own business. They stay unfinished until the person is told: if this process dies
        # first, they are a dead process's again and someone else takes them. Right after an
        # outage every lease looks lapsed: nobody is judged until this process has been in
        # touch for a lease, and the server has been up that long.
        if not self.lease.may_judge_others():
            return []
        async with self._reading() as conn:
            rows = await conn.fetch(
                "UPDATE processed_messages SET owner = $3 "
                "WHERE platform = $1 AND finished_at IS NULL AND claimed_at > $2 "
                f"AND (owner IS NULL OR (owner <> $3 AND owner NOT IN ({LIVE_OWNERS.replace('$1', '$4')} "
                # A process still registered is given the benefit of the doubt while the server
                # has run less than a lease: it could not renew while the server was down.
                f"OR NOT {server_up_a_lease(4)}))) "
                "RETURNING workspace, channel, thread, message_id, claimed_at",
                platform,
                claimed_after,
                self.lease.id,
                self.lease.lease_s,
            )
        rows = sorted(rows, key=lambda r: (r[4], r[3]))
        return [(ConversationKey(platform, r[0], r[1], r[2]), r[3]) for r in rows]

    # -- conversations and turns ------------------------------------------------------------

    async def conversation(self, key: ConversationKey) -> ConversationInfo | None:
        async with self._reading() as conn:
            row = await conn.fetchrow(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations AS c WHERE {_KEY_MATCH}", *key_params(key)
            )
        return conversation_from_row(row) if row is not None else None

    async def latest_conversation(
        self, platform: str, workspace: str, channel: str
    ) -> ConversationInfo | None:
        async with self._reading() as conn:
            row = await conn.fetchrow(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations AS c "
                "WHERE c.platform = $1 AND c.workspace = $2 AND c.channel = $3 "
                "ORDER BY c.updated_at DESC, c.id DESC LIMIT 1",
                platform,
                workspace,
                channel,
            )
        return conversation_from_row(row) if row is not None else None

    async def turn(self, turn_id: int) -> StoredTurn | None:
        async with self._reading() as conn:
            row = await conn.fetchrow(
                f"SELECT {TURN_COLUMNS} FROM turns AS t "
                "JOIN conversations AS c ON c.id = t.conversation_id WHERE t.id = $1",
                turn_id,
            )
        return turn_from_row(row) if row is not None else None

    async def history(self, key: ConversationKey, upto: int | None = None) -> list[StoredTurn]:
        async with self._reading() as conn:
            rows = await conn.fetch(
                f"""
                WITH RECURSIVE branch (id, depth) AS (
                    SELECT t.id, 0
                    FROM conversations AS c JOIN turns AS t ON t.conversation_id = c.id
                    WHERE {_KEY_MATCH} AND t.id = COALESCE($5::bigint, c.head_turn_id)
                    UNION ALL
                    SELECT t.parent_id, branch.depth + 1
                    FROM branch JOIN turns AS t ON t.id = branch.id
                    WHERE t.parent_id IS NOT NULL
                )
                SELECT {TURN_COLUMNS}
                FROM branch
                JOIN turns AS t ON t.id = branch.id
                JOIN conversations AS c ON c.id = t.conversation_id
                ORDER BY branch.depth DESC
                """,
                *key_params(key),
                upto,
            )
        turns = [turn_from_row(row) for row in rows]
        if not turns and upto is not None:
            raise ValueError(f"Turn {upto} is not part of conversation {key}.")
        return turns

    async def append_turn(
        self,
        key: ConversationKey,
        parent_id: int | None,
        user_content: ContentRecord,
        model_content: ContentRecord,
        blobs: Iterable[Blob],
        model: str,
        usage: Usage,
        author_id: str,
        *,
        expected_head: int | None,
    ) -> StoredTurn:
        prepared = prepare_turn(key, parent_id, user_content, model_content, blobs, model, usage, author_id)
        async with self._writing() as conn:
            now = self._clock()
            require_blobs(prepared, await pg_turns.lock_stored_blobs(conn, prepared.unoffered()))
            conversation_id, head = await pg_turns.upsert_conversation(conn, key, now)
            require_head(expected_head, head)
            require_parent(prepared, await pg_turns.conversation_of_turn(conn, parent_id), conversation_id)
            await pg_turns.insert_blobs(conn, prepared)
            turn_id = await pg_turns.insert_turn(conn, prepared, conversation_id, now)
            await pg_turns.insert_usage(conn, prepared, turn_id, now)
            await conn.execute(
                "UPDATE conversations SET head_turn_id = $1, updated_at = $2 WHERE id = $3",
                turn_id,
                now,
                conversation_id,
            )
        return prepared.stored(turn_id, now)

    async def move_head(self, key: ConversationKey, turn_id: int, *, expected_head: int | None) -> None:
        async with self._writing() as conn:
            row = await conn.fetchrow(
                f"SELECT c.id, c.head_turn_id FROM conversations AS c WHERE {_KEY_MATCH} FOR UPDATE",
                *key_params(key),
            )
            conversation_id, head = (row[0], row[1]) if row is not None else (None, None)
            require_head(expected_head, head)
            owner = await pg_turns.conversation_of_turn(conn, turn_id)
            if conversation_id is None or owner != conversation_id:
                raise ValueError(f"Turn {turn_id} is not part of conversation {key}.")
            await conn.execute(
                "UPDATE conversations SET head_turn_id = $1, updated_at = $2 WHERE id = $3",
                turn_id,
                self._clock(),
                conversation_id,
            )

    async def record_posted(
        self, platform: str, channel: str, message_ids: Iterable[str], turn_id: int
    ) -> None:
        rows = [(platform, channel, message_id, turn_id) for message_id in message_ids]
        if not rows:
            return
        async with self._writing() as conn:
            await conn.executemany(
                "INSERT INTO posted_messages (platform, channel, message_id, turn_id) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (platform, channel, message_id) "
                "DO UPDATE SET turn_id = EXCLUDED.turn_id",
                rows,
            )

    async def turn_for_message(self, platform: str, channel: str, message_id: str) -> int | None:
        async with self._reading() as conn:
            found = await conn.fetchval(
                "SELECT turn_id FROM posted_messages "
                "WHERE platform = $1 AND channel = $2 AND message_id = $3",
                platform,
                channel,
                message_id,
            )
        return int(found) if found is not None else None

    async def load_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        async with self._reading() as conn:
            rows = await conn.fetch("SELECT sha256, data FROM blobs WHERE sha256 = ANY($1::text[])", wanted)
        return {row[0]: bytes(row[1]) for row in rows}

    # -- settings -------------------------------------------------------------------------

    async def scoped_settings(self, scopes: Sequence[SettingScope]) -> dict[str, dict[str, str]]:
        by_scope: dict[str, dict[str, str]] = {}
        async with self._reading() as conn:
            rows = await conn.fetch(
                "SELECT scope, name, value FROM settings WHERE scope = ANY($1::text[])",
                [scope.as_text() for scope in scopes],
            )
        for row in rows:
            by_scope.setdefault(row["scope"], {})[row["name"]] = row["value"]
        return by_scope

    async def set_setting(self, scope: SettingScope, name: str, value: str | None) -> None:
        async with self._reading() as conn:
            if value is None:
                await conn.execute(
                    "DELETE FROM settings WHERE scope = $1 AND name = $2", scope.as_text(), name
                )
            else:
                await conn.execute(
                    "INSERT INTO settings (scope, name, value) VALUES ($1, $2, $3) "
                    "ON CONFLICT (scope, name) DO UPDATE SET value = EXCLUDED.value",
                    scope.as_text(),
                    name,
                    value,
                )

    # -- forgetting and retention -----------------------------------------------------------

    async def forget(self, key: ConversationKey) -> int:
        async with self._writing() as conn:
            return await pg_turns.forget(conn, key)

    async def idle_conversations(self, before: float, limit: int = 500) -> list[ConversationKey]:
        async with self._reading() as conn:
            rows = await conn.fetch(
                "SELECT platform, workspace, channel, thread FROM conversations "
                "WHERE updated_at < $1 ORDER BY updated_at, id LIMIT $2",
                before,
                limit,
            )
        return [ConversationKey(*row) for row in rows]

    # -- usage ----------------------------------------------------------------------------

    async def usage_since(
        self, since: float, author_id: str | None = None, platform: str | None = None
    ) -> Usage:
        async with self._reading() as conn:
            return await pg_usage.usage_since(conn, since, author_id=author_id, platform=platform)

    async def count_images(
        self,
        since: float,
        *,
        author_id: str | None = None,
        platform: str | None = None,
        workspace: str | None = None,
        channel: str | None = None,
    ) -> tuple[int, float | None]:
        async with self._reading() as conn:
            return await pg_usage.count_images(
                conn, since, author_id=author_id, platform=platform, workspace=workspace, channel=channel
            )

    async def cost_since(self, since: float) -> float:
        async with self._reading() as conn:
            return await pg_usage.cost_since(conn, since)

    # -- internals ------------------------------------------------------------------------

    def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("The store is not open.")
        return self._pool

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for single statements (each commits on its own)."""
        with translated():
            async with self._connections().acquire() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[asyncpg.Connection]:
        """One transaction: committed on success, rolled back on any error or cancellation."""
        with translated():
            async with self._connections().acquire() as conn, conn.transaction():
                yield conn
