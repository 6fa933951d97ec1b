"""``storage.protocol.Store`` written once over a ``storage.sql_session.Session``; a backend
(``SqliteStore``, ``PostgresStore``) adds its connections, its lifecycle and what only it does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from storage import sql_reads, sql_turns, sql_usage
from storage.blob_cache import BlobCache
from storage.protocol import (
    BlobChoice,
    Claim,
    ConversationInfo,
    NewTurn,
    StoredTurn,
    TurnContext,
    UsageCount,
    UsageQuery,
)
from storage.records import ConversationKey, SettingScope, Usage
from storage.rows import CONVERSATION_COLUMNS, TURN_COLUMNS, conversation_from_row, key_params, turn_from_row
from storage.rules import SettingsPrecedence, effective_settings, prepare_turn, require_head, setting_scopes
from storage.sql_links import SignedLinkQueries
from storage.sql_pins import PinQueries
from storage.sql_reports import ReportQueries
from storage.sql_session import Row, Session
from storage.sql_turns import KEY_MATCH
from storage.sql_workspaces import WorkspaceQueries

Clock = Callable[[], float]


def handed_over(platform: str, rows: Sequence[Row]) -> list[tuple[ConversationKey, str]]:
    """Rows of (workspace, channel, thread, message_id, claimed_at), oldest claim first."""
    ordered = sorted(rows, key=lambda r: (r[4], r[3]))
    return [(ConversationKey(platform, r[0], r[1], r[2]), r[3]) for r in ordered]


class SqlStore(SettingsPrecedence, SignedLinkQueries, PinQueries, ReportQueries, WorkspaceQueries):
    """Every query of the store protocol. A backend provides three ways to a session: ``_read``
    (statements that each commit on their own), ``_write`` (one statement that writes) and
    ``_transaction`` (several statements, committed together or rolled back on any error)."""

    def __init__(self, clock: Clock = time.time, blob_cache: BlobCache | None = None) -> None:
        self._clock = clock
        self.blob_cache = blob_cache if blob_cache is not None else BlobCache(0)

    def _read(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    def _write(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    def _transaction(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    def _claim_extras(self) -> dict[str, Any]:
        """Columns a backend adds to each claim (PostgreSQL: the claiming process)."""
        return {}

    async def _after_forget(self) -> None:
        """What a backend does once a conversation's rows are gone."""

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
        async with self._write() as session:
            claimed, _ = await self._claim(session, platform, channel, message_id, key, token)
        return claimed

    async def _claim(
        self,
        session: Session,
        platform: str,
        channel: str,
        message_id: str,
        key: ConversationKey | None,
        token: str | None,
        *,
        with_settings: bool = False,
    ) -> tuple[bool, dict[str, str] | None]:
        """Whether this attempt claimed the message; with ``with_settings`` (and a key) also the
        conversation's settings, read in the same statement when it claimed (else None)."""
        now = self._clock()
        workspace, thread = (key.workspace, key.thread) if key is not None else ("", "")
        extras = self._claim_extras()
        names = ", ".join(
            ["platform, channel, message_id, claimed_at, workspace, thread, finished_at", *extras]
        )
        values = ", ".join(f"${n}" for n in range(1, 8 + len(extras)))
        token_at = 8 + len(extras)
        scopes = setting_scopes(key) if with_settings and key is not None else ()
        beside = f", {sql_reads.settings_beside(session, token_at + 1)}" if scopes else ""
        # On conflict the no-op update returns the row only when this attempt wrote it.
        row = await session.fetchrow(
            f"INSERT INTO processed_messages ({names}, claim_token) VALUES ({values}, ${token_at}) "
            "ON CONFLICT (platform, channel, message_id) DO UPDATE SET claim_token = "
            f"processed_messages.claim_token WHERE processed_messages.claim_token = ${token_at} "
            f"RETURNING 1{beside}",
            *(platform, channel, message_id, now, workspace, thread, None if key else now),
            *extras.values(),
            token,
            *(scope.as_text() for scope in scopes),
        )
        if row is None or not scopes or key is None:
            return row is not None, None
        return True, effective_settings(key, sql_reads.settings_from_json(row[1]))

    async def claim_turn(
        self,
        key: ConversationKey,
        message_id: str,
        *,
        token: str,
        known_only: bool = False,
        shown_by: str | None = None,
    ) -> Claim:
        async with self._write() as session:
            known, shown = True, None
            if known_only or shown_by is not None:
                known, shown = await sql_reads.known_and_shown(session, key, shown_by)
            if known_only and not known:
                return Claim(known=False, claimed=False)
            claimed, settings = await self._claim(
                session, key.platform, key.channel, message_id, key, token, with_settings=True
            )
            if settings is None:  # not claimed: read on their own
                settings = await self._settings_of(session, key)
        return Claim(known=known, claimed=claimed, shown_turn=shown, settings=settings)

    async def finish_message(
        self, platform: str, channel: str, message_id: str, posted: Sequence[tuple[str, int]] = ()
    ) -> None:
        async with self._transaction() if posted else self._write() as session:
            if posted:
                await sql_turns.record_posted(session, platform, channel, posted)
            await session.execute(
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
        async with self._read() as session:
            rows = await session.fetch(
                "SELECT workspace, channel, thread, message_id FROM processed_messages "
                "WHERE platform = $1 AND finished_at IS NULL AND claimed_at > $2 "
                "ORDER BY claimed_at, message_id",
                platform,
                claimed_after,
            )
        return [(ConversationKey(platform, r[0], r[1], r[2]), r[3]) for r in rows]

    # -- conversations and turns ------------------------------------------------------------

    async def conversation(self, key: ConversationKey) -> ConversationInfo | None:
        async with self._read() as session:
            row = await session.fetchrow(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations AS c WHERE {KEY_MATCH}", *key_params(key)
            )
        return conversation_from_row(row) if row is not None else None

    async def latest_conversation(
        self, platform: str, workspace: str, channel: str
    ) -> ConversationInfo | None:
        async with self._read() as session:
            row = await session.fetchrow(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations AS c "
                "WHERE c.platform = $1 AND c.workspace = $2 AND c.channel = $3 "
                "ORDER BY c.updated_at DESC, c.id DESC LIMIT 1",
                platform,
                workspace,
                channel,
            )
        return conversation_from_row(row) if row is not None else None

    async def turn(self, turn_id: int) -> StoredTurn | None:
        async with self._read() as session:
            row = await session.fetchrow(
                f"SELECT {TURN_COLUMNS} FROM turns AS t "
                "JOIN conversations AS c ON c.id = t.conversation_id WHERE t.id = $1",
                turn_id,
            )
        return turn_from_row(row) if row is not None else None

    async def history(self, key: ConversationKey, upto: int | None = None) -> list[StoredTurn]:
        async with self._read() as session:
            turns, _, _ = await sql_reads.branch(session, key, upto)
        return turns

    async def interaction_ids(self, key: ConversationKey) -> list[str]:
        async with self._read() as session:
            return await sql_turns.interaction_ids(session, key)

    async def turn_context(
        self,
        key: ConversationKey,
        *,
        upto: int | None = None,
        branch: bool = True,
        blobs: BlobChoice | None = None,
    ) -> TurnContext:
        async with self._read() as session:
            scoped = None
            if branch:
                history, head, scoped = await sql_reads.branch(session, key, upto, with_settings=True)
            else:
                history, head = [], await sql_reads.head(session, key)
            if scoped is None:  # no turn carried them
                settings = await self._settings_of(session, key)
            else:
                settings = effective_settings(key, scoped)
            wanted = list(dict.fromkeys(blobs(settings, history))) if blobs is not None else []
            held, missing = self.blob_cache.split(wanted)
            read = await sql_reads.load_blobs(session, missing)
        self.blob_cache.keep(read)
        return TurnContext(head=head, settings=settings, history=history, blobs=held | read)

    async def append_turn(self, turn: NewTurn, *, expected_head: int | None) -> StoredTurn:
        prepared = prepare_turn(turn)
        async with self._transaction() as session:
            now = self._clock()
            turn_id = await sql_turns.append(session, prepared, expected_head, now)
        self.blob_cache.keep({digest: data for digest, _, _, data in prepared.new_blobs()})
        return prepared.stored(turn_id, now)

    async def move_head(self, key: ConversationKey, turn_id: int, *, expected_head: int | None) -> None:
        async with self._transaction() as session:
            row = await session.fetchrow(
                "SELECT c.id, c.head_turn_id FROM conversations AS c "
                f"WHERE {KEY_MATCH}{session.dialect.for_update}",
                *key_params(key),
            )
            conversation_id, head = (row[0], row[1]) if row is not None else (None, None)
            require_head(expected_head, head)
            owner = await sql_turns.conversation_of_turn(session, turn_id)
            if conversation_id is None or owner != conversation_id:
                raise ValueError(f"Turn {turn_id} is not part of conversation {key}.")
            await sql_turns.set_head(session, conversation_id, turn_id, self._clock())

    async def record_posted(
        self, platform: str, channel: str, message_ids: Iterable[str], turn_id: int
    ) -> None:
        posted = [(message_id, turn_id) for message_id in message_ids]
        if not posted:
            return
        async with self._transaction() as session:
            await sql_turns.record_posted(session, platform, channel, posted)

    async def turn_for_message(self, platform: str, channel: str, message_id: str) -> int | None:
        async with self._read() as session:
            found = await session.fetchval(
                "SELECT turn_id FROM posted_messages "
                "WHERE platform = $1 AND channel = $2 AND message_id = $3",
                platform,
                channel,
                message_id,
            )
        return int(found) if found is not None else None

    async def load_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(hashes))
        held, missing = self.blob_cache.split(wanted)
        if not missing:
            return held
        async with self._read() as session:
            read = await sql_reads.load_blobs(session, missing)
        self.blob_cache.keep(read)
        return held | read

    # -- settings -------------------------------------------------------------------------

    async def scoped_settings(self, scopes: Sequence[SettingScope]) -> dict[str, dict[str, str]]:
        if not scopes:
            return {}
        async with self._read() as session:
            return await sql_reads.scoped_settings(session, scopes)

    async def _settings_of(self, session: Session, key: ConversationKey) -> dict[str, str]:
        return effective_settings(key, await sql_reads.scoped_settings(session, setting_scopes(key)))

    async def set_setting(self, scope: SettingScope, name: str, value: str | None) -> None:
        async with self._write() as session:
            if value is None:
                await session.execute(
                    "DELETE FROM settings WHERE scope = $1 AND name = $2", scope.as_text(), name
                )
            else:
                await session.execute(
                    "INSERT INTO settings (scope, name, value) VALUES ($1, $2, $3) "
                    "ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value",
                    scope.as_text(),
                    name,
                    value,
                )

    # -- forgetting and retention -----------------------------------------------------------

    async def forget(self, key: ConversationKey) -> int:
        async with self._transaction() as session:
            deleted, _ = await sql_turns.forget(session, key)
        if deleted:
            self.blob_cache.clear()
            await self._after_forget()
        return deleted

    async def idle_conversations(self, before: float, limit: int = 500) -> list[ConversationKey]:
        async with self._read() as session:
            rows = await session.fetch(
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
        async with self._read() as session:
            return await sql_usage.usage_since(session, since, author_id=author_id, platform=platform)

    async def count_images(
        self,
        since: float,
        *,
        author_id: str | None = None,
        platform: str | None = None,
        workspace: str | None = None,
        channel: str | None = None,
    ) -> tuple[int, float | None]:
        async with self._read() as session:
            return await sql_usage.count_images(
                session, since, author_id=author_id, platform=platform, workspace=workspace, channel=channel
            )

    async def cost_since(self, since: float) -> float:
        async with self._read() as session:
            return await sql_usage.cost_since(session, since)

    async def usage_counts(self, queries: Sequence[UsageQuery]) -> list[UsageCount]:
        if not queries:
            return []
        async with self._read() as session:
            return await sql_usage.usage_counts(session, queries)
