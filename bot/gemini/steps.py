"""Stored content records as Interactions API steps, and an interaction's steps back as SDK ``Content``.

The local history stays in generateContent's shape (``storage.content``), so either API can
continue any conversation. A model record's thought parts become a ``thought`` step (its
``summary``), each visible part with a ``thought_signature`` opens a new ``model_output`` step
preceded by a ``thought`` step carrying that signature; reading an answer back, a thought
step's signature goes on the first part of the output that follows it (where generateContent
puts it), or on its own last summary part when no output follows.

A model record produced on the Interactions path also carries the id of the interaction that
made it, under :data:`INTERACTION` (``{"id": ..., "model": ...}``); it is not part of the
content and is never sent as such.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.genai import types

from bot.gemini.records import MissingBlobError, RecordError
from storage.content import INTERACTION, ContentRecord, interaction_id


def interaction_of(record: ContentRecord | None, model: str) -> str | None:
    """The id of the interaction that made ``record``, when it was made by ``model``."""
    found = (record or {}).get(INTERACTION)
    if not isinstance(found, dict) or found.get("model") != model:
        return None
    ident = found.get("id")
    return ident if isinstance(ident, str) and ident else None


def interaction_ids(records: Iterable[ContentRecord | None]) -> list[str]:
    """The ids of the interactions that made these records (any model's), in order."""
    return [ident for r in records if (ident := interaction_id(r)) is not None]


def with_interaction(record: ContentRecord, ident: str | None, model: str) -> ContentRecord:
    """``record`` remembering the interaction that made it (unchanged without an id)."""
    return {**record, INTERACTION: {"id": ident, "model": model}} if ident else record


def without_interaction(record: ContentRecord) -> ContentRecord:
    return {k: v for k, v in record.items() if k != INTERACTION}


# -- records -> steps ---------------------------------------------------------------------------


def _image_bytes(inline: Mapping[str, Any], blobs: Mapping[str, bytes]) -> bytes | str:
    """An image part's bytes (base64 text when stored inline), or why it cannot be sent."""
    if "blob" in inline:
        try:
            return blobs[inline["blob"]]
        except KeyError:
            raise MissingBlobError(f"no bytes for blob {inline['blob']}") from None
    if isinstance(inline.get("data"), str):
        return str(inline["data"])
    raise RecordError("stored content does not load: parts.inline_data")


def check_records(records: Iterable[ContentRecord], blobs: Mapping[str, bytes]) -> None:
    """Raise now, before any call, what building these records' steps would raise later on the
    SDK's loop: a blob the request lacks, an image part without bytes."""
    for record in records:
        for part in record.get("parts") or ():
            if isinstance(inline := part.get("inline_data"), dict):
                _image_bytes(inline, blobs)


def _content(part: Mapping[str, Any], blobs: Mapping[str, bytes]) -> dict[str, Any] | None:
    inline = part.get("inline_data")
    if isinstance(inline, dict):
        data = _image_bytes(inline, blobs)
        text = data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
        return {"type": "image", "data": text, "mime_type": inline.get("mime_type") or "image/png"}
    if isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    return None  # a kind of part image turns do not hold (function calls, files)


def record_steps(record: ContentRecord, blobs: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """One stored record as the steps an interaction's ``input`` takes."""
    parts = record.get("parts") or ()
    if record.get("role", "user") != "model":
        given = [c for p in parts if (c := _content(p, blobs)) is not None]
        return [{"type": "user_input", "content": given}]
    steps: list[dict[str, Any]] = []
    thought: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    for part in parts:
        content = _content(part, blobs)
        signature = part.get("thought_signature")
        if part.get("thought"):
            output = None
            if thought is None:
                thought = {"type": "thought", "summary": []}
                steps.append(thought)
            if content is not None:
                thought["summary"].append(content)
            if signature:
                thought["signature"], thought = signature, None
            continue
        if signature:
            if thought is None:
                steps.append({"type": "thought", "signature": signature})
            else:
                thought["signature"] = signature
            output = None
        thought = None
        if content is None:
            continue
        if output is None:
            output = {"type": "model_output", "content": []}
            steps.append(output)
        output["content"].append(content)
    return steps


def history_steps(history: Sequence[ContentRecord], blobs: Mapping[str, bytes]) -> list[dict[str, Any]]:
    return [step for record in history for step in record_steps(record, blobs)]


# -- an interaction's steps -> Content ------------------------------------------------------------


def plain(value: Any) -> Any:
    """An SDK model (or a structure holding some) as plain JSON-like data."""
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json", exclude_none=True))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _part(item: Mapping[str, Any], thought: bool = False) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "text" and isinstance(item.get("text"), str):
        part: dict[str, Any] = {"text": item["text"]}
    elif kind == "image" and isinstance(item.get("data"), str):
        data = base64.b64decode(item["data"])
        part = {"inline_data": {"data": data, "mime_type": item.get("mime_type") or "image/png"}}
    else:
        return None
    if thought:
        part["thought"] = True
    return part


def answer_content(steps: list[dict[str, Any]]) -> types.Content:
    """The model's steps of one interaction as one model ``Content``, in generateContent's shape."""
    parts: list[dict[str, Any]] = []
    pending: str | None = None
    for step in steps:
        kind = step.get("type")
        if kind == "thought":
            summary = [p for item in step.get("summary") or () if (p := _part(item, thought=True))]
            parts += summary
            if step.get("signature"):
                pending = str(step["signature"])
        elif kind == "model_output":
            for item in step.get("content") or ():
                part = _part(item)
                if part is None:
                    continue
                if pending is not None:
                    part["thought_signature"], pending = pending, None
                parts.append(part)
    if pending is not None and parts:
        parts[-1]["thought_signature"] = pending
    return types.Content.model_validate({"role": "model", "parts": parts})


def block_reason(interaction: Mapping[str, Any]) -> tuple[str | None, bool]:
    """Why an interaction stopped without an answer, as generateContent names it (``SAFETY``,
    ``IMAGE_SAFETY``, ``NO_IMAGE``...), and whether the prompt itself was refused."""
    codes: list[str] = []
    for error in interaction.get("errors") or ():
        codes.append(str(error.get("code") or ""))
    for step in interaction.get("steps") or ():
        status = step.get("error") if step.get("type") == "model_output" else None
        if isinstance(status, dict):
            codes += [str(d.get("reason") or "") for d in status.get("details") or () if isinstance(d, dict)]
    for code in filter(None, codes):
        word = code.replace(":", "/").replace("#", "/").rstrip("/").rsplit("/", 1)[-1].upper()
        return word or None, "prompt" in code.lower()
    return None, False
