"""The SQLite store: one aiosqlite connection in WAL mode, serialised by an asyncio lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.content import Blob, ContentRecord
from bot.vocabulary import ConversationKey, SettingScope, Usage
from storage.errors import StoreError
from storage.migrations import MIGRATIONS, Migration
from storage.protocol import ConversationInfo, StoredTurn
from storage.rows import CONVERSATION_COLUMNS, TURN_COLUMNS, conversation_from_row, key_params, turn_from_row
from storage.rules import (
    PreparedTurn,
    SettingsPrecedence,
    prepare_turn,
    require_blobs,
    require_head,
    require_parent,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]

BUSY_TIMEOUT_MS = 10_000
# Well under SQLite's limit on bound parameters in one statement.
_CHUNK = 500
_SIDE_FILES = ("-wal", "-shm", "-journal")

_KEY_MATCH = "c.platform = ? AND c.workspace = ? AND c.channel = ? AND c.thread = ?"


def _newer_schema(version: int) -> StoreError:
    return StoreError(
        f"The database was written by a newer version of the bot (schema {version}); upgrade the bot."
    )


def _prepare_file(path: Path) -> None:
    """Create the parent directory (0700) and the database file (0600) if they are missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _match_side_file_modes(path: Path) -> None:
    """Give -wal/-shm/-journal files the database file's permissions (SQLite does this when it
    creates them; this also covers files left behind by another program)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    for suffix in _SIDE_FILES:
        side = path.with_name(path.name + suffix)
        try:
            if stat.S_IMODE(side.stat().st_mode) != mode:
                os.chmod(side, mode)
        except FileNotFoundError:
            continue


def _usage_filter(since: float, **equal: str | None) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause over usage_log (alias u) for a time window and optional exact matches."""
    clauses = ["u.created_at >= ?"]
    params: list[Any] = [since]
    for column, value in equal.items():
        if value is not None:
            clauses.append(f"u.{column} = ?")
            params.append(value)
    return " AND ".join(clauses), tuple(params)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


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

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            raise StoreError("The store is already open.")
        await asyncio.to_thread(_prepare_file, self.path)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Refuse a newer schema before changing anything in the file.
            version = await self._user_version(db)
            if version > MIGRATIONS[-1].version:
                raise _newer_schema(version)
            mode = await self._pragma(db, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"Could not switch {self.path} to WAL mode (got {mode!r}).")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA secure_delete = ON")
            await self._migrate(db, MIGRATIONS)
            await asyncio.to_thread(_match_side_file_modes, self.path)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    async def schema_version(self) -> int:
        async with self._reading() as db:
            return await self._user_version(db)

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
        self, platform: str, channel: str, message_id: str, key: ConversationKey | None = None
    ) -> bool:
        now = self._clock()
        workspace, thread = (key.workspace, key.thread) if key is not None else ("", "")
        async with self._writing() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO processed_messages "
                "(platform, channel, message_id, claimed_at, workspace, thread, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, channel, message_id, now, workspace, thread, None if key else now),
            )
            return cursor.rowcount == 1

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
            require_blobs(prepared, await self._stored_hashes(db, prepared.unoffered()))
            conversation_id, head = await self._upsert_conversation(db, key, now)
            require_head(expected_head, head)
            require_parent(prepared, await self._conversation_of_turn(db, parent_id), conversation_id)
            await self._insert_blobs(db, prepared)
            turn_id = await self._insert_turn(db, prepared, conversation_id, now)
            await self._insert_usage(db, prepared, turn_id, now)
            await db.execute(
                "UPDATE conversations SET head_turn_id = ?, updated_at = ? WHERE id = ?",
                (turn_id, now, conversation_id),
            )
        return prepared.stored(turn_id, now)

    @staticmethod
    async def _upsert_conversation(
        db: aiosqlite.Connection, key: ConversationKey, now: float
    ) -> tuple[int, int | None]:
        """The conversation's id and current head, creating it (headless) if it is new."""
        rows = await db.execute_fetchall(
            "INSERT INTO conversations "
            "(platform, workspace, channel, thread, head_turn_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?) "
            "ON CONFLICT (platform, workspace, channel, thread) "
            "DO UPDATE SET updated_at = excluded.updated_at RETURNING id, head_turn_id",
            (*key_params(key), now, now),
        )
        row = next(iter(rows))
        return int(row[0]), row[1]

    @staticmethod
    async def _conversation_of_turn(db: aiosqlite.Connection, turn_id: int | None) -> int | None:
        if turn_id is None:
            return None
        rows = await db.execute_fetchall("SELECT conversation_id FROM turns WHERE id = ?", (turn_id,))
        return int(next(iter(rows))[0]) if rows else None

    @staticmethod
    async def _insert_blobs(db: aiosqlite.Connection, prepared: PreparedTurn) -> None:
        new_blobs = prepared.new_blobs()
        if new_blobs:
            await db.executemany(
                "INSERT OR IGNORE INTO blobs (sha256, mime_type, size, data) VALUES (?, ?, ?, ?)",
                new_blobs,
            )

    @staticmethod
    async def _insert_turn(
        db: aiosqlite.Connection, prepared: PreparedTurn, conversation_id: int, now: float
    ) -> int:
        """The turn row and its blob references; returns the new turn's id."""
        cursor = await db.execute(
            "INSERT INTO turns (conversation_id, parent_id, user_content, model_content, "
            "model, author_id, created_at, prompt_tokens, output_tokens, thought_tokens, "
            "total_tokens, images_generated, prompt_by_modality, output_by_modality, cost_usd) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                prepared.parent_id,
                prepared.user_json,
                prepared.model_json,
                prepared.model,
                prepared.author_id,
                now,
                *prepared.usage_values(),
                prepared.usage.cost_usd,
            ),
        )
        turn_id = cursor.lastrowid
        if turn_id is None:  # pragma: no cover - an INSERT always sets it
            raise StoreError("SQLite did not report the new turn's id.")
        if prepared.refs:
            await db.executemany(
                "INSERT INTO turn_blobs (turn_id, sha256) VALUES (?, ?)",
                [(turn_id, h) for h in prepared.refs],
            )
        return turn_id

    @staticmethod
    async def _insert_usage(
        db: aiosqlite.Connection, prepared: PreparedTurn, turn_id: int, now: float
    ) -> None:
        await db.execute(
            "INSERT INTO usage_log (turn_id, author_id, model, created_at, prompt_tokens, "
            "output_tokens, thought_tokens, total_tokens, images_generated, "
            "prompt_by_modality, output_by_modality, platform, workspace, channel, cost_usd) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                turn_id,
                prepared.author_id,
                prepared.model,
                now,
                *prepared.usage_values(),
                *key_params(prepared.key)[:3],
                prepared.usage.cost_usd,
            ),
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
            for chunk in _chunks(wanted):
                rows = await db.execute_fetchall(
                    f"SELECT sha256, data FROM blobs WHERE sha256 IN ({_placeholders(len(chunk))})",
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
                f"SELECT scope, name, value FROM settings WHERE scope IN ({_placeholders(len(texts))})", texts
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
            for chunk in _chunks(candidates):
                await db.execute(
                    f"DELETE FROM blobs WHERE sha256 IN ({_placeholders(len(chunk))}) "
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
        where, params = _usage_filter(since, author_id=author_id, platform=platform)
        async with self._reading() as db:
            totals = next(
                iter(
                    await db.execute_fetchall(
                        "SELECT COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
                        "COALESCE(SUM(output_tokens), 0) AS output_tokens, "
                        "COALESCE(SUM(thought_tokens), 0) AS thought_tokens, "
                        "COALESCE(SUM(total_tokens), 0) AS total_tokens, "
                        "COALESCE(SUM(images_generated), 0) AS images_generated, "
                        "COALESCE(SUM(cost_usd), 0) AS cost_usd "
                        f"FROM usage_log AS u WHERE {where}",
                        params,
                    )
                )
            )
            by_modality: dict[str, dict[str, int]] = {}
            for column in ("prompt_by_modality", "output_by_modality"):
                rows = await db.execute_fetchall(
                    f"SELECT j.key, SUM(j.value) FROM usage_log AS u, json_each(u.{column}) AS j "
                    f"WHERE {where} GROUP BY j.key ORDER BY j.key",
                    params,
                )
                by_modality[column] = {row[0]: int(row[1]) for row in rows}
        return Usage(
            prompt_tokens=totals["prompt_tokens"],
            output_tokens=totals["output_tokens"],
            thought_tokens=totals["thought_tokens"],
            total_tokens=totals["total_tokens"],
            prompt_by_modality=by_modality["prompt_by_modality"],
            output_by_modality=by_modality["output_by_modality"],
            images_generated=totals["images_generated"],
            cost_usd=float(totals["cost_usd"]),
        )

    async def count_images(
        self,
        since: float,
        *,
        author_id: str | None = None,
        platform: str | None = None,
        workspace: str | None = None,
        channel: str | None = None,
    ) -> tuple[int, float | None]:
        where, params = _usage_filter(
            since, author_id=author_id, platform=platform, workspace=workspace, channel=channel
        )
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                "SELECT COALESCE(SUM(images_generated), 0), "
                "MIN(CASE WHEN images_generated > 0 THEN created_at END) "
                f"FROM usage_log AS u WHERE {where}",
                params,
            )
        count, oldest = next(iter(rows))
        return int(count), oldest

    async def cost_since(self, since: float) -> float:
        async with self._reading() as db:
            rows = await db.execute_fetchall(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM usage_log WHERE created_at >= ?", (since,)
            )
        return float(next(iter(rows))[0])

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
            yield self._connection()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[aiosqlite.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error."""
        async with self._lock:
            db = self._connection()
            try:
                # Inside the try: a cancel while BEGIN runs must not leave a transaction open.
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                await self._rollback(db)
                raise

    @staticmethod
    async def _rollback(db: aiosqlite.Connection) -> None:
        # Shielded so a cancelled caller still leaves the connection outside a transaction;
        # aiosqlite runs statements in order, so the next BEGIN queues behind this ROLLBACK.
        # OperationalError: SQLite already rolled back (e.g. after SQLITE_FULL).
        with contextlib.suppress(sqlite3.OperationalError):
            await asyncio.shield(db.execute("ROLLBACK"))

    @staticmethod
    async def _pragma(db: aiosqlite.Connection, sql: str) -> Any:
        rows = await db.execute_fetchall(sql)
        return next(iter(rows))[0]

    @classmethod
    async def _user_version(cls, db: aiosqlite.Connection) -> int:
        return int(await cls._pragma(db, "PRAGMA user_version"))

    @staticmethod
    async def _stored_hashes(db: aiosqlite.Connection, hashes: Sequence[str]) -> set[str]:
        stored: set[str] = set()
        for chunk in _chunks(hashes):
            rows = await db.execute_fetchall(
                f"SELECT sha256 FROM blobs WHERE sha256 IN ({_placeholders(len(chunk))})", chunk
            )
            stored.update(row[0] for row in rows)
        return stored

    async def _migrate(self, db: aiosqlite.Connection, migrations: Sequence[Migration]) -> None:
        """Apply every step newer than the file's ``user_version``, one transaction each."""
        for migration in migrations:
            try:
                await db.execute("BEGIN IMMEDIATE")
                # Re-read under the write lock: another process may have migrated meanwhile.
                current = await self._user_version(db)
                if current > migrations[-1].version:
                    raise _newer_schema(current)
                if current >= migration.version:
                    await db.execute("ROLLBACK")
                    continue
                if current != migration.version - 1:
                    raise StoreError(
                        f"Cannot migrate {self.path} from schema {current} with step {migration.version}."
                    )
                for statement in migration.statements:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {int(migration.version)}")
                await db.execute("COMMIT")
            except BaseException:
                await self._rollback(db)
                raise
            log.info("Migrated %s to schema %d: %s", self.path, migration.version, migration.description)
