"""The SQLite store: one aiosqlite connection in WAL mode, serialised by an asyncio lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path

import aiosqlite

from storage import sqlite_file, sqlite_turns, sqlite_usage
from storage.content import Blob, ContentRecord
from storage.errors import StoreError
from storage.migrations import MIGRATIONS
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
from storage.sqlite_errors import translated
from storage.sqlite_turns import chunks, placeholders

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_KEY_MATCH = "c.platform = ? AND c.workspace = ? AND c.channel = ? AND c.thread = ?"


class SqliteStore(SettingsPrecedence):
    """``storage.protocol.Store`` on one SQLite file.

    All statements go through one aiosqlite connection; an asyncio lock around every
    operation keeps coroutines from interleaving (a reader never sees another coroutine's
    uncommitted writes). Writes use ``BEGIN IMMEDIATE`` so other processes wait via
    ``busy_timeout`` instead of failing mid-transaction.
    """

    def __init__(self, path: Path, *, clock: Clock = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._opened_at = 0.0
        self._hold: sqlite_file.FileHold | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            raise StoreError("The store is already open.")
        # Before connecting: a second process must not even migrate the file.
        hold = await asyncio.to_thread(sqlite_file.hold_file, self.path)
        try:
            self._db = await sqlite_file.connect(self.path, MIGRATIONS)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(sqlite_file.release, hold))
            raise
        self._hold = hold
        self._opened_at = self._clock()

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            hold, self._hold = self._hold, None
            try:
                if db is not None:
                    await db.close()
            finally:
                if hold is not None:
                    await asyncio.shield(asyncio.to_thread(sqlite_file.release, hold))

    async def schema_version(self) -> int:
        async with self._reading() as db:
            return await sqlite_file.user_version(db)

    async def ping(self) -> None:
        try:
            async with self._reading() as db:
                await db.execute_fetchall("SELECT 1")
        except (sqlite3.Error, ValueError) as exc:  # aiosqlite raises ValueError once closed
            raise StoreError(f"The SQLite database does not answer: {exc}") from exc

    # -- extras beyond the protocol ---------------------------------------------------------

    async def checkpoint(self) -> None:
        """Copy the WAL into the database file and truncate the WAL to zero bytes."""
        async with self._reading() as db:
            await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``; ["ok"] when sound."""
        async with self._reading() as db:
            integrity = [str(row[0]) for row in await db.execute_fetchall("PRAGMA integrity_check")]
            foreign = await db.execute_fetchall("PRAGMA foreign_key_check")
        problems = [p for p in integrity if p != "ok"]
        problems += [f"foreign key violation: {tuple(row)}" for row in foreign]
        return problems or ["ok"]

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
        async with self._writing() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO processed_messages "
                "(platform, channel, message_id, claimed_at, workspace, thread, finished_at, claim_token) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (platform, channel, message_id, now, workspace, thread, None if key else now, token),
            )
            if cursor.rowcount == 1:
                return True
            if token is None:
                return False
            rows = await db.execute_fetchall(
                "SELECT 1 FROM processed_messages WHERE platform = ? AND channel = ? "
                "AND message_id = ? AND claim_token = ?",
                (platform, channel, message_id, token),
            )
            return bool(rows)

    async def finish_message(self, platform: str, channel: str, message_id: str) -> None:
        async with self._writing() as db:
            await db.execute(
                "UPDATE processed_messages SET finished_at = ? "
                "WHERE platform = ? AND channel = ? AND message_id = ? AND finished_at IS NULL",
                (self._clock(), platform, channel, message_id),
            )

    async def unfinished_messages(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                "SELECT workspace, channel, thread, message_id FROM processed_messages "
                "WHERE platform = ? AND finished_at IS NULL AND claimed_at > ? "
                "ORDER BY claimed_at, message_id",
                (platform, claimed_after),
            )
        return [(ConversationKey(platform, row[0], row[1], row[2]), row[3]) for row in rows]

    async def take_interrupted(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        # One process uses a SQLite file, so a claim left unfinished before this store opened
        # belongs to a process that is gone; claims made since are this process's own. Taking
        # one re-stamps it as this process's (it stays unfinished until the person is told).
        async with self._writing() as db:
            rows = await db.execute_fetchall(
                "UPDATE processed_messages SET claimed_at = ? WHERE platform = ? "
                "AND finished_at IS NULL AND claimed_at > ? AND claimed_at < ? "
                "RETURNING workspace, channel, thread, message_id, claimed_at",
                (max(self._clock(), self._opened_at), platform, claimed_after, self._opened_at),
            )
        rows = sorted(rows, key=lambda r: (r[4], r[3]))
        return [(ConversationKey(platform, r[0], r[1], r[2]), r[3]) for r in rows]

    # -- conversations and turns ------------------------------------------------------------

    async def conversation(self, key: ConversationKey) -> ConversationInfo | None:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations AS c WHERE {_KEY_MATCH}",
                key_params(key),
            )
        return conversation_from_row(next(iter(rows))) if rows else None

    async def latest_conversation(
        self, platform: str, workspace: str, channel: str
    ) -> ConversationInfo | None:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations AS c "
                "WHERE c.platform = ? AND c.workspace = ? AND c.channel = ? "
                "ORDER BY c.updated_at DESC, c.id DESC LIMIT 1",
                (platform, workspace, channel),
            )
        return conversation_from_row(next(iter(rows))) if rows else None

    async def turn(self, turn_id: int) -> StoredTurn | None:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                f"SELECT {TURN_COLUMNS} FROM turns AS t "
                "JOIN conversations AS c ON c.id = t.conversation_id WHERE t.id = ?",
                (turn_id,),
            )
        return turn_from_row(next(iter(rows))) if rows else None

    async def history(self, key: ConversationKey, upto: int | None = None) -> list[StoredTurn]:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                f"""
                WITH RECURSIVE branch (id, depth) AS (
                    SELECT t.id, 0
                    FROM conversations AS c JOIN turns AS t ON t.conversation_id = c.id
                    WHERE {_KEY_MATCH} AND t.id = COALESCE(?, c.head_turn_id)
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
                (*key_params(key), upto),
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
        async with self._writing() as db:
            now = self._clock()
            require_blobs(prepared, await sqlite_turns.stored_hashes(db, prepared.unoffered()))
            conversation_id, head = await sqlite_turns.upsert_conversation(db, key, now)
            require_head(expected_head, head)
            require_parent(prepared, await sqlite_turns.conversation_of_turn(db, parent_id), conversation_id)
            await sqlite_turns.insert_blobs(db, prepared)
            turn_id = await sqlite_turns.insert_turn(db, prepared, conversation_id, now)
            await sqlite_turns.insert_usage(db, prepared, turn_id, now)
            await db.execute(
                "UPDATE conversations SET head_turn_id = ?, updated_at = ? WHERE id = ?",
                (turn_id, now, conversation_id),
            )
        return prepared.stored(turn_id, now)

    async def move_head(self, key: ConversationKey, turn_id: int, *, expected_head: int | None) -> None:
        async with self._writing() as db:
            rows = await db.execute_fetchall(
                f"SELECT c.id, c.head_turn_id FROM conversations AS c WHERE {_KEY_MATCH}", key_params(key)
            )
            conversation_id, head = next(iter(rows)) if rows else (None, None)
            require_head(expected_head, head)
            owner = await sqlite_turns.conversation_of_turn(db, turn_id)
            if conversation_id is None or owner != conversation_id:
                raise ValueError(f"Turn {turn_id} is not part of conversation {key}.")
            await db.execute(
                "UPDATE conversations SET head_turn_id = ?, updated_at = ? WHERE id = ?",
                (turn_id, self._clock(), conversation_id),
            )

    async def record_posted(
        self, platform: str, channel: str, message_ids: Iterable[str], turn_id: int
    ) -> None:
        rows = [(platform, channel, message_id, turn_id) for message_id in message_ids]
        if not rows:
            return
        async with self._writing() as db:
            await db.executemany(
                "INSERT INTO posted_messages (platform, channel, message_id, turn_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (platform, channel, message_id) "
                "DO UPDATE SET turn_id = excluded.turn_id",
                rows,
            )

    async def turn_for_message(self, platform: str, channel: str, message_id: str) -> int | None:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                "SELECT turn_id FROM posted_messages WHERE platform = ? AND channel = ? AND message_id = ?",
                (platform, channel, message_id),
            )
        return int(next(iter(rows))[0]) if rows else None

    async def load_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, bytes] = {}
        if not wanted:
            return found
        async with self._reading() as db:
            for chunk in chunks(wanted):
                rows = await db.execute_fetchall(
                    f"SELECT sha256, data FROM blobs WHERE sha256 IN ({placeholders(len(chunk))})",
                    chunk,
                )
                found.update((row[0], bytes(row[1])) for row in rows)
        return found

    # -- settings -------------------------------------------------------------------------

    async def scoped_settings(self, scopes: Sequence[SettingScope]) -> dict[str, dict[str, str]]:
        texts = [scope.as_text() for scope in scopes]
        by_scope: dict[str, dict[str, str]] = {}
        if not texts:
            return by_scope
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                f"SELECT scope, name, value FROM settings WHERE scope IN ({placeholders(len(texts))})",
                texts,
            )
        for row in rows:
            by_scope.setdefault(row["scope"], {})[row["name"]] = row["value"]
        return by_scope

    async def set_setting(self, scope: SettingScope, name: str, value: str | None) -> None:
        async with self._writing() as db:
            if value is None:
                await db.execute("DELETE FROM settings WHERE scope = ? AND name = ?", (scope.as_text(), name))
            else:
                await db.execute(
                    "INSERT INTO settings (scope, name, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value",
                    (scope.as_text(), name, value),
                )

    # -- forgetting -----------------------------------------------------------------------

    async def forget(self, key: ConversationKey) -> int:
        async with self._writing() as db:
            await db.execute(
                "DELETE FROM settings WHERE scope = ?", (SettingScope.for_thread(key).as_text(),)
            )
            rows = await db.execute_fetchall(
                f"SELECT c.id, (SELECT COUNT(*) FROM turns AS t WHERE t.conversation_id = c.id) "
                f"FROM conversations AS c WHERE {_KEY_MATCH}",
                key_params(key),
            )
            if not rows:
                return 0
            conversation_id, turn_count = next(iter(rows))
            candidates = [
                row[0]
                for row in await db.execute_fetchall(
                    "SELECT DISTINCT tb.sha256 FROM turn_blobs AS tb "
                    "JOIN turns AS t ON t.id = tb.turn_id WHERE t.conversation_id = ?",
                    (conversation_id,),
                )
            ]
            # Cascades to turns and turn_blobs.
            await db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            for chunk in chunks(candidates):
                await db.execute(
                    f"DELETE FROM blobs WHERE sha256 IN ({placeholders(len(chunk))}) "
                    "AND NOT EXISTS "
                    "(SELECT 1 FROM turn_blobs AS tb WHERE tb.sha256 = blobs.sha256)",
                    chunk,
                )
        # secure_delete zeroes the freed pages, but the WAL still holds the frames that wrote
        # the image in the first place: move everything into the main file and truncate it.
        async with self._reading() as db:
            await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(turn_count)

    # -- usage ----------------------------------------------------------------------------

    async def usage_since(
        self, since: float, author_id: str | None = None, platform: str | None = None
    ) -> Usage:
        async with self._reading() as db:
            return await sqlite_usage.usage_since(db, since, author_id=author_id, platform=platform)

    async def count_images(
        self,
        since: float,
        *,
        author_id: str | None = None,
        platform: str | None = None,
        workspace: str | None = None,
        channel: str | None = None,
    ) -> tuple[int, float | None]:
        async with self._reading() as db:
            return await sqlite_usage.count_images(
                db, since, author_id=author_id, platform=platform, workspace=workspace, channel=channel
            )

    async def cost_since(self, since: float) -> float:
        async with self._reading() as db:
            return await sqlite_usage.cost_since(db, since)

    async def idle_conversations(self, before: float, limit: int = 500) -> list[ConversationKey]:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                "SELECT platform, workspace, channel, thread FROM conversations "
                "WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
                (before, limit),
            )
        return [ConversationKey(*row) for row in rows]

    # -- internals ------------------------------------------------------------------------

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("The store is not open.")
        return self._db

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection outside any transaction (autocommit statements)."""
        async with self._lock:
            with translated():
                yield self._connection()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
        async with self._lock:
            db = self._connection()
            with translated():
                try:
                    # Inside the try: a cancel while BEGIN runs must not leave a transaction open.
                    await db.execute("BEGIN IMMEDIATE")
                    yield db
                    await db.execute("COMMIT")
                except BaseException:
                    await sqlite_file.rollback(db)
                    raise
