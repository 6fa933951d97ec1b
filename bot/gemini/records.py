"""Stored content records to SDK objects and back, visible parts, and usage by modality."""

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from google.genai import types

from bot.vocabulary import ImagePart, ReplyPart, TextPart, Usage

# INTERACTION: a model record made on the Interactions path names the interaction that made it
# (bot.gemini.steps); it is not content and is never sent as such.
from storage.content import INTERACTION, Blob, ContentRecord

# ---------------------------------------------------------------------------------------------
# Records <-> SDK objects


class RecordError(ValueError):
    """A content record cannot be sent: a caller bug or history the SDK cannot load."""


class MissingBlobError(RecordError):
    """A record points at an image whose bytes the request did not carry."""


def record_to_content(record: ContentRecord, blobs: Mapping[str, bytes]) -> types.Content:
    """A stored record as an SDK ``Content``, with image bytes put back in place.

    Image bytes are handed to the SDK as ``bytes`` (no base64 round trip); every other field,
    including ``thought_signature`` as base64 text, is validated exactly as stored.
    """
    parts = []
    for part in record.get("parts") or ():
        inline = part.get("inline_data")
        if isinstance(inline, dict) and "blob" in inline:
            digest = inline["blob"]
            try:
                data = blobs[digest]
            except KeyError:
                raise MissingBlobError(f"no bytes for blob {digest}") from None
            meta = {k: v for k, v in inline.items() if k != "blob"}
            meta["data"] = data
            part = {**part, "inline_data": meta}
        parts.append(part)
    try:
        kept = {k: v for k, v in record.items() if k != INTERACTION}
        return types.Content.model_validate({**kept, "parts": parts})
    except pydantic.ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
        raise RecordError(f"stored content does not load: {', '.join(fields)}") from None


def content_to_record(content: types.Content | None) -> tuple[ContentRecord, list[Blob]]:
    """An SDK ``Content`` as a record plus the distinct image blobs it references, in order.

    Every field except image bytes is ``model_dump(mode="json", exclude_none=True)``, so thought
    flags and signatures survive byte-for-byte; image bytes are hashed, never base64-encoded.
    """
    if content is None:
        return {"role": "model", "parts": []}, []
    record: ContentRecord = content.model_dump(mode="json", exclude_none=True, exclude={"parts"})
    record.setdefault("role", "model")
    parts: list[dict[str, Any]] = []
    found: list[Blob] = []
    seen: set[str] = set()
    for part in content.parts or ():
        inline = part.inline_data
        if inline is not None and inline.data is not None:
            dumped = part.model_dump(mode="json", exclude_none=True, exclude={"inline_data"})
            meta = inline.model_dump(mode="json", exclude_none=True, exclude={"data"})
            meta.setdefault("mime_type", "image/png")
            blob = Blob(meta["mime_type"], inline.data)
            meta["blob"] = blob.sha256
            dumped["inline_data"] = meta
            if blob.sha256 not in seen:
                seen.add(blob.sha256)
                found.append(blob)
        else:
            dumped = part.model_dump(mode="json", exclude_none=True)
        parts.append(dumped)
    record["parts"] = parts
    return record, found


_EXTENSIONS = {"image/jpeg": "jpeg", "image/jpg": "jpeg", "image/svg+xml": "svg"}


def _extension(mime_type: str) -> str:
    if mime_type in _EXTENSIONS:
        return _EXTENSIONS[mime_type]
    subtype = mime_type.partition("/")[2].split(";")[0].split("+")[0].strip()
    return re.sub(r"[^a-z0-9]", "", subtype.lower()) or "bin"


def visible_parts(content: types.Content | None) -> tuple[ReplyPart, ...]:
    """What users see, in the model's order; thought parts are skipped."""
    out: list[ReplyPart] = []
    n_images = 0
    for part in (content.parts or ()) if content is not None else ():
        if part.thought:
            continue
        inline = part.inline_data
        if inline is not None and inline.data:
            n_images += 1
            mime = inline.mime_type or "image/png"
            out.append(ImagePart(inline.data, mime, f"image-{n_images}.{_extension(mime)}"))
        elif part.text:
            out.append(TextPart(part.text))
    return tuple(out)


def enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _by_modality(details: Iterable[types.ModalityTokenCount] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in details or ():
        name = enum_name(item.modality) or "UNSPECIFIED"
        out[name] = out.get(name, 0) + (item.token_count or 0)
    return out


def usage_from(meta: types.GenerateContentResponseUsageMetadata | None, images: int) -> Usage:
    if meta is None:
        return Usage(images_generated=images)
    return Usage(
        prompt_tokens=meta.prompt_token_count or 0,
        output_tokens=meta.candidates_token_count or 0,
        thought_tokens=meta.thoughts_token_count or 0,
        total_tokens=meta.total_token_count or 0,
        prompt_by_modality=_by_modality(meta.prompt_tokens_details),
        output_by_modality=_by_modality(meta.candidates_tokens_details),
        images_generated=images,
    )
