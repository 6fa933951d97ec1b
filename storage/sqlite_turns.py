"""The steps of storing one turn on SQLite, each inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import aiosqlite

from storage.errors import StoreError
from storage.records import ConversationKey
from storage.rows import key_params
from storage.rules import PreparedTurn

# Well under SQLite's limit on bound parameters in one statement.
CHUNK = 500


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


async def upsert_conversation(
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


async def conversation_of_turn(db: aiosqlite.Connection, turn_id: int | None) -> int | None:
    if turn_id is None:
        return None
    rows = await db.execute_fetchall("SELECT conversation_id FROM turns WHERE id = ?", (turn_id,))
    return int(next(iter(rows))[0]) if rows else None


async def insert_blobs(db: aiosqlite.Connection, prepared: PreparedTurn) -> None:
    new_blobs = prepared.new_blobs()
    if new_blobs:
        await db.executemany(
            "INSERT OR IGNORE INTO blobs (sha256, mime_type, size, data) VALUES (?, ?, ?, ?)",
            new_blobs,
        )


async def insert_turn(
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


async def insert_usage(db: aiosqlite.Connection, prepared: PreparedTurn, turn_id: int, now: float) -> None:
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


async def stored_hashes(db: aiosqlite.Connection, hashes: Sequence[str]) -> set[str]:
    stored: set[str] = set()
    for chunk in chunks(hashes):
        rows = await db.execute_fetchall(
            f"SELECT sha256 FROM blobs WHERE sha256 IN ({placeholders(len(chunk))})", chunk
        )
        stored.update(row[0] for row in rows)
    return stored
