"""Forgetting a whole workspace (``storage.protocol.Maintenance.forget_workspace``), shared by both
drivers: its settings, then its conversations a batch at a time (each as ``forget`` deletes one),
then its pins (as ``forget_pins``); the ids of the interactions Google keeps for its conversations
are collected on the way (the caller deletes them there). The usage ledger stays: it holds no
content, and the spend cap and the monthly totals count it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from storage import sql_turns
from storage.blob_cache import BlobCache
from storage.records import ConversationKey, SettingScope, WorkspaceForgotten
from storage.sql_pins import unpin
from storage.sql_session import Session


class WorkspaceQueries:
    """A mixin for ``storage.sql_store.SqlStore``."""

    blob_cache: BlobCache
    # Conversations forgotten per transaction: however large the workspace, no transaction (nor,
    # on PostgreSQL, its row locks) lasts long while other turns wait to write.
    workspace_batch = 25

    def _transaction(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    async def _after_forget(self) -> None:
        raise NotImplementedError

    async def forget_workspace(self, platform: str, workspace: str) -> WorkspaceForgotten:
        async with self._transaction() as session:
            forgotten = WorkspaceForgotten(settings=await _forget_settings(session, platform, workspace))
        while True:
            async with self._transaction() as session:
                batch = await _forget_conversations(session, platform, workspace, self.workspace_batch)
            if not batch.conversations:
                break
            forgotten += batch
            self.blob_cache.clear()
        async with self._transaction() as session:
            pins, images = await unpin(session, platform, workspace, None)
        forgotten += WorkspaceForgotten(images=images, pins=pins)
        if forgotten.anything:
            self.blob_cache.clear()
            await self._after_forget()
        return forgotten


async def _forget_settings(session: Session, platform: str, workspace: str) -> int:
    """Every channel and thread setting of the workspace (small rows: one statement)."""
    prefixes = SettingScope.inside_workspace(platform, workspace)
    # substr, not LIKE: LIKE ignores letter case on SQLite and gives _ and % a meaning.
    match = " OR ".join(f"substr(scope, 1, ${2 * n + 2}) = ${2 * n + 1}" for n in range(len(prefixes)))
    rows = await session.fetch(
        f"DELETE FROM settings WHERE {match} RETURNING 1",
        *(value for prefix in prefixes for value in (prefix, len(prefix))),
    )
    return len(rows)


async def _forget_conversations(
    session: Session, platform: str, workspace: str, limit: int
) -> WorkspaceForgotten:
    """Up to ``limit`` of the workspace's conversations, as ``forget`` deletes each."""
    rows = await session.fetch(
        "SELECT platform, workspace, channel, thread FROM conversations "
        "WHERE platform = $1 AND workspace = $2 LIMIT $3",
        platform,
        workspace,
        limit,
    )
    turns = images = 0
    remote: list[str] = []
    for row in rows:
        key = ConversationKey(*row)
        remote += await sql_turns.interaction_ids(session, key)
        deleted, released = await sql_turns.forget(session, key)
        turns, images = turns + deleted, images + released
    return WorkspaceForgotten(conversations=len(rows), turns=turns, images=images, interactions=tuple(remote))
