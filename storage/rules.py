"""Rules every store backend shares: how a turn is checked and shaped, and settings precedence."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.content import Blob, blob_refs
from storage.errors import HeadMoved
from storage.protocol import NewTurn, StoredTurn
from storage.records import ConversationKey, SettingScope, Usage


def dumps(value: Any) -> str:
    """The one JSON form records are stored in (compact; parsed back to equal values)."""
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PreparedTurn:
    """A turn serialised and ready to write: records as JSON text, the blob hashes it
    references (in order, once each) and the blobs the caller offered, by hash."""

    key: ConversationKey
    parent_id: int | None
    user_json: str
    model_json: str
    model: str
    author_id: str
    usage: Usage
    prompt_modality: str
    output_modality: str
    refs: tuple[str, ...]
    offered: Mapping[str, Blob]

    def usage_values(self) -> tuple[int, int, int, int, int, str, str]:
        """prompt, output, thought, total tokens, images, and both by-modality JSON texts."""
        u = self.usage
        return (
            u.prompt_tokens,
            u.output_tokens,
            u.thought_tokens,
            u.total_tokens,
            u.images_generated,
            self.prompt_modality,
            self.output_modality,
        )

    def unoffered(self) -> list[str]:
        """Referenced hashes the caller did not pass: they must already be stored."""
        return sorted(set(self.refs) - self.offered.keys())

    def new_blobs(self) -> list[tuple[str, str, int, bytes]]:
        """(sha256, mime type, size, bytes) of every referenced blob that was passed; blobs
        passed but not referenced are never kept."""
        return [
            (h, blob.mime_type, len(blob.data), blob.data)
            for h in self.refs
            if (blob := self.offered.get(h)) is not None
        ]

    def stored(self, turn_id: int, created_at: float) -> StoredTurn:
        """The turn as every read returns it (parsed from the stored text, never aliased)."""
        return StoredTurn(
            id=turn_id,
            key=self.key,
            parent_id=self.parent_id,
            user_content=json.loads(self.user_json),
            model_content=json.loads(self.model_json),
            model=self.model,
            usage=Usage(
                prompt_tokens=self.usage.prompt_tokens,
                output_tokens=self.usage.output_tokens,
                thought_tokens=self.usage.thought_tokens,
                total_tokens=self.usage.total_tokens,
                prompt_by_modality=json.loads(self.prompt_modality),
                output_by_modality=json.loads(self.output_modality),
                images_generated=self.usage.images_generated,
                cost_usd=self.usage.cost_usd,
            ),
            author_id=self.author_id,
            created_at=created_at,
        )


def prepare_turn(turn: NewTurn) -> PreparedTurn:
    """Serialise a turn before any transaction starts (a record that is not plain JSON is a
    TypeError here). No hashing: a Blob hashed its bytes once, when it was made."""
    offered: dict[str, Blob] = {}
    for blob in turn.blobs:
        offered.setdefault(blob.sha256, blob)
    refs = [*blob_refs(turn.user_content), *blob_refs(turn.model_content)]
    return PreparedTurn(
        key=turn.key,
        parent_id=turn.parent_id,
        user_json=dumps(turn.user_content),
        model_json=dumps(turn.model_content),
        model=turn.model,
        author_id=turn.author_id,
        usage=turn.usage,
        prompt_modality=dumps(turn.usage.prompt_by_modality),
        output_modality=dumps(turn.usage.output_by_modality),
        refs=tuple(dict.fromkeys(refs)),
        offered=offered,
    )


def require_blobs(prepared: PreparedTurn, stored: Collection[str]) -> None:
    """Every referenced blob was passed or is already stored (``stored``), or ValueError."""
    missing = [h for h in prepared.unoffered() if h not in stored]
    if missing:
        raise ValueError("Blobs referenced by the turn were neither passed nor stored: " + ", ".join(missing))


def require_head(expected: int | None, head: int | None) -> None:
    """The turn was computed against the conversation's current head, or HeadMoved."""
    if head != expected:
        raise HeadMoved(expected, head)


def require_parent(prepared: PreparedTurn, parent_conversation: int | None, conversation_id: int) -> None:
    """The parent (if any) is a turn of this conversation (``parent_conversation`` is the
    conversation the parent row belongs to, None if there is no such turn), or ValueError."""
    if prepared.parent_id is not None and parent_conversation != conversation_id:
        raise ValueError(f"Parent turn {prepared.parent_id} is not part of conversation {prepared.key}.")


def setting_scopes(key: ConversationKey) -> tuple[SettingScope, ...]:
    """The scopes that apply to a conversation, widest first."""
    return (SettingScope.everywhere(), SettingScope.for_channel(key), SettingScope.for_thread(key))


def effective_settings(key: ConversationKey, rows: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Thread over channel over global: narrower scopes overwrite wider ones."""
    merged: dict[str, str] = {}
    for scope in setting_scopes(key):
        merged.update(rows.get(scope.as_text(), {}))
    return merged


class SettingsPrecedence:
    """Gives a backend ``settings(key)`` from its raw ``scoped_settings``."""

    async def scoped_settings(self, scopes: Sequence[SettingScope]) -> Mapping[str, Mapping[str, str]]:
        raise NotImplementedError

    async def settings(self, key: ConversationKey) -> dict[str, str]:
        return effective_settings(key, await self.scoped_settings(setting_scopes(key)))
