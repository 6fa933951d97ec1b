"""The steps of storing one turn on PostgreSQL, each inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from storage.records import ConversationKey, SettingScope
from storage.rows import key_params
from storage.rules import PreparedTurn


async def lock_stored_blobs(conn: asyncpg.Connection, hashes: Sequence[str]) -> set[str]:
    """The given hashes that are stored, locked so a concurrent forget cannot delete them."""
    if not hashes:
        return set()
    rows = await conn.fetch(
        "SELECT sha256 FROM blobs WHERE sha256 = ANY($1::text[]) ORDER BY sha256 FOR KEY SHARE",
        list(hashes),
    )
    return {row[0] for row in rows}


async def upsert_conversation(
    conn: asyncpg.Connection, key: ConversationKey, now: float
) -> tuple[int, int | None]:
    """The conversation's id and current head, creating it (headless) if it is new. The
    row stays locked until commit: appends to one conversation run one after another, and
    the head read here is the one a concurrent append committed."""
    row = await conn.fetchrow(
        "INSERT INTO conversations "
        "(platform, workspace, channel, thread, head_turn_id, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, NULL, $5, $5) "
        "ON CONFLICT (platform, workspace, channel, thread) "
        "DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id, head_turn_id",
        *key_params(key),
        now,
    )
    return int(row[0]), row[1]


async def conversation_of_turn(conn: asyncpg.Connection, turn_id: int | None) -> int | None:
    if turn_id is None:
        return None
    found = await conn.fetchval("SELECT conversation_id FROM turns WHERE id = $1", turn_id)
    return int(found) if found is not None else None


async def insert_blobs(conn: asyncpg.Connection, prepared: PreparedTurn) -> None:
    # DO UPDATE, not DO NOTHING: it locks an existing row (or, if a forget deleted it
    # meanwhile, inserts it again), so the blob is there when the turn commits.
    new_blobs = prepared.new_blobs()
    if new_blobs:
        await conn.executemany(
            "INSERT INTO blobs (sha256, mime_type, size, data) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (sha256) DO UPDATE SET size = EXCLUDED.size",
            new_blobs,
        )


async def insert_turn(
    conn: asyncpg.Connection, prepared: PreparedTurn, conversation_id: int, now: float
) -> int:
    """The turn row and its blob references; returns the new turn's id."""
    turn_id: int = await conn.fetchval(
        "INSERT INTO turns (conversation_id, parent_id, user_content, model_content, "
        "model, author_id, created_at, prompt_tokens, output_tokens, thought_tokens, "
        "total_tokens, images_generated, prompt_by_modality, output_by_modality, cost_usd) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
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
    if prepared.refs:
        await conn.executemany(
            "INSERT INTO turn_blobs (turn_id, sha256) VALUES ($1, $2)",
            [(turn_id, h) for h in prepared.refs],
        )
    return turn_id


async def insert_usage(conn: asyncpg.Connection, prepared: PreparedTurn, turn_id: int, now: float) -> None:
    await conn.execute(
        "INSERT INTO usage_log (turn_id, author_id, model, created_at, prompt_tokens, "
        "output_tokens, thought_tokens, total_tokens, images_generated, "
        "prompt_by_modality, output_by_modality, platform, workspace, channel, cost_usd) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        turn_id,
        prepared.author_id,
        prepared.model,
        now,
        *prepared.usage_values(),
        *key_params(prepared.key)[:3],
        prepared.usage.cost_usd,
    )


async def forget(conn: asyncpg.Connection, key: ConversationKey) -> int:
    """Delete a conversation, its thread settings and every blob no other turn references;
    returns the turns deleted."""
    # The rows go at once; as with any PostgreSQL delete, the bytes of dead row versions
    # stay in the data files until vacuum reuses the space, and in WAL until it is recycled.
    await conn.execute("DELETE FROM settings WHERE scope = $1", SettingScope.for_thread(key).as_text())
    row = await conn.fetchrow(
        "SELECT c.id, (SELECT COUNT(*) FROM turns AS t WHERE t.conversation_id = c.id) "
        "FROM conversations AS c WHERE c.platform = $1 AND c.workspace = $2 AND c.channel = $3 "
        "AND c.thread = $4 FOR UPDATE",
        *key_params(key),
    )
    if row is None:
        return 0
    conversation_id, turn_count = row[0], row[1]
    candidates = [
        r[0]
        for r in await conn.fetch(
            "SELECT DISTINCT tb.sha256 FROM turn_blobs AS tb "
            "JOIN turns AS t ON t.id = tb.turn_id WHERE t.conversation_id = $1",
            conversation_id,
        )
    ]
    # Lock first: waits for turns in flight that reference these blobs, so the DELETE
    # below (a new statement, a new snapshot) sees their references.
    await conn.execute(
        "SELECT 1 FROM blobs WHERE sha256 = ANY($1::text[]) ORDER BY sha256 FOR UPDATE", candidates
    )
    # Cascades to turns, turn_blobs and posted_messages.
    await conn.execute("DELETE FROM conversations WHERE id = $1", conversation_id)
    await conn.execute(
        "DELETE FROM blobs WHERE sha256 = ANY($1::text[]) "
        "AND NOT EXISTS (SELECT 1 FROM turn_blobs AS tb WHERE tb.sha256 = blobs.sha256)",
        candidates,
    )
    return int(turn_count)
