"""The reads a turn makes, each inside the caller's session, written once for both databases."""

from __future__ import annotations

from collections.abc import Sequence

from storage.protocol import StoredTurn
from storage.records import ConversationKey, SettingScope
from storage.rows import TURN_COLUMNS, key_params, turn_from_row
from storage.sql_session import Session
from storage.sql_turns import KEY_MATCH


async def branch(
    session: Session, key: ConversationKey, upto: int | None
) -> tuple[list[StoredTurn], int | None]:
    """The branch ending at ``upto`` (default: the head), oldest turn first, and the
    conversation's head; ([], None) for an unknown key. ValueError if ``upto`` is not ``key``'s."""
    rows = await session.fetch(
        f"""
        WITH RECURSIVE branch (id, depth) AS (
            SELECT t.id, 0
            FROM conversations AS c JOIN turns AS t ON t.conversation_id = c.id
            WHERE {KEY_MATCH} AND t.id = COALESCE(CAST($5 AS BIGINT), c.head_turn_id)
            UNION ALL
            SELECT t.parent_id, branch.depth + 1
            FROM branch JOIN turns AS t ON t.id = branch.id
            WHERE t.parent_id IS NOT NULL
        )
        SELECT {TURN_COLUMNS}, c.head_turn_id AS head_turn_id
        FROM branch
        JOIN turns AS t ON t.id = branch.id
        JOIN conversations AS c ON c.id = t.conversation_id
        ORDER BY branch.depth DESC
        """,
        *key_params(key),
        upto,
    )
    if not rows and upto is not None:
        raise ValueError(f"Turn {upto} is not part of conversation {key}.")
    return [turn_from_row(row) for row in rows], (rows[0]["head_turn_id"] if rows else None)


async def head(session: Session, key: ConversationKey) -> int | None:
    found = await session.fetchval(
        f"SELECT c.head_turn_id FROM conversations AS c WHERE {KEY_MATCH}", *key_params(key)
    )
    return int(found) if found is not None else None


async def known_and_shown(
    session: Session, key: ConversationKey, message_id: str | None
) -> tuple[bool, int | None]:
    """Whether the conversation has turns, and the turn a message of its channel shows if that
    turn is the conversation's."""
    row = await session.fetchrow(
        "SELECT c.id, (SELECT p.turn_id FROM posted_messages AS p JOIN turns AS t ON t.id = p.turn_id "
        "WHERE p.platform = $1 AND p.channel = $3 AND p.message_id = $5 AND t.conversation_id = c.id) "
        f"FROM conversations AS c WHERE {KEY_MATCH}",
        *key_params(key),
        message_id,
    )
    if row is None:
        return False, None
    return True, (int(row[1]) if row[1] is not None else None)


async def load_blobs(session: Session, hashes: Sequence[str]) -> dict[str, bytes]:
    rows = await session.fetch_in("SELECT sha256, data FROM blobs WHERE sha256 {values}", hashes)
    return {row[0]: bytes(row[1]) for row in rows}


async def scoped_settings(session: Session, scopes: Sequence[SettingScope]) -> dict[str, dict[str, str]]:
    rows = await session.fetch_in(
        "SELECT scope, name, value FROM settings WHERE scope {values}", [scope.as_text() for scope in scopes]
    )
    by_scope: dict[str, dict[str, str]] = {}
    for row in rows:
        by_scope.setdefault(row["scope"], {})[row["name"]] = row["value"]
    return by_scope
