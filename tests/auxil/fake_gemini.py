"""A fake Gemini REST API (``POST /v1beta/models/{model}:generateContent``) for the real SDK.

Point ``google-genai`` at it with ``HttpOptions(base_url=fake.base_url)`` (or the
``GOOGLE_GEMINI_BASE_URL`` environment variable) and it answers like the real image models:
a thought part, visible text and a generated PNG, with thought signatures and usage metadata.
Script unusual answers with ``fake.enqueue(...)``; each scripted behaviour answers one request,
in order, and the default answer resumes when the queue is empty.

In-process::

    async with FakeGemini() as fake:
        fake.enqueue(rate_limited("2s"), image(n_images=2))
        ... HttpOptions(base_url=fake.base_url) ...
        assert fake.requests[0].aspect_ratio == "16:9"

As a process (prints ``READY http://127.0.0.1:PORT`` once listening, serves until SIGTERM)::

    python -m tests.auxil.fake_gemini --port 0 [--latency 0.1] [--noisy] [--script "error:503"]

A running process also takes scripts at ``POST /_fake/script`` (plain-text body in the same
``--script`` syntax) and lists what it saw at ``GET /_fake/requests``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import functools
import hashlib
import io
import json
import os
import random
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, ImageChops

from tests.auxil import fake_interactions as fi
from tests.auxil.local_server import LocalServer

BAD_KEY = "bad-key"
DEFAULT_MODELS: frozenset[str] = frozenset(
    name
    for base in ("gemini-2.5-flash-image", "gemini-3-pro-image", "gemini-3.1-flash-image")
    for name in (base, base + "-preview")
)
IMAGE_TOKENS = 1290  # output tokens billed per generated image (2.5 flash image)
# Output tokens per image of the Gemini 3 image models, by requested size (1K when unset).
SIZED_IMAGE_TOKENS: dict[str, dict[str, int]] = {
    "gemini-3.1-flash-image": {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    "gemini-3-pro-image": {"1K": 1120, "2K": 1120, "4K": 2000},
}
INPUT_IMAGE_TOKENS = 258  # prompt tokens per input image
# Leading bytes whose base64 differs between the standard and the URL-safe alphabet ("+/" vs
# "-_"), so every signature exercises alphabet handling on both sides.
_SIGNATURE_PREFIX = b"\xfb\xff\xbf"


# Listed by models.list besides the image models: ids and supportedGenerationMethods. The
# Imagen id contains "image" but only offers predict.
OTHER_MODELS: tuple[tuple[str, list[str]], ...] = (
    ("gemini-2.5-flash", ["generateContent", "countTokens", "createCachedContent"]),
    ("gemini-embedding-001", ["embedContent", "countTextTokens", "countTokens"]),
    ("imagen-4.0-generate-001", ["predict"]),
)


def model_resource(model_id: str, methods: list[str]) -> dict[str, Any]:
    """A ``Model`` resource as ``GET /v1beta/models/{model}`` returns it."""
    return {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": model_id.replace("-", " ").title(),
        "description": f"Fake {model_id}",
        "inputTokenLimit": 65536,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": methods,
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": model_id.startswith("gemini-3"),
    }


# ---------------------------------------------------------------------------------------------
# Small helpers


def b64decode_any(text: str) -> bytes:
    """Decode base64 in either alphabet, with or without padding."""
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    return base64.b64decode(cleaned, validate=True)


def described(parts: list[dict[str, object]]) -> list[str]:
    """A request's parts as text: each text as it is, each image as ``image:`` and the first 12
    hex digits of its SHA-256 (which image went to Gemini, and in which place)."""
    out = []
    for part in parts:
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict):
            out.append("image:" + hashlib.sha256(b64decode_any(str(inline["data"]))).hexdigest()[:12])
        else:
            out.append(str(part["text"]))
    return out


def _pick(mapping: Any, camel: str, snake: str, default: Any = None) -> Any:
    if not isinstance(mapping, dict):
        return default
    if camel in mapping:
        return mapping[camel]
    return mapping.get(snake, default)


def colour_for(prompt: str, index: int = 0) -> tuple[int, int, int]:
    """The solid colour the fake paints for ``prompt`` (image ``index`` of the answer)."""
    digest = hashlib.sha256(f"{prompt}#{index}".encode()).digest()
    return digest[0], digest[1], digest[2]


def size_for(aspect_ratio: str | None, long_side: int) -> tuple[int, int]:
    """Pixel size for an aspect ratio such as ``16:9`` with the given long side."""
    try:
        w_text, h_text = (aspect_ratio or "1:1").split(":")
        w, h = float(w_text), float(h_text)
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        w, h = 1.0, 1.0
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side


@functools.lru_cache(maxsize=64)
def render_png(colour: tuple[int, int, int], size: tuple[int, int], noisy: bool = False) -> bytes:
    """A PNG of one colour; ``noisy`` adds seeded noise so 1024x1024 weighs about 1.5 MB."""
    img = Image.new("RGB", size, colour)
    if noisy:
        seed = int.from_bytes(bytes(colour), "big") ^ (size[0] << 16) ^ size[1]
        raw = random.Random(seed).randbytes(size[0] * size[1] * 3)
        raw = raw.translate(bytes(b & 0x07 for b in range(256)))
        img = ImageChops.add(img, Image.frombytes("RGB", size, raw))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=6 if noisy else 1)
    return buf.getvalue()


@functools.lru_cache(maxsize=64)
def render_png_b64(colour: tuple[int, int, int], size: tuple[int, int], noisy: bool = False) -> str:
    """``render_png`` as base64 text, cached too, so a busy fake does not re-encode megabytes."""
    return base64.b64encode(render_png(colour, size, noisy)).decode()


@functools.lru_cache(maxsize=64)
def _ascii(text: str) -> bytes:
    return text.encode("ascii")


# Stands in for large base64 strings while the rest of a body goes through json.dumps.
_SPLICE_MARK = f"fake-gemini-inline-{os.urandom(8).hex()}-"
_SPLICE_MIN = 4096


def encode_json(payload: Any) -> bytes:
    """``json.dumps(payload).encode()``, with large ``inlineData.data`` strings spliced in as
    they are: base64 needs no JSON escaping, and scanning and re-encoding megabytes per answer
    made the fake, not the bot, the bottleneck of load benchmarks on a small machine."""
    big: list[str] = []

    def strip(value: Any, inline: bool = False) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if inline and k == "data" and isinstance(v, str) and len(v) >= _SPLICE_MIN:
                    big.append(v)
                    out[k] = f"{_SPLICE_MARK}{len(big) - 1}"
                else:
                    out[k] = strip(v, k in ("inlineData", "inline_data"))
            return out
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(payload))
    if not big:
        return text.encode()
    pieces: list[bytes] = []
    rest = text
    for index, data in enumerate(big):
        before, _, rest = rest.partition(f"{_SPLICE_MARK}{index}")
        pieces += [before.encode(), _ascii(data)]
    pieces.append(rest.encode())
    return b"".join(pieces)


def _model_tag(model: str) -> bytes:
    return hashlib.sha256(model.encode()).digest()[:8]


def new_signature(model: str = "") -> bytes:
    """Random thought-signature bytes (the real ones are opaque), marked with the model that
    made them: a signature is only valid for that model."""
    return _SIGNATURE_PREFIX + _model_tag(model) + os.urandom(37)


def signature_problem(rec: RecordedRequest) -> str | None:
    """What the API says about the request's model turns for a Gemini 3 model: the first visible
    part and every visible image of each model turn must carry a signature that model made."""
    for position, content in enumerate(rec.contents):
        if content.get("role") != "model":
            continue
        visible = [(i, p) for i, p in enumerate(content.get("parts") or ()) if not p.get("thought")]
        for rank, (index, part) in enumerate(visible):
            image = _pick(part, "inlineData", "inline_data") is not None
            if rank != 0 and not image:
                continue
            signature = _pick(part, "thoughtSignature", "thought_signature")
            if not signature:
                kind = "Image part" if image else "Part"
                return (
                    f"{kind} is missing a thought_signature in content position {position + 1}, "
                    f"part position {index + 1}."
                )
            try:
                raw = b64decode_any(signature)
            except (binascii.Error, ValueError):
                raw = b""
            if not raw.startswith(_SIGNATURE_PREFIX + _model_tag(rec.model)):
                where = f"content position {position + 1}, part position {index + 1}"
                return f"Corrupted thought signature in {where}."
    return None


# ---------------------------------------------------------------------------------------------
# What the fake saw


@dataclass(frozen=True, slots=True)
class InlineImage:
    mime_type: str
    data: bytes


@dataclass
class RecordedRequest:
    """One request as the fake received it, plus what it answered."""

    model: str
    method: str
    version: str
    body: Any
    headers: dict[str, str]
    # Decoded inline images, one list per entry of ``contents``.
    images: list[list[InlineImage]] = field(default_factory=list)
    status: int | None = None
    response: Any = None
    behaviour: str = "default"
    # Size of the HTTP body the client sent, and the server's own time on the request (from
    # the handler starting to its response being ready, including ``latency_s``): benchmarks
    # subtract it from a turn's wall time to get what the bot itself added.
    body_bytes: int = 0
    handling_s: float = 0.0
    # When the request arrived (time.monotonic()): fault tests check retry waits with it.
    received_at: float = field(default_factory=time.monotonic)
    # An Interactions create (``method == "interactions"``): the body as sent; ``body`` then
    # holds it in generateContent's shape, the stored history of ``previous_interaction_id``
    # included, so the scripted behaviours answer it alike.
    wire_body: Any = None
    interaction: Any = None  # the Interaction answered

    @property
    def previous_interaction_id(self) -> str | None:
        return (self.wire_body or {}).get("previous_interaction_id")

    @property
    def sent_images(self) -> int:
        """Images this request itself carried (on the Interactions path, the new ones only)."""
        if self.wire_body is None:
            return len(self.all_images)
        contents = fi.steps_to_contents(self.wire_body.get("input") or [])
        return sum(1 for c in contents for p in c["parts"] if "inlineData" in p)

    @property
    def api_key(self) -> str | None:
        return self.headers.get("x-goog-api-key")

    @property
    def contents(self) -> list[dict[str, Any]]:
        contents = _pick(self.body, "contents", "contents", [])
        return contents if isinstance(contents, list) else []

    @property
    def generation_config(self) -> dict[str, Any]:
        return _pick(self.body, "generationConfig", "generation_config", {}) or {}

    @property
    def image_config(self) -> dict[str, Any]:
        return _pick(self.generation_config, "imageConfig", "image_config", {}) or {}

    @property
    def aspect_ratio(self) -> str | None:
        return _pick(self.image_config, "aspectRatio", "aspect_ratio")

    @property
    def image_size(self) -> str | None:
        return _pick(self.image_config, "imageSize", "image_size")

    @property
    def thinking_level(self) -> str | None:
        """The thinking level asked for (google-genai 3.3 sends ``thinking_level`` inside
        ``thinkingConfig``; the API's JSON parser takes either spelling)."""
        config = _pick(self.generation_config, "thinkingConfig", "thinking_config", {}) or {}
        return _pick(config, "thinkingLevel", "thinking_level")

    @property
    def response_modalities(self) -> list[str] | None:
        return _pick(self.generation_config, "responseModalities", "response_modalities")

    @property
    def prompt(self) -> str:
        """Text of the last user content (what the colour of the answer is derived from)."""
        for content in reversed(self.contents):
            if content.get("role", "user") == "user":
                return " ".join(
                    p["text"] for p in content.get("parts") or () if isinstance(p.get("text"), str)
                )
        return ""

    @property
    def all_images(self) -> list[InlineImage]:
        return [img for per_content in self.images for img in per_content]

    def signatures(self) -> list[bytes]:
        """Decoded thought signatures carried by the request's contents, in order."""
        return [
            b64decode_any(sig)
            for content in self.contents
            for part in content.get("parts") or ()
            if (sig := _pick(part, "thoughtSignature", "thought_signature"))
        ]

    @property
    def response_signatures(self) -> list[bytes]:
        """Decoded thought signatures the fake sent back, in order."""
        candidates = _pick(self.response, "candidates", "candidates", []) or []
        return [
            b64decode_any(part["thoughtSignature"])
            for cand in candidates
            for part in (cand.get("content") or {}).get("parts") or ()
            if part.get("thoughtSignature")
        ]

    @property
    def response_images(self) -> list[InlineImage]:
        """Images (visible and thought) the fake sent back, in order."""
        candidates = _pick(self.response, "candidates", "candidates", []) or []
        return [
            InlineImage(part["inlineData"]["mimeType"], b64decode_any(part["inlineData"]["data"]))
            for cand in candidates
            for part in (cand.get("content") or {}).get("parts") or ()
            if "inlineData" in part
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "status": self.status,
            "behaviour": self.behaviour,
            "aspect_ratio": self.aspect_ratio,
            "image_size": self.image_size,
            "response_modalities": self.response_modalities,
            "contents": len(self.contents),
            "images": [len(per_content) for per_content in self.images],
            "prompt": self.prompt,
            "body_bytes": self.body_bytes,
            "handling_s": self.handling_s,
            "prompt_tokens": self.prompt_tokens,
        }

    @property
    def prompt_tokens(self) -> int | None:
        """The ``promptTokenCount`` the fake billed (258 per input image plus text/4)."""
        usage = _pick(self.response, "usageMetadata", "usage_metadata", {}) or {}
        return _pick(usage, "promptTokenCount", "prompt_token_count")


# ---------------------------------------------------------------------------------------------
# Scripted behaviours

Responder = Callable[["FakeGemini", RecordedRequest, web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the fake answers one request."""

    name: str
    respond: Responder


def _json_response(rec: RecordedRequest, status: int, payload: Any) -> web.Response:
    rec.status = status
    rec.response = payload
    return web.Response(
        body=encode_json(payload), status=status, content_type="application/json", charset="utf-8"
    )


def error_body(
    status: int, code_status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The Google API error envelope."""
    err: dict[str, Any] = {"code": status, "message": message, "status": code_status}
    if details is not None:
        err["details"] = details
    return {"error": err}


def image_tokens(model: str, image_size: str | None) -> int:
    """Output tokens the fake bills per image of ``model`` at ``image_size``."""
    for base, sizes in SIZED_IMAGE_TOKENS.items():
        if model == base or model.startswith(base + "-"):
            return sizes.get(image_size or "1K", sizes["1K"])
    return IMAGE_TOKENS


def _usage(
    rec: RecordedRequest, text_out: int, images_out: int, thoughts: int, details: bool = True
) -> dict[str, Any]:
    prompt_text = sum(
        max(1, len(p["text"]) // 4)
        for content in rec.contents
        for p in content.get("parts") or ()
        if isinstance(p.get("text"), str)
    )
    prompt_images = len(rec.all_images) * INPUT_IMAGE_TOKENS
    prompt_details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_images:
        prompt_details.append({"modality": "IMAGE", "tokenCount": prompt_images})
    cand_details = []
    if text_out:
        cand_details.append({"modality": "TEXT", "tokenCount": text_out})
    per_image = image_tokens(rec.model, rec.image_size)
    if images_out:
        cand_details.append({"modality": "IMAGE", "tokenCount": images_out * per_image})
    candidates = text_out + images_out * per_image
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_text + prompt_images,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt_text + prompt_images + candidates + thoughts,
    }
    if details:
        usage["promptTokensDetails"] = prompt_details
    if cand_details and details:
        usage["candidatesTokensDetails"] = cand_details
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def model_answer(
    fake: FakeGemini,
    rec: RecordedRequest,
    items: Sequence[tuple[str, str | int]],
    *,
    finish_reason: str = "STOP",
    thought: bool = True,
    thought_images: int = 0,
    details: bool = True,
) -> dict[str, Any]:
    """A ``generateContent`` body whose visible parts follow ``items``.

    ``items`` holds ``("text", str)`` and ``("image", index)`` entries. A thought text part
    (and ``thought_images`` interim images, as Gemini 3 image models send up to two) comes
    first; the first visible part and every image carry a fresh thought signature. Thinking
    tokens count 120 for the thought text plus an image's tokens per interim image.
    ``details=False`` leaves the breakdown by modality out of the usage metadata.
    """
    prompt = rec.prompt
    long_side = fake.image_side
    size = size_for(rec.aspect_ratio, long_side)
    parts: list[dict[str, Any]] = []
    thoughts = 0
    if thought:
        parts.append({"text": f"**Planning** an image for: {prompt[:80]}", "thought": True})
        thoughts += 120
    for draft_index in range(thought_images):
        draft = render_png((128, 128, 128 - draft_index), size_for(rec.aspect_ratio, 64))
        parts.append(
            {
                "inlineData": {"mimeType": "image/png", "data": base64.b64encode(draft).decode()},
                "thought": True,
            }
        )
        thoughts += image_tokens(rec.model, rec.image_size)
    text_tokens = 0
    n_images = 0
    for position, (kind, value) in enumerate(items):
        if kind == "text":
            part: dict[str, Any] = {"text": str(value)}
            text_tokens += max(1, len(str(value)) // 4)
        else:
            data = render_png_b64(colour_for(prompt, int(value)), size, fake.noisy)
            part = {"inlineData": {"mimeType": "image/png", "data": data}}
            n_images += 1
        if position == 0 or kind == "image":
            part["thoughtSignature"] = base64.b64encode(new_signature(rec.model)).decode()
        parts.append(part)
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    candidate["finishReason"] = finish_reason
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(rec, text_tokens, n_images, thoughts, details),
        "modelVersion": rec.model,
        "responseId": os.urandom(8).hex(),
    }


def _answer(items_for: Callable[[RecordedRequest], Sequence[tuple[str, str | int]]], **kw: Any):
    async def respond(fake: FakeGemini, rec: RecordedRequest, _req: web.Request) -> web.Response:
        items = items_for(rec)
        body = await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(model_answer, fake, rec, items, **kw)
        )
        return _json_response(rec, 200, body)

    return respond


def image(
    text: str | None = "Here is your image.",
    n_images: int = 1,
    *,
    thought: bool = True,
    thought_image: bool = False,
    finish_reason: str = "STOP",
    thought_images: int = 0,
    details: bool = True,
) -> Behaviour:
    """A normal answer: optional text, then ``n_images`` images (``thought_image`` = one
    interim thought image, ``thought_images`` = that many)."""
    items: list[tuple[str, str | int]] = [("text", text)] if text else []
    items += [("image", i) for i in range(n_images)]
    return Behaviour(
        "image",
        _answer(
            lambda _rec: items,
            thought=thought,
            thought_images=max(thought_images, int(thought_image)),
            finish_reason=finish_reason,
            details=details,
        ),
    )


def numbered(number: int) -> Behaviour:
    """An answer telling which one it is: the text "Answer <number>" and an image of its own
    colour (``image`` draws the same picture for the same prompt)."""
    items: list[tuple[str, str | int]] = [("text", f"Answer {number}"), ("image", number)]
    return Behaviour(f"numbered:{number}", _answer(lambda _rec: items))


def storyboard(steps: int = 3) -> Behaviour:
    """Interleaved text and images: text, image, text, image, ..."""
    items: list[tuple[str, str | int]] = []
    for i in range(steps):
        items += [("text", f"Step {i + 1}."), ("image", i)]
    return Behaviour("storyboard", _answer(lambda _rec: items))


def text_only(text: str = "I would rather describe it: a quiet harbour at dusk.") -> Behaviour:
    """The model answers with text and no image (finish STOP)."""
    return Behaviour("text_only", _answer(lambda _rec: [("text", text)]))


def prompt_blocked(reason: str = "SAFETY") -> Behaviour:
    """HTTP 200 with no candidates and ``promptFeedback.blockReason``."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, _req: web.Request) -> web.Response:
        return _json_response(
            rec,
            200,
            {
                "promptFeedback": {"blockReason": reason},
                "usageMetadata": _usage(rec, 0, 0, 0),
                "modelVersion": rec.model,
            },
        )

    return Behaviour(f"prompt_blocked:{reason}", respond)


def finish(reason: str, text: str | None = None) -> Behaviour:
    """A candidate without image that stopped for ``reason`` (IMAGE_SAFETY, NO_IMAGE, ...)."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, _req: web.Request) -> web.Response:
        candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
        if text:
            candidate["content"] = {"role": "model", "parts": [{"text": text}]}
        body = {
            "candidates": [candidate],
            "usageMetadata": _usage(rec, max(1, len(text) // 4) if text else 0, 0, 0),
            "modelVersion": rec.model,
        }
        return _json_response(rec, 200, body)

    return Behaviour(f"finish:{reason}", respond)


def error(
    status: int,
    code_status: str = "INTERNAL",
    message: str = "An internal error has occurred.",
    details: list[dict[str, Any]] | None = None,
) -> Behaviour:
    """An HTTP error with the Google error envelope."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, _req: web.Request) -> web.Response:
        return _json_response(rec, status, error_body(status, code_status, message, details))

    return Behaviour(f"error:{status}", respond)


_RATE_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)


def quota_details(quota_id: str, retry_delay: str | None) -> list[dict[str, Any]]:
    """``details`` of a real 429: QuotaFailure, Help and RetryInfo."""
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash-image"},
                    "quotaValue": "10",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return details


def rate_limited(retry_delay: str | None = "2s") -> Behaviour:
    """429 RESOURCE_EXHAUSTED for a per-minute quota, with RetryInfo."""
    details = quota_details("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", retry_delay)
    return Behaviour(
        f"rate_limited:{retry_delay}",
        error(429, "RESOURCE_EXHAUSTED", _RATE_MESSAGE, details).respond,
    )


def quota_exhausted(retry_delay: str = "40s") -> Behaviour:
    """429 RESOURCE_EXHAUSTED for the per-day quota (RetryInfo present, retrying is futile)."""
    details = quota_details("GenerateRequestsPerDayPerProjectPerModel-FreeTier", retry_delay)
    return Behaviour("quota_exhausted", error(429, "RESOURCE_EXHAUSTED", _RATE_MESSAGE, details).respond)


def delay(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Hang for ``seconds``, then answer as ``then`` (default: a normal image answer)."""
    after = then or image()

    async def respond(fake: FakeGemini, rec: RecordedRequest, req: web.Request):
        await asyncio.sleep(seconds)
        return await after.respond(fake, rec, req)

    return Behaviour(f"delay:{seconds}", respond)


def reset_connection() -> Behaviour:
    """Close the connection without sending a response."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, req: web.Request):
        rec.status = 0
        transport = req.transport
        if transport is not None:
            transport.abort()
        # Nothing can be written any more; end the handler quietly.
        raise asyncio.CancelledError

    return Behaviour("reset_connection", respond)


def malformed() -> Behaviour:
    """HTTP 200 whose body is not valid JSON."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, _req: web.Request) -> web.Response:
        rec.status = 200
        rec.response = None
        return web.Response(status=200, text='{"candidates": [{"content": ', content_type="application/json")

    return Behaviour("malformed", respond)


def raw(status: int, body: str, content_type: str = "text/plain") -> Behaviour:
    """Any status with any body."""

    async def respond(fake: FakeGemini, rec: RecordedRequest, _req: web.Request) -> web.Response:
        rec.status = status
        return web.Response(status=status, text=body, content_type=content_type)

    return Behaviour(f"raw:{status}", respond)


def parse_script(script: str) -> list[Behaviour]:
    """Behaviours from text such as ``"error:503,rate_limited:2s,image:2,reset"``."""
    out: list[Behaviour] = []
    for token in filter(None, (t.strip() for t in script.split(","))):
        name, *args = token.split(":")
        if name == "image":
            out.append(image(n_images=int(args[0]) if args else 1))
        elif name == "storyboard":
            out.append(storyboard(int(args[0]) if args else 3))
        elif name == "text_only":
            out.append(text_only(*args[:1]))
        elif name == "prompt_blocked":
            out.append(prompt_blocked(*args[:1]))
        elif name == "finish":
            out.append(finish(args[0]))
        elif name == "error":
            status = int(args[0]) if args else 500
            code_status = args[1] if len(args) > 1 else _STATUS_NAMES.get(status, "INTERNAL")
            out.append(error(status, code_status))
        elif name == "rate_limited":
            out.append(rate_limited(args[0] if args else "2s"))
        elif name == "quota_exhausted":
            out.append(quota_exhausted())
        elif name == "delay":
            out.append(delay(float(args[0]) if args else 5.0))
        elif name in ("reset", "reset_connection"):
            out.append(reset_connection())
        elif name == "malformed":
            out.append(malformed())
        else:
            raise ValueError(f"unknown fake Gemini behaviour: {token!r}")
    return out


_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def key_refusal(key: str | None) -> tuple[int, dict[str, Any]] | None:
    """The status and body Gemini answers a missing or invalid API key with, or None."""
    if not key:
        return 403, error_body(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established "
            "identity). Please use API Key or other form of API consumer identity to "
            "call this API.",
        )
    if key == BAD_KEY:
        return 400, error_body(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )
    return None


# ---------------------------------------------------------------------------------------------
# The server


class FakeGemini(LocalServer):
    """The fake server. Use ``async with FakeGemini() as fake`` or ``start()``/``close()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Iterable[str] | None = None,
        latency_s: float = 0.0,
        image_side: int = 1024,
        noisy: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.models: set[str] = set(DEFAULT_MODELS if models is None else models)
        # Models only the Interactions API serves: models.list gives them without generateContent,
        # and generateContent answers them 404 like an unknown model.
        self.interactions_only: set[str] = set()
        self.latency_s = latency_s
        self.image_side = image_side
        self.noisy = noisy
        # Gemini 3 models refuse model turns whose signatures are missing or another model's.
        self.check_signatures = True
        self.requests: list[RecordedRequest] = []
        # models.get / models.list: what was asked (path and query), the page size the fake
        # uses at most, and an HTTP status to answer every lookup with instead (e.g. 503).
        self.model_lookups: list[str] = []
        self.list_page_size = 50
        self.models_status: int | None = None
        self.models_latency_s = 0.0
        self._queue: deque[Behaviour] = deque()
        # Scripts for requests whose prompt contains a marker (see ``enqueue_for``).
        self._routes: dict[str, deque[Behaviour]] = {}
        self._arrived = asyncio.Event()
        self.interactions = fi.InteractionStore()

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(self, *behaviours: Behaviour) -> None:
        self._queue.extend(behaviours)

    def enqueue_for(self, marker: str, *behaviours: Behaviour) -> None:
        """Answer requests whose prompt contains ``marker`` with these behaviours, one each, in
        order, before the shared queue: concurrent conversations each get their own script."""
        self._routes.setdefault(marker, deque()).extend(behaviours)

    def _next_behaviour(self, rec: RecordedRequest) -> Behaviour:
        prompt = rec.prompt
        for marker, queue in self._routes.items():
            if queue and marker in prompt:
                return queue.popleft()
        return self._queue.popleft() if self._queue else image()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()
        self._routes.clear()
        self.requests.clear()

    async def wait_for_requests(self, count: int, limit_s: float = 10.0) -> None:
        """Return once ``count`` requests have arrived (in total since the last reset)."""
        async with asyncio.timeout(limit_s):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/{version}/models/{target}", self._generate)
        app.router.add_post("/{version}/interactions", self._generate)
        app.router.add_delete("/{version}/interactions/{ident}", self._delete_interaction)
        app.router.add_get("/{version}/models", self._list_models)
        app.router.add_get("/{version}/models/{model}", self._get_model)
        app.router.add_post("/_fake/script", self._script)
        app.router.add_get("/_fake/requests", self._list_requests)
        app.router.add_get("/_fake/requests/{index}", self._request_body)
        return app

    # -- handlers ----------------------------------------------------------------------------
    async def _generate(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        holder: list[RecordedRequest] = []
        try:
            response = await self._answer(request, holder)
            if holder and isinstance(response, web.Response) and not response.prepared:
                # Send it here rather than after returning, so ``handling_s`` includes writing
                # the (megabytes of) answer; aiohttp skips a response that is already sent.
                await response.prepare(request)
                await response.write_eof()
            return response
        finally:
            if holder:
                holder[0].handling_s = time.perf_counter() - started

    async def _answer(self, request: web.Request, holder: list[RecordedRequest]) -> web.StreamResponse:
        version = request.match_info["version"]
        model, _, method = request.match_info.get("target", "").partition(":")
        raw_body = await request.read()
        try:
            body = json.loads(raw_body)
        except ValueError:
            body = None
        wire, unknown_previous = None, None
        if "target" not in request.match_info:
            method, wire = "interactions", body
            body, model, unknown_previous = self._as_generate(body, request.headers.get("x-goog-api-key"))
        rec = RecordedRequest(
            model=model,
            method=method,
            version=version,
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            body_bytes=len(raw_body),
            wire_body=wire,
        )
        holder.append(rec)
        self.requests.append(rec)
        self._arrived.set()
        if body is None or not isinstance(body, dict):
            return _json_response(
                rec,
                400,
                error_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
            )
        try:
            rec.images = [self._decode_images(c) for c in rec.contents]
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            return _json_response(
                rec,
                400,
                error_body(400, "INVALID_ARGUMENT", f"Invalid inline data: {exc}"),
            )
        refused = key_refusal(rec.api_key)
        if refused is not None:
            return _json_response(rec, *refused)
        if unknown_previous:
            rec.behaviour = "unknown_previous_interaction"
            return _json_response(
                rec, 404, error_body(404, "NOT_FOUND", f"Interaction {unknown_previous} not found.")
            )
        if (
            version != "v1beta"
            or method not in ("generateContent", "interactions")
            or not (model in self.models or (method == "interactions" and model in self.interactions_only))
        ):
            return _json_response(
                rec,
                404,
                error_body(
                    404,
                    "NOT_FOUND",
                    f"models/{model} is not found for API version {version}, or is not "
                    f"supported for {method or 'generateContent'}. Call ListModels to see the "
                    "list of available models and their supported methods.",
                ),
            )
        if self.check_signatures and model.startswith("gemini-3") and (problem := signature_problem(rec)):
            rec.behaviour = "signature_refused"
            return _json_response(rec, 400, error_body(400, "INVALID_ARGUMENT", problem))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        behaviour = self._next_behaviour(rec)
        rec.behaviour = behaviour.name
        response = await behaviour.respond(self, rec, request)
        if wire is None or rec.status != 200 or not isinstance(rec.response, dict):
            return response
        interaction, answer = fi.interaction_from(rec.response, model, rec.previous_interaction_id)
        if answer is not None and wire.get("store", True):
            key = rec.api_key or ""
            self.interactions.stored[interaction["id"]] = fi.StoredInteraction(
                key, model, [*rec.contents, answer]
            )
        self.interactions.created.append(interaction["id"])
        rec.interaction = interaction
        return web.Response(body=encode_json(interaction), status=200, content_type="application/json")

    def _as_generate(self, wire: Any, key: str | None) -> tuple[Any, str, str | None]:
        """An Interactions create in generateContent's shape (history of the previous id in
        front), its model, and the previous id when this key has no such interaction."""
        if not isinstance(wire, dict):
            return None, "", None
        model = str(wire.get("model") or "")
        try:
            contents = fi.steps_to_contents(wire.get("input") or [])
        except (ValueError, KeyError, AttributeError):
            return None, model, None
        previous = wire.get("previous_interaction_id")
        if previous:
            stored = self.interactions.history(previous, key)
            if stored is None:
                return {"contents": contents}, model, previous
            contents = [*stored.contents, *contents]
        return {"contents": contents, "generationConfig": fi.interaction_config(wire)}, model, None

    async def _delete_interaction(self, request: web.Request) -> web.Response:
        ident = request.match_info["ident"]
        self.interactions.delete_requests.append(ident)
        refused = key_refusal(request.headers.get("x-goog-api-key"))
        if refused is None and self.interactions.delete_status is not None:
            status = self.interactions.delete_status
            refused = status, error_body(status, _STATUS_NAMES.get(status, "UNKNOWN"), "Scripted failure.")
        if refused is not None:
            return web.json_response(refused[1], status=refused[0])
        if not self.interactions.delete(ident, request.headers.get("x-goog-api-key")):
            return web.json_response(
                error_body(404, "NOT_FOUND", f"Interaction {ident} not found."), status=404
            )
        return web.json_response({})

    # -- models.get / models.list (the REST shapes of the Gemini API's Model resources) ----------
    def _catalogue(self) -> list[dict[str, Any]]:
        served = [model_resource(m, ["generateContent", "countTokens"]) for m in sorted(self.models)]
        served += [model_resource(m, ["countTokens"]) for m in sorted(self.interactions_only)]
        return served + [model_resource(m, methods) for m, methods in OTHER_MODELS]

    async def _lookup_refusal(self, request: web.Request) -> web.Response | None:
        self.model_lookups.append(request.path_qs)
        if self.models_latency_s:
            await asyncio.sleep(self.models_latency_s)
        refused = key_refusal(request.headers.get("x-goog-api-key"))
        if refused is None and self.models_status is not None:
            status = self.models_status
            refused = status, error_body(status, _STATUS_NAMES.get(status, "UNKNOWN"), "Scripted failure.")
        if refused is None:
            return None
        return web.json_response(refused[1], status=refused[0])

    async def _get_model(self, request: web.Request) -> web.Response:
        refused = await self._lookup_refusal(request)
        if refused is not None:
            return refused
        model = request.match_info["model"]
        for resource in self._catalogue():
            if resource["name"] == f"models/{model}":
                return web.json_response(resource)
        message = (
            f"models/{model} is not found for API version {request.match_info['version']}, or is "
            "not supported for get. Call ListModels to see the list of available models and "
            "their supported methods."
        )
        return web.json_response(error_body(404, "NOT_FOUND", message), status=404)

    async def _list_models(self, request: web.Request) -> web.Response:
        refused = await self._lookup_refusal(request)
        if refused is not None:
            return refused
        catalogue = self._catalogue()
        try:
            size = min(int(request.query.get("pageSize") or 50), self.list_page_size, 1000)
            start = int(request.query.get("pageToken") or 0)
        except ValueError:
            return web.json_response(
                error_body(400, "INVALID_ARGUMENT", "Invalid page token or size."), status=400
            )
        body: dict[str, Any] = {"models": catalogue[start : start + max(1, size)]}
        if start + size < len(catalogue):
            body["nextPageToken"] = str(start + size)
        return web.json_response(body)

    @staticmethod
    def _decode_images(content: Any) -> list[InlineImage]:
        images = []
        for part in content.get("parts") or ():
            inline = _pick(part, "inlineData", "inline_data")
            if inline is None:
                continue
            mime = _pick(inline, "mimeType", "mime_type")
            images.append(InlineImage(mime, b64decode_any(inline["data"])))
        return images

    async def _script(self, request: web.Request) -> web.Response:
        try:
            behaviours = parse_script(await request.text())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.enqueue(*behaviours)
        return web.json_response({"queued": len(behaviours), "pending": self.pending})

    async def _list_requests(self, _request: web.Request) -> web.Response:
        return web.json_response([r.summary() for r in self.requests])

    async def _request_body(self, request: web.Request) -> web.Response:
        """One request's JSON body as received, and a digest of it (sorted keys), so a
        benchmark can replay exactly what the bot sent and check the replay matches."""
        try:
            rec = self.requests[int(request.match_info["index"])]
        except (ValueError, IndexError):
            return web.json_response({"error": "no such request"}, status=404)
        digest = hashlib.sha256(json.dumps(rec.body, sort_keys=True).encode()).hexdigest()
        return web.json_response({"body": rec.body, "sha256": digest})


# ---------------------------------------------------------------------------------------------
# Process entry point


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeGemini(
        host=args.host,
        port=args.port,
        latency_s=args.latency,
        image_side=args.image_side,
        noisy=args.noisy,
    )
    script = args.script or os.environ.get("FAKE_GEMINI_SCRIPT", "")
    fake.enqueue(*parse_script(script))
    await fake.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {fake.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Gemini REST API for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--image-side", type=int, default=1024, help="long side of images")
    parser.add_argument("--noisy", action="store_true", help="~1.5 MB noisy images")
    parser.add_argument(
        "--script",
        default="",
        help="behaviours to answer with first, e.g. 'error:503,rate_limited:2s,image:2' "
        "(also FAKE_GEMINI_SCRIPT)",
    )
    args = parser.parse_args(argv)
    try:
        parse_script(args.script or os.environ.get("FAKE_GEMINI_SCRIPT", ""))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    asyncio.run(_serve(args))
    return 0


def generated_images(gemini: FakeGemini) -> dict[str, str]:
    """sha256 of every image the fake answered with -> the prompt it was made for."""
    out: dict[str, str] = {}
    for rec in gemini.requests:
        if rec.status == 200 and rec.response is not None:
            for img in rec.response_images:
                out[hashlib.sha256(img.data).hexdigest()] = rec.prompt
    return out


if __name__ == "__main__":
    raise SystemExit(main())


@dataclass
class OverlapWatch:
    """Gemini answers that notice when two requests are being answered at the same time."""

    in_flight: int = 0
    peak: int = 0

    def behaviours(self, count: int, hold_s: float = 0.05) -> list[Behaviour]:
        async def respond(fake: FakeGemini, rec: RecordedRequest, req: Any) -> Any:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(hold_s)  # long enough for an overlapping request to show
                return await image().respond(fake, rec, req)
            finally:
                self.in_flight -= 1

        return [Behaviour("overlap-watch", respond) for _ in range(count)]
