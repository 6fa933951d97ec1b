"""The steps of storing one turn, and of forgetting a conversation, each inside the caller's
transaction, written once for both databases."""

from __future__ import annotations

import json
from collections.abc import Sequence

from storage.content import INTERACTION, interaction_id
from storage.records import ConversationKey, SettingScope
from storage.rows import key_params
from storage.rules import PreparedTurn, require_blobs, require_head, require_parent
from storage.schema import TURN_BLOBS, TURNS, USAGE_LOG
from storage.sql_session import Session

KEY_MATCH = "c.platform = $1 AND c.workspace = $2 AND c.channel = $3 AND c.thread = $4"


async def append(session: Session, prepared: PreparedTurn, expected_head: int | None, now: float) -> int:
    """Store the turn, its new blobs and its usage, and make it the head; returns its id.
    Raises (writing nothing, once the caller rolls back) when a rule of ``storage.rules`` fails."""
    require_blobs(prepared, await stored_blobs(session, prepared.unoffered()))
    conversation_id, head, parents_conversation = await upsert_conversation(
        session, prepared.key, now, prepared.parent_id
    )
    require_head(expected_head, head)
    require_parent(prepared, parents_conversation, conversation_id)
    await insert_blobs(session, prepared)
    turn_id = await insert_turn(session, prepared, conversation_id, now)
    await insert_usage(session, prepared, turn_id, now)
    await set_head(session, conversation_id, turn_id, now)
    return turn_id


async def stored_blobs(session: Session, hashes: Sequence[str]) -> set[str]:
    """The given hashes that are stored, locked (where rows lock) so a concurrent forget cannot
    delete them."""
    rows = await session.fetch_in(
        f"SELECT sha256 FROM blobs WHERE sha256 {{values}} ORDER BY sha256{session.dialect.for_key_share}",
        hashes,
    )
    return {row[0] for row in rows}


async def upsert_conversation(
    session: Session, key: ConversationKey, now: float, parent_id: int | None = None
) -> tuple[int, int | None, int | None]:
    """The conversation's id and current head, creating it (headless) if it is new, and the
    conversation turn ``parent_id`` belongs to (None for none or no such turn), in one round
    trip. Where rows lock, the row stays locked until commit: appends to one conversation run
    one after another, and the head read here is the one a concurrent append committed.

    The parent is looked up with the statement's snapshot, from before any wait for the row
    lock. Turns are only ever deleted with their conversation, and a conversation deleted while
    this waited comes back under a new id, so a parent the snapshot still sees fails the check
    as a missing one would."""
    row = await session.fetchrow(
        "INSERT INTO conversations "
        "(platform, workspace, channel, thread, head_turn_id, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, NULL, $5, $5) "
        "ON CONFLICT (platform, workspace, channel, thread) "
        "DO UPDATE SET updated_at = excluded.updated_at RETURNING id, head_turn_id, "
        "(SELECT t.conversation_id FROM turns AS t WHERE t.id = $6)",
        *key_params(key),
        now,
        parent_id,
    )
    assert row is not None  # an aggregate or an upsert's RETURNING: one row
    return int(row[0]), row[1], (int(row[2]) if row[2] is not None else None)


async def conversation_of_turn(session: Session, turn_id: int | None) -> int | None:
    if turn_id is None:
        return None
    found = await session.fetchval("SELECT conversation_id FROM turns WHERE id = $1", turn_id)
    return int(found) if found is not None else None


async def insert_blobs(session: Session, prepared: PreparedTurn) -> None:
    new_blobs = prepared.new_blobs()
    if new_blobs:
        await session.executemany(
            "INSERT INTO blobs (sha256, mime_type, size, data) VALUES ($1, $2, $3, $4) "
            f"ON CONFLICT (sha256) {session.dialect.blob_conflict}",
            new_blobs,
        )


async def insert_turn(session: Session, prepared: PreparedTurn, conversation_id: int, now: float) -> int:
    """The turn row and its blob references; returns the new turn's id."""
    turn_id = int(
        await session.fetchval(
            TURNS.insert(returning="id"),
            conversation_id,
            prepared.parent_id,
            prepared.user_json,
            prepared.model_json,
            prepared.model,
            prepared.author_id,
            now,
            *prepared.usage_values(),
            prepared.usage.cost_usd,
        )
    )
    if prepared.refs:
        await session.executemany(TURN_BLOBS.insert(), [(turn_id, h) for h in prepared.refs])
    return turn_id


