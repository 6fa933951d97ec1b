"""Pinned references in a turn (``--ref name``): which pins, checked against the model's limit, and
where they go in the request (each introduced by its name, just before the prompt text)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.gemini.capabilities import ModelCapabilities
from bot.text import pin_words
from bot.vocabulary import ConversationKey
from storage.content import ContentRecord, image_part
from storage.protocol import Store


@dataclass(frozen=True, slots=True)
class Reference:
    """A pinned image a turn sends, by the name it was asked for."""

    name: str
    sha256: str
    mime_type: str


async def resolve(
    store: Store, key: ConversationKey, names: Sequence[str], attached: int, caps: ModelCapabilities
) -> tuple[Reference, ...] | str:
    """The pins called ``names`` in ``key``'s workspace, in the order written, or the one sentence
    that refuses the turn: unknown names, or more images with the attachments than ``caps`` takes
    (images the conversation's history carries are bounded by the context budget, as always)."""
    if not names:
        return ()
    if len(names) + attached > caps.max_input_images:
        return pin_words.too_many_references(len(names), attached, caps.max_input_images, caps.model)
    found = {pin.name: pin for pin in await store.pins(key.platform, key.workspace, names)}
    unknown = [name for name in names if name not in found]
    if unknown:
        return pin_words.unknown_refs(unknown)
    return tuple(Reference(name, found[name].sha256, found[name].mime_type) for name in names)


def with_references(record: ContentRecord, references: Sequence[Reference]) -> ContentRecord:
    """A user record with each reference's label and image inserted before its prompt text."""
    if not references:
        return record
    parts = list(record.get("parts") or ())
    at = len(parts) - 1 if parts and "text" in parts[-1] else len(parts)
    labelled = [
        part
        for ref in references
        for part in ({"text": pin_words.reference_label(ref.name)}, image_part(ref.sha256, ref.mime_type))
    ]
    return {**record, "parts": [*parts[:at], *labelled, *parts[at:]]}


def gone(references: Sequence[Reference], loaded: Mapping[str, bytes]) -> str | None:
    """The sentence for a reference unpinned (and its image deleted) while the turn waited."""
    missing = [ref.name for ref in references if ref.sha256 not in loaded]
    return pin_words.reference_gone(missing[0]) if missing else None
