"""The Interactions REST protocol of the fake Gemini (``POST /v1beta/interactions``, ``DELETE
/v1beta/interactions/{id}``), as google-genai 3.3's ``client.aio.interactions`` sends it.

A create's ``input`` (steps: ``user_input``, ``thought``, ``model_output``) is read into the
generateContent shape the fake's scripted behaviours already answer (``contents``, with the
stored history of ``previous_interaction_id`` in front), and the behaviour's answer is written
back as an ``Interaction``: ``thought`` steps (summary, signature) and ``model_output`` steps,
``usage`` with totals and per-modality tokens, and for a refusal ``status`` with ``errors``
whose code ends in generateContent's reason (``prompt_blocked/SAFETY``,
``finish_reason/IMAGE_SAFETY``). Stored interactions belong to the key that made them: another
key, or an id never made or deleted, is answered 404 NOT_FOUND.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

# -- steps -> generateContent contents --------------------------------------------------------


def _gc_part(item: dict[str, Any], thought: bool = False) -> dict[str, Any] | None:
    if item.get("type") == "text":
        part: dict[str, Any] = {"text": item.get("text", "")}
    elif item.get("type") == "image":
        part = {"inlineData": {"mimeType": item.get("mime_type", "image/png"), "data": item["data"]}}
    else:
        return None
    if thought:
        part["thought"] = True
    return part


def steps_to_contents(steps: Any) -> list[dict[str, Any]]:
    """An ``input`` (a string, a content list or steps) as generateContent ``contents``."""
    if isinstance(steps, str):
        return [{"role": "user", "parts": [{"text": steps}]}]
    if not isinstance(steps, list):
        raise ValueError("input must be a string or a list")
    if steps and all(s.get("type") in ("text", "image") for s in steps):
        steps = [{"type": "user_input", "content": steps}]
    contents: list[dict[str, Any]] = []
    pending: str | None = None
    for step in steps:
        kind = step.get("type")
        if kind == "user_input":
            parts = [p for item in step.get("content") or () if (p := _gc_part(item))]
            contents.append({"role": "user", "parts": parts})
            continue
        if kind not in ("thought", "model_output"):
            raise ValueError(f"unsupported step type {kind!r}")
        if not contents or contents[-1]["role"] != "model":
            contents.append({"role": "model", "parts": []})
        model_parts = contents[-1]["parts"]
        if kind == "thought":
            model_parts += [p for item in step.get("summary") or () if (p := _gc_part(item, True))]
            pending = step.get("signature") or pending
        else:
            for item in step.get("content") or ():
                part = _gc_part(item)
                if part is not None:
                    if pending:
                        part["thoughtSignature"], pending = pending, None
                    model_parts.append(part)
    return contents


def _formats(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = body.get("response_format") or []
    return [f for f in (found if isinstance(found, list) else [found]) if isinstance(f, dict)]


def interaction_config(body: dict[str, Any]) -> dict[str, Any]:
    """The create's settings as a generateContent ``generationConfig``: ``response_format``
    (a format or a list: ``{"type": "text"}``, ``{"type": "image", "aspect_ratio", "image_size"}``)
    gives the modalities and the image settings; the deprecated top-level
    ``response_modalities`` and ``generation_config.image_config`` are read when it is absent."""
    generation = body.get("generation_config") or {}
    formats = _formats(body)
    image = next((f for f in formats if f.get("type") == "image"), None)
    if not formats:
        image = generation.get("image_config") or {}
    out: dict[str, Any] = {}
    if image and set(image) - {"type"}:
        out["imageConfig"] = {
            k2: image[k1]
            for k1, k2 in (("aspect_ratio", "aspectRatio"), ("image_size", "imageSize"))
            if k1 in image
        }
    if generation.get("thinking_level"):
        out["thinkingConfig"] = {"thinkingLevel": str(generation["thinking_level"]).upper()}
    modalities = [f.get("type") for f in formats] if formats else body.get("response_modalities")
    if modalities:
        out["responseModalities"] = [str(m).upper() for m in modalities]
    return out


# -- a generateContent answer -> an Interaction -----------------------------------------------


def _steps_of(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    thought: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    for part in parts:
        if "inlineData" in part:
            item = {
                "type": "image",
                "data": part["inlineData"]["data"],
                "mime_type": part["inlineData"]["mimeType"],
            }
        else:
            item = {"type": "text", "text": part.get("text", "")}
        if part.get("thought"):
            output = None
            if thought is None:
                thought = {"type": "thought", "summary": []}
                steps.append(thought)
            thought["summary"].append(item)
            continue
        if part.get("thoughtSignature"):
            if thought is None:
                steps.append({"type": "thought", "signature": part["thoughtSignature"]})
            else:
                thought["signature"] = part["thoughtSignature"]
            output = None
        thought = None
        if output is None:
            output = {"type": "model_output", "content": []}
            steps.append(output)
        output["content"].append(item)
    return steps


def _modalities(details: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [{"modality": str(d["modality"]).lower(), "tokens": d.get("tokenCount", 0)} for d in details or ()]


def interaction_usage(meta: dict[str, Any] | None) -> dict[str, Any]:
    meta = meta or {}
    usage = {
        "total_input_tokens": meta.get("promptTokenCount", 0),
        "total_output_tokens": meta.get("candidatesTokenCount", 0),
        "total_thought_tokens": meta.get("thoughtsTokenCount", 0),
        "total_tokens": meta.get("totalTokenCount", 0),
        "input_tokens_by_modality": _modalities(meta.get("promptTokensDetails")),
        "output_tokens_by_modality": _modalities(meta.get("candidatesTokensDetails")),
    }
    return {k: v for k, v in usage.items() if v not in ([], None)}


def new_id() -> str:
    return "v1_" + os.urandom(12).hex()


def interaction_from(
    answer: dict[str, Any], model: str, previous: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``Interaction`` for a generateContent answer, and the model content it stored."""
    body: dict[str, Any] = {
        "id": new_id(),
        "model": model,
        "status": "completed",
        "created": "2026-07-01T12:00:00Z",
        "updated": "2026-07-01T12:00:05Z",
        "usage": interaction_usage(answer.get("usageMetadata")),
        "steps": [],
    }
    if previous:
        body["previous_interaction_id"] = previous
    candidates = answer.get("candidates") or []
    if not candidates:
        reason = (answer.get("promptFeedback") or {}).get("blockReason") or "OTHER"
        body.update(
            status="failed",
            errors=[{"code": f"prompt_blocked/{reason}", "message": "The prompt was blocked."}],
        )
        return body, None
    candidate = candidates[0]
    content = candidate.get("content") or {"role": "model", "parts": []}
    body["steps"] = _steps_of(content.get("parts") or [])
    finish = candidate.get("finishReason") or "STOP"
    if finish != "STOP":
        body["status"] = "incomplete"
        body["errors"] = [{"code": f"finish_reason/{finish}", "message": f"The model stopped: {finish}."}]
    return body, {"role": "model", "parts": content.get("parts") or []}


@dataclass
class StoredInteraction:
    key: str
    model: str
    contents: list[dict[str, Any]]  # the whole history up to and including this answer


@dataclass
class InteractionStore:
    """What the fake keeps of interactions (store=true, the API's default)."""

    stored: dict[str, StoredInteraction] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    # Every DELETE asked for (answered or not), and an HTTP status to answer each with instead.
    delete_requests: list[str] = field(default_factory=list)
    delete_status: int | None = None

    def history(self, ident: str, key: str | None) -> StoredInteraction | None:
        found = self.stored.get(ident)
        return found if found is not None and found.key == key else None

    def delete(self, ident: str, key: str | None) -> bool:
        if self.history(ident, key) is None:
            return False
        del self.stored[ident]
        self.deleted.append(ident)
        return True
