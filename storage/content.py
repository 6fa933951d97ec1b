"""Gemini ``Content`` as plain JSON records, with image bytes kept apart as content-hashed blobs.

A record is exactly ``types.Content.model_dump(mode="json", exclude_none=True)`` except that each
``inline_data`` part carries ``{"mime_type": ..., "blob": "<sha256 hex>"}`` instead of base64
``data``. Only ``bot.gemini`` converts records to SDK objects; everything else (core, storage)
sees dicts and bytes, so history is stored without base64 inflation and images are stored once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ContentRecord = dict[str, Any]

# A model record made on the Interactions API also names the interaction Google keeps for it,
# ``{"id": ..., "model": ...}``, beside the content (bot.gemini.steps); never sent as content.
INTERACTION = "interaction"


@dataclass(frozen=True, slots=True)
class Blob:
    """Image bytes with their MIME type, addressed by SHA-256 of the bytes (hashed once)."""

    mime_type: str
    data: bytes
    sha256: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", blob_hash(self.data))


def blob_hash(data: bytes) -> str:
    """The content address of some bytes."""
    return hashlib.sha256(data).hexdigest()


def image_part(blob_sha256: str, mime_type: str) -> dict[str, Any]:
    """A record part that points at a stored image."""
    return {"inline_data": {"mime_type": mime_type, "blob": blob_sha256}}


def user_record(text: str, images: list[tuple[str, str]]) -> ContentRecord:
    """A user turn: images first (Gemini's guidance for editing), then the prompt text.

    ``images`` holds ``(sha256, mime_type)`` pairs.
    """
    parts: list[dict[str, Any]] = [image_part(h, m) for h, m in images]
    if text:
        parts.append({"text": text})
    return {"role": "user", "parts": parts}


def blob_refs(record: ContentRecord) -> Iterator[str]:
    """Hashes of every image a record points at, in order."""
    for part in record.get("parts") or ():
        inline = part.get("inline_data")
        if inline and "blob" in inline:
            yield inline["blob"]


def interaction_id(record: ContentRecord | None) -> str | None:
    """The id of the interaction Google keeps for this model record, if it names one."""
    found = (record or {}).get(INTERACTION)
    ident = found.get("id") if isinstance(found, dict) else None
    return ident if isinstance(ident, str) and ident else None


def image_count(record: ContentRecord) -> int:
    """All images a record would send to the model."""
    return sum(1 for _ in blob_refs(record))


def missing_blobs(records: list[ContentRecord], have: Mapping[str, bytes]) -> set[str]:
    """Blob hashes the records need that ``have`` lacks."""
    return {h for r in records for h in blob_refs(r) if h not in have}