async def insert_usage(session: Session, prepared: PreparedTurn, turn_id: int, now: float) -> None:
    await session.execute(
        USAGE_LOG.insert(),
        turn_id,
        prepared.author_id,
        prepared.model,
        now,
        *prepared.usage_values(),
        *key_params(prepared.key)[:3],
        prepared.usage.cost_usd,
    )


async def set_head(session: Session, conversation_id: int, turn_id: int, now: float) -> None:
    await session.execute(
        "UPDATE conversations SET head_turn_id = $1, updated_at = $2 WHERE id = $3",
        turn_id,
        now,
        conversation_id,
    )


async def record_posted(
    session: Session, platform: str, channel: str, posted: Sequence[tuple[str, int]]
) -> None:
    """Which platform messages show which turn: (message id, turn id) pairs."""
    await session.executemany(
        "INSERT INTO posted_messages (platform, channel, message_id, turn_id) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (platform, channel, message_id) "
        "DO UPDATE SET turn_id = excluded.turn_id",
        [(platform, channel, message_id, turn_id) for message_id, turn_id in posted],
    )


async def forget(session: Session, key: ConversationKey) -> tuple[int, int]:
    """Delete a conversation, its thread settings and every blob no other turn nor a pin references;
    returns the turns and the blobs deleted."""
    await session.execute("DELETE FROM settings WHERE scope = $1", SettingScope.for_thread(key).as_text())
    row = await session.fetchrow(
        "SELECT c.id, (SELECT COUNT(*) FROM turns AS t WHERE t.conversation_id = c.id) "
        f"FROM conversations AS c WHERE {KEY_MATCH}{session.dialect.for_update}",
        *key_params(key),
    )
    if row is None:
        return 0, 0
    conversation_id, turn_count = row[0], row[1]
    rows = await session.fetch(
        "SELECT DISTINCT tb.sha256 FROM turn_blobs AS tb "
        "JOIN turns AS t ON t.id = tb.turn_id WHERE t.conversation_id = $1",
        conversation_id,
    )
    candidates = [r[0] for r in rows]
    await lock_blobs(session, candidates)
    # Cascades to turns, turn_blobs and posted_messages.
    await session.execute("DELETE FROM conversations WHERE id = $1", conversation_id)
    released = await release_blobs(session, candidates)
    return int(turn_count), released


async def interaction_ids(session: Session, key: ConversationKey) -> list[str]:
    """Ids of the interactions Google keeps for the conversation's model records, every branch,
    oldest first (none for a conversation drawn with generateContent: only records naming one
    are read)."""
    rows = await session.fetch(
        "SELECT t.model_content FROM turns AS t JOIN conversations AS c ON c.id = t.conversation_id "
        f"WHERE {KEY_MATCH} AND t.model_content LIKE $5 ORDER BY t.id",
        *key_params(key),
        f'%"{INTERACTION}"%',
    )
    return [ident for row in rows if (ident := interaction_id(json.loads(row[0]))) is not None]


async def lock_blobs(session: Session, hashes: Sequence[str]) -> None:
    """Where rows lock: waits for turns and pins in flight that reference these blobs, so a
    DELETE after it (a new statement, a new snapshot) sees their references."""
    if session.dialect.locks_rows:
        await session.execute_in(
            f"SELECT 1 FROM blobs WHERE sha256 {{values}} ORDER BY sha256{session.dialect.for_update}",
            hashes,
        )


async def release_blobs(session: Session, hashes: Sequence[str]) -> int:
    """Delete the given blobs that no turn and no pin references any more (locked first); returns
    how many went."""
    await lock_blobs(session, hashes)
    released = await session.fetch_in(
        "DELETE FROM blobs WHERE sha256 {values} "
        "AND NOT EXISTS (SELECT 1 FROM turn_blobs AS tb WHERE tb.sha256 = blobs.sha256) "
        "AND NOT EXISTS (SELECT 1 FROM pins AS p WHERE p.sha256 = blobs.sha256) RETURNING sha256",
        hashes,
    )
    return len(released)
