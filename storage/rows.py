"""Row shapes both SQL backends share: the columns they select and how a row becomes a value."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.protocol import ConversationInfo, StoredTurn
from storage.records import ConversationKey, Usage

# Rows are read by column name: sqlite3.Row and asyncpg.Record both allow it.
Row = Mapping[str, Any]

TURN_COLUMNS = """
    t.id, t.parent_id, t.user_content, t.model_content, t.model, t.author_id, t.created_at,
    t.prompt_tokens, t.output_tokens, t.thought_tokens, t.total_tokens, t.images_generated,
    t.prompt_by_modality, t.output_by_modality, t.cost_usd,
    c.platform, c.workspace, c.channel, c.thread
"""

CONVERSATION_COLUMNS = """
    c.platform, c.workspace, c.channel, c.thread, c.head_turn_id, c.created_at, c.updated_at,
    (SELECT COUNT(*) FROM turns AS t WHERE t.conversation_id = c.id) AS turn_count
"""


def key_params(key: ConversationKey) -> tuple[str, str, str, str]:
    return (key.platform, key.workspace, key.channel, key.thread)


def usage_from_row(row: Row) -> Usage:
    return Usage(
        prompt_tokens=row["prompt_tokens"],
        output_tokens=row["output_tokens"],
        thought_tokens=row["thought_tokens"],
        total_tokens=row["total_tokens"],
        prompt_by_modality=json.loads(row["prompt_by_modality"]),
        output_by_modality=json.loads(row["output_by_modality"]),
        images_generated=row["images_generated"],
        cost_usd=row["cost_usd"],
    )


def turn_from_row(row: Row) -> StoredTurn:
    return StoredTurn(
        id=row["id"],
        key=ConversationKey(row["platform"], row["workspace"], row["channel"], row["thread"]),
        parent_id=row["parent_id"],
        user_content=json.loads(row["user_content"]),
        model_content=json.loads(row["model_content"]),
        model=row["model"],
        usage=usage_from_row(row),
        author_id=row["author_id"],
        created_at=row["created_at"],
    )


def conversation_from_row(row: Row) -> ConversationInfo:
    return ConversationInfo(
        key=ConversationKey(row["platform"], row["workspace"], row["channel"], row["thread"]),
        head_turn_id=row["head_turn_id"],
        turn_count=row["turn_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
