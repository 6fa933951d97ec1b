"""The reads a turn makes, each inside the caller's session, written once for both databases."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from storage.protocol import StoredTurn
from storage.records import ConversationKey, SettingScope
from storage.rows import TURN_COLUMNS, key_params, turn_from_row
from storage.rules import setting_scopes
from storage.sql_session import Session
from storage.sql_turns import KEY_MATCH


async def branch(
    session: Session, key: ConversationKey, upto: int | None, *, with_settings: bool = False
) -> tuple[list[StoredTurn], int | None, dict[str, dict[str, str]] | None]:
    """The branch ending at ``upto`` (default: the head), oldest turn first, the conversation's
    head, and with ``with_settings`` its settings rows by scope, read in the same statement
    (None when the branch is empty: no row carries them); ([], None, None) for an unknown key.
    ValueError if ``upto`` is not ``key``'s."""
    scopes = setting_scopes(key) if with_settings else ()
    beside = f", {settings_beside(session, 6)} AS settings_rows" if scopes else ""
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
        SELECT {TURN_COLUMNS}, c.head_turn_id AS head_turn_id{beside}
        FROM branch
        JOIN turns AS t ON t.id = branch.id
        JOIN conversations AS c ON c.id = t.conversation_id
        ORDER BY branch.depth DESC
        """,
        *key_params(key),
        upto,
        *(scope.as_text() for scope in scopes),
    )
    if not rows and upto is not None:
        raise ValueError(f"Turn {upto} is not part of conversation {key}.")
    if not rows:
        return [], None, None
    settings = settings_from_json(rows[0]["settings_rows"]) if scopes else None
    return [turn_from_row(row) for row in rows], rows[0]["head_turn_id"], settings


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


def settings_beside(session: Session, first: int) -> str:
    """A scalar subquery for a statement to carry a conversation's settings rows beside its own
    result (one round trip less): the rows of the scopes bound at ``$first`` to ``$first + 2``
    (``storage.rules.setting_scopes``), read back with ``settings_from_json``."""
    rows = session.dialect.json_rows.format(columns="scope, name, value")
    scopes = ", ".join(f"${n}" for n in range(first, first + 3))
    return f"(SELECT {rows} FROM settings WHERE scope IN ({scopes}))"


def settings_from_json(text: str | None) -> dict[str, dict[str, str]]:
    return _by_scope(json.loads(text) if text else ())


def _by_scope(rows: Iterable[Sequence[str]]) -> dict[str, dict[str, str]]:
    """(scope, name, value) rows as {scope: {name: value}}."""
    by_scope: dict[str, dict[str, str]] = {}
    for scope, name, value in rows:
        by_scope.setdefault(scope, {})[name] = value
    return by_scope


async def scoped_settings(session: Session, scopes: Sequence[SettingScope]) -> dict[str, dict[str, str]]:
    rows = await session.fetch_in(
        "SELECT scope, name, value FROM settings WHERE scope {values}", [scope.as_text() for scope in scopes]
    )
    return _by_scope((row["scope"], row["name"], row["value"]) for row in rows)
