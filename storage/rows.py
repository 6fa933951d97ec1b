"""Row shapes both SQL backends share: the columns they select and how a row becomes a value."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage.protocol import ConversationInfo, StoredTurn
from storage.records import ConversationKey, Usage
from storage.schema import CONVERSATIONS, TURNS

# Rows are read by column name: sqlite3.Row and asyncpg.Record both allow it.
Row = Mapping[str, Any]

_KEY_COLUMNS = "c.platform, c.workspace, c.channel, c.thread"
# A turn with its conversation's key (turns AS t JOIN conversations AS c).
TURN_COLUMNS = ", ".join([*(f"t.{name}" for name in TURNS.names if name != "conversation_id"), _KEY_COLUMNS])
# A conversation with its number of turns (conversations AS c).
CONVERSATION_COLUMNS = ", ".join(
    [
        *(f"c.{name}" for name in CONVERSATIONS.names if name != "id"),
        "(SELECT COUNT(*) FROM turns AS t WHERE t.conversation_id = c.id) AS turn_count",
    ]
)


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
        turn_count=int(row["turn_count"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
