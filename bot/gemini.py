"""The Gemini image model behind one small seam: records in, a classified result out.

This is the only module that imports ``google.genai``. It turns stored content records (see
``bot.content``) into SDK objects, calls ``generateContent`` once per attempt with our own
retry policy, and turns the answer back into records, blobs and user-visible parts. Every
API, network and timeout failure becomes a :class:`GenerationResult` with a plain message;
nothing from the API (raw JSON, stack traces, the key) reaches users.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

import aiohttp
import pydantic
from google import genai
from google.genai import errors, types

from bot.capabilities import ModelCapabilities, capabilities_for
from bot.content import Blob, ContentRecord
from bot.vocabulary import ImagePart, ReplyPart, ResponseMode, TextPart, Usage

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How one generation ended."""

    IMAGE = "image"
    TEXT_ONLY = "text_only"
    PROMPT_BLOCKED = "prompt_blocked"
    IMAGE_BLOCKED = "image_blocked"
    NO_IMAGE = "no_image"
    QUOTA_EXHAUSTED = "quota_exhausted"
    RATE_LIMITED = "rate_limited"
    INVALID_KEY = "invalid_key"
    UNKNOWN_MODEL = "unknown_model"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class GenerationRequest:
    """One turn to send: the earlier turns, the new user turn and every blob they reference."""

    history: Sequence[ContentRecord]
    user: ContentRecord
    blobs: Mapping[str, bytes]
    aspect_ratio: str | None = None
    image_size: str | None = None
    response_mode: ResponseMode = ResponseMode.TEXT_AND_IMAGE
    # The conversation's model; None = the engine's (GEMINI_MODEL, or the one start-up chose).
    model: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    """What came of a request. ``model_content`` is what to append to history when ``ok``."""

    outcome: Outcome
    message: str | None
    model_content: ContentRecord | None = None
    new_blobs: tuple[Blob, ...] = ()
    parts: tuple[ReplyPart, ...] = ()
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.IMAGE, Outcome.TEXT_ONLY)


# ---------------------------------------------------------------------------------------------
# User-facing messages: one plain sentence each, saying what happened and what to do.

MSG_INVALID_KEY = "The bot's Gemini API key was rejected; the operator needs to set a valid GEMINI_API_KEY."
MSG_QUOTA_EXHAUSTED = (
    "Today's Gemini image quota for this bot is used up; it resets at midnight Pacific time."
)
MSG_TIMEOUT = "Gemini took too long to answer; please try again in a moment."
MSG_UNAVAILABLE = "Gemini is unavailable right now; please try again in a few minutes."
MSG_MALFORMED = "Gemini sent an answer the bot could not read; please try again."
MSG_FAILED = "Something went wrong while talking to Gemini; please try again."
MSG_EMPTY = "Gemini returned an empty answer; please try again."
MSG_NO_IMAGE = "Gemini did not produce an image this time; try again or rephrase the prompt."
MSG_REJECTED = "Gemini rejected this request; try changing the prompt or the attached images."

_PROMPT_BLOCKED = {
    "SAFETY": "Gemini blocked this prompt for safety reasons; try rephrasing it.",
    "PROHIBITED_CONTENT": ("Gemini blocked this prompt as prohibited content; try a different request."),
    "BLOCKLIST": "Gemini blocked this prompt because it contains blocked terms; try rephrasing it.",
    "IMAGE_SAFETY": ("Gemini blocked the attached images for safety reasons; try different images."),
}
MSG_PROMPT_BLOCKED = "Gemini blocked this prompt; try rephrasing it."

MSG_IMAGE_SAFETY = "Gemini withheld the image for safety reasons; try rephrasing the prompt."
MSG_IMAGE_PROHIBITED = (
    "Gemini withheld the image because it would be prohibited content; try a different request."
)
MSG_BLOCKLIST = "Gemini withheld the answer because it contained blocked terms; try rephrasing the prompt."
MSG_SPII = (
    "Gemini withheld the answer because it could reveal sensitive personal information; "
    "try a different request."
)
MSG_RECITATION = (
    "Gemini withheld the image because it was too close to existing copyrighted work; "
    "try a more original prompt."
)
_IMAGE_BLOCKED = {
    "IMAGE_SAFETY": MSG_IMAGE_SAFETY,
    "SAFETY": MSG_IMAGE_SAFETY,
    "IMAGE_PROHIBITED_CONTENT": MSG_IMAGE_PROHIBITED,
    "PROHIBITED_CONTENT": MSG_IMAGE_PROHIBITED,
    "BLOCKLIST": MSG_BLOCKLIST,
    "SPII": MSG_SPII,
    "IMAGE_RECITATION": MSG_RECITATION,
    "RECITATION": MSG_RECITATION,
}
# Finish reasons that mean "done normally": the visible parts decide the outcome.
_NORMAL_FINISH = {None, "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}


def stopped_message(reason: str) -> str:
    return f"Gemini stopped without an image ({reason}); try rephrasing."


def rate_limited_message(seconds: float | None) -> str:
    if seconds is None:
        return "Gemini is rate-limiting this bot; try again in about a minute."
    n = max(1, math.ceil(seconds))
    return f"Gemini is rate-limiting this bot; try again in about {n} second{'s' * (n != 1)}."


def unknown_model_message(model: str) -> str:
    return (
        f"Gemini does not offer the model {model!r}; the operator needs to set GEMINI_MODEL "
        "to an available image model."
    )


def rejected_message(reason: str | None) -> str:
    if not reason:
        return MSG_REJECTED
    return f"Gemini rejected this request ({reason}); try changing the prompt or the attached images."


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
        return types.Content.model_validate({**record, "parts": parts})
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


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _by_modality(details: Iterable[types.ModalityTokenCount] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in details or ():
        name = _enum_name(item.modality) or "UNSPECIFIED"
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


# ---------------------------------------------------------------------------------------------
# Error details


def _detail_items(details: Any) -> list[dict[str, Any]]:
    """The ``details`` list of a Google error, whether given the envelope or the inner error."""
    if isinstance(details, dict):
        inner = details.get("error")
        if isinstance(inner, dict):
            details = inner
        details = details.get("details")
    if isinstance(details, list):
        return [d for d in details if isinstance(d, dict)]
    return []


def _of_type(items: list[dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [d for d in items if str(d.get("@type", "")).endswith(suffix)]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*s\s*$")


def retry_delay_s(details: Any) -> float | None:
    """``RetryInfo.retryDelay`` in seconds (``"33s"``, ``"1.5s"``), if the error carries one."""
    for info in _of_type(_detail_items(details), "google.rpc.RetryInfo"):
        value = info.get("retryDelay", info.get("retry_delay"))
        if isinstance(value, str) and (m := _DURATION.match(value)):
            return float(m.group(1))
        if isinstance(value, dict):
            try:
                return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
            except (TypeError, ValueError):
                continue
    return None


def is_daily_quota(details: Any) -> bool:
    """True when a QuotaFailure names a per-day quota (retrying will not help until reset)."""
    for failure in _of_type(_detail_items(details), "google.rpc.QuotaFailure"):
        for violation in failure.get("violations") or ():
            if isinstance(violation, dict):
                quota_id = str(violation.get("quotaId", violation.get("quota_id", "")))
                if "PerDay" in quota_id:
                    return True
    return False


def _error_reasons(details: Any) -> set[str]:
    return {str(d.get("reason", "")) for d in _of_type(_detail_items(details), "ErrorInfo")}


# ---------------------------------------------------------------------------------------------
# Model lookups

LOOKUP_TIMEOUT_S = 15.0


class LookupFailure(StrEnum):
    NOT_FOUND = "not_found"
    KEY_REJECTED = "key_rejected"
    UNREACHABLE = "unreachable"


class ModelLookupError(Exception):
    """``models.get`` / ``models.list`` gave no answer about the models."""

    def __init__(self, kind: LookupFailure, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def _model_id(model: types.Model) -> str:
    return (model.name or "").removeprefix("models/")


def _generates(model: types.Model) -> bool:
    # The Gemini API lists supportedGenerationMethods; a model without the list is given the
    # benefit of the doubt.
    actions = model.supported_actions
    return actions is None or "generateContent" in actions


# ---------------------------------------------------------------------------------------------
# The engine

_RETRY_STATUS = {408, 500, 502, 503, 504}
_MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class _Attempt:
    """How one failed attempt should be handled."""

    retry: bool
    kind: str  # "rate", "timeout", "unavailable" when retrying; the final outcome otherwise
    delay_s: float | None = None
    result: GenerationResult | None = None


T = TypeVar("T")


class _SdkLoop:
    """A private event loop on one daemon thread, where the SDK builds requests and reads answers.

    The SDK base64-encodes and JSON-serialises every image it sends and decodes every image it
    receives, synchronously, on the loop that awaits it: about 20 ms of CPU per turn with three
    1.5 MB history images, and a burst of answers landing together would stall the bot's loop
    (Discord heartbeats, Slack acks, every other conversation) for hundreds of milliseconds.
    Here that work only competes for the GIL, which the bot's loop gets back within a few ms.
    Cancelling the awaiting task cancels the call on this loop too (chained futures).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="gemini-sdk", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def running(self) -> bool:
        return self._loop is not None

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the SDK loop and wait for it from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._started()))

    async def stop(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()


class GeminiEngine:
    """Calls the configured Gemini image model; one SDK client for the engine's lifetime."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_attempts: int = 4,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 20.0,
        max_retry_delay_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.model = model
        self.capabilities: ModelCapabilities = capabilities_for(model)
        self.use_model(model)
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_attempts = max(1, max_attempts)
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._max_retry_delay_s = max_retry_delay_s
        self._sleep = sleep
        self._sdk = _SdkLoop()
        # Retries are ours: attempts=1 switches the SDK's own retrying off, including the
        # hidden one that sleeps 1-10 s with asyncio.sleep after an aiohttp connection error.
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                api_version="v1beta",
                base_url=base_url,
                timeout=max(1, round(timeout_s * 1000)),
                retry_options=types.HttpRetryOptions(attempts=1),
            ),
        )

    @property
    def client(self) -> genai.Client:
        return self._client

    def use_model(self, model: str) -> None:
        """Generate with ``model`` from now on (set once at start-up, before any turn)."""
        self.model = model
        self.capabilities = capabilities_for(model)
        if not self.capabilities.known:
            logger.warning(
                "Gemini model %r is not in the capability table; letting the API decide what it accepts",
                model,
                extra={"gemini_model": model},
            )

    # -- models.get / models.list --------------------------------------------------------------
    async def model_available(self, model: str) -> bool:
        """Whether this key can generate with ``model`` (``models.get``); False when not found.

        Raises :class:`ModelLookupError` when the API could not say.
        """
        try:
            found = await self._lookup(self._client.aio.models.get(model=model))
        except ModelLookupError as exc:
            if exc.kind == LookupFailure.NOT_FOUND:
                return False
            raise
        return _generates(found)

    async def image_models(self) -> list[str]:
        """Ids of the image models this key can generate with (``models.list``, every page), in
        the API's order. Raises :class:`ModelLookupError` when the API could not say."""

        async def every_page() -> list[types.Model]:
            return [m async for m in await self._client.aio.models.list()]

        return [
            _model_id(m)
            for m in await self._lookup(every_page())
            if "image" in _model_id(m) and _generates(m)
        ]

    async def _lookup(self, call: Coroutine[Any, Any, T]) -> T:
        try:
            async with asyncio.timeout(min(self._timeout_s, LOOKUP_TIMEOUT_S)):
                return await self._sdk.run(call)
        except errors.APIError as exc:
            kind = self._classify_api_error(exc).kind
            failure = {"invalid_key": LookupFailure.KEY_REJECTED, "unknown_model": LookupFailure.NOT_FOUND}
            raise ModelLookupError(failure.get(kind, LookupFailure.UNREACHABLE), f"HTTP {exc.code}") from None
        except TimeoutError:
            raise ModelLookupError(LookupFailure.UNREACHABLE, "timed out") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise ModelLookupError(LookupFailure.UNREACHABLE, type(exc).__name__) from None

    async def aclose(self) -> None:
        """Close the SDK's connections (the async session and the idle sync client)."""
        if self._sdk.running:
            # The SDK keeps one aiohttp session per loop; close it on the loop that owns it.
            await self._sdk.run(self._client.aio.aclose())
            await self._sdk.stop()
        await self._client.aio.aclose()
        self._client.close()

    # -- request -----------------------------------------------------------------------------
    def _config(self, request: GenerationRequest, caps: ModelCapabilities) -> types.GenerateContentConfig:
        modalities = ["IMAGE"] if request.response_mode == ResponseMode.IMAGE_ONLY else ["TEXT", "IMAGE"]
        size = request.image_size if caps.supports_sizes() else None
        image_config = None
        if request.aspect_ratio or size:
            image_config = types.ImageConfig(aspect_ratio=request.aspect_ratio, image_size=size)
        return types.GenerateContentConfig(response_modalities=modalities, image_config=image_config)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate one answer. API, network and timeout failures come back as results.

        Raises :class:`RecordError` (before any call) when a record references a blob that
        ``request.blobs`` lacks or does not validate as SDK ``Content``.
        """
        contents = [record_to_content(r, request.blobs) for r in (*request.history, request.user)]
        model = request.model or self.model
        caps = capabilities_for(model) if request.model else self.capabilities
        config = self._config(request, caps)
        log_attempt = functools.partial(self._log_attempt, gemini_model=model)
        attempts = 0
        while True:
            attempts += 1
            started = time.monotonic()
            try:
                # The SDK's aiohttp timeout covers the call; this guard only catches a hang
                # the transport timeout would miss.
                async with asyncio.timeout(self._timeout_s + 10):
                    response = await self._sdk.run(
                        self._client.aio.models.generate_content(
                            model=model, contents=contents, config=config
                        )
                    )
            except errors.APIError as exc:
                step = self._classify_api_error(exc, model)
                log_attempt(attempts, started, step.kind, status=exc.code)
            except TimeoutError:
                step = _Attempt(retry=True, kind="timeout")
                log_attempt(attempts, started, "timeout")
            except (aiohttp.ClientError, OSError) as exc:
                step = _Attempt(retry=True, kind="unavailable")
                log_attempt(attempts, started, "connection_error", error=type(exc).__name__)
            except ValueError as exc:  # invalid JSON or a body the SDK could not parse
                step = _Attempt(False, "failed", result=self._fail(Outcome.FAILED, MSG_MALFORMED))
                log_attempt(attempts, started, "malformed", error=type(exc).__name__)
            except Exception as exc:
                step = _Attempt(False, "failed", result=self._fail(Outcome.FAILED, MSG_FAILED))
                log_attempt(attempts, started, "error", error=type(exc).__name__, exc_info=True)
            else:
                # Hashing and dumping the answer's image is CPU work too: keep it off our loop.
                result = await self._sdk.run(self._interpret_async(response, attempts))
                log_attempt(
                    attempts,
                    started,
                    result.outcome.value,
                    finish_reason=result.finish_reason,
                    total_tokens=result.usage.total_tokens,
                )
                return result

            if not step.retry:
                assert step.result is not None
                return replace(step.result, attempts=attempts)
            if attempts >= self._max_attempts:
                return replace(self._exhausted(step), attempts=attempts)
            wait = step.delay_s if step.delay_s is not None else self._backoff(attempts)
            await self._sleep(wait)

    # -- classification ----------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        base = min(self._backoff_max_s, self._backoff_base_s * 2 ** (attempt - 1))
        return min(self._backoff_max_s, base + random.uniform(0, base / 2))

    @staticmethod
    def _fail(outcome: Outcome, message: str) -> GenerationResult:
        return GenerationResult(outcome=outcome, message=message)

    def _exhausted(self, step: _Attempt) -> GenerationResult:
        if step.kind == "rate":
            return self._fail(Outcome.RATE_LIMITED, rate_limited_message(step.delay_s))
        if step.kind == "timeout":
            return self._fail(Outcome.TIMEOUT, MSG_TIMEOUT)
        return self._fail(Outcome.UNAVAILABLE, MSG_UNAVAILABLE)

    def _classify_api_error(self, exc: errors.APIError, model: str | None = None) -> _Attempt:
        code = exc.code or 0
        status = str(exc.status or "").upper()
        details = exc.details
        if code == 429:
            if is_daily_quota(details):
                return _Attempt(
                    False, "quota", result=self._fail(Outcome.QUOTA_EXHAUSTED, MSG_QUOTA_EXHAUSTED)
                )
            wait = retry_delay_s(details)
            if wait is not None and wait > self._max_retry_delay_s:
                return _Attempt(
                    False,
                    "rate",
                    result=self._fail(Outcome.RATE_LIMITED, rate_limited_message(wait)),
                )
            return _Attempt(True, "rate", delay_s=wait)
        if code in _RETRY_STATUS:
            return _Attempt(True, "timeout" if code == 408 else "unavailable")
        reasons = _error_reasons(details)
        message = exc.message if isinstance(exc.message, str) else ""
        if (
            code in (401, 403)
            or status in ("UNAUTHENTICATED", "PERMISSION_DENIED")
            or any(r.startswith("API_KEY") for r in reasons)
            or "API key not valid" in message
        ):
            return _Attempt(False, "invalid_key", result=self._fail(Outcome.INVALID_KEY, MSG_INVALID_KEY))
        if code == 404 or status == "NOT_FOUND":
            return _Attempt(
                False,
                "unknown_model",
                result=self._fail(Outcome.UNKNOWN_MODEL, unknown_model_message(model or self.model)),
            )
        if 400 <= code < 500:
            return _Attempt(
                False,
                "rejected",
                result=self._fail(Outcome.REJECTED, rejected_message(self._plain(message))),
            )
        if code >= 500:
            return _Attempt(False, "unavailable", result=self._fail(Outcome.UNAVAILABLE, MSG_UNAVAILABLE))
        return _Attempt(False, "failed", result=self._fail(Outcome.FAILED, MSG_FAILED))

    def _plain(self, text: str) -> str | None:
        """Gemini's reason text if it is short plain prose safe to show, else None."""
        text = " ".join(text.split())
        if not text or any(c in text for c in "{}[]<>`"):
            return None
        if self._api_key and self._api_key in text:
            return None
        if len(text) > _MAX_REASON:
            text = text[: _MAX_REASON - 1].rstrip() + "…"
        return text.rstrip(".") or None

    async def _interpret_async(
        self, response: types.GenerateContentResponse, attempts: int
    ) -> GenerationResult:
        return self._interpret(response, attempts)

    def _interpret(self, response: types.GenerateContentResponse, attempts: int) -> GenerationResult:
        candidates = response.candidates or []
        if not candidates:
            feedback = response.prompt_feedback
            reason = _enum_name(feedback.block_reason) if feedback else None
            usage = usage_from(response.usage_metadata, 0)
            if reason:
                message = _PROMPT_BLOCKED.get(reason, MSG_PROMPT_BLOCKED)
                return GenerationResult(
                    Outcome.PROMPT_BLOCKED,
                    message,
                    usage=usage,
                    finish_reason=reason,
                    attempts=attempts,
                )
            return GenerationResult(Outcome.FAILED, MSG_EMPTY, usage=usage, attempts=attempts)

        candidate = candidates[0]
        finish = _enum_name(candidate.finish_reason)
        content = candidate.content
        parts = visible_parts(content)
        n_images = sum(isinstance(p, ImagePart) for p in parts)
        usage = usage_from(response.usage_metadata, n_images)

        def failed(outcome: Outcome, message: str) -> GenerationResult:
            return GenerationResult(
                outcome,
                message,
                usage=usage_from(response.usage_metadata, 0),
                finish_reason=finish,
                attempts=attempts,
            )

        if finish in _IMAGE_BLOCKED:
            return failed(Outcome.IMAGE_BLOCKED, _IMAGE_BLOCKED[finish])
        if finish == "NO_IMAGE":
            return failed(Outcome.NO_IMAGE, MSG_NO_IMAGE)
        if not n_images and finish not in _NORMAL_FINISH:
            return failed(Outcome.FAILED, stopped_message(finish or "UNKNOWN"))
        if not parts:
            return failed(Outcome.NO_IMAGE, MSG_NO_IMAGE)

        record, blobs = content_to_record(content)
        return GenerationResult(
            outcome=Outcome.IMAGE if n_images else Outcome.TEXT_ONLY,
            message=None,
            model_content=record,
            new_blobs=tuple(blobs),
            parts=parts,
            usage=usage,
            finish_reason=finish,
            attempts=attempts,
        )

    def _log_attempt(
        self, attempt: int, started: float, outcome: str, exc_info: bool = False, **fields: Any
    ) -> None:
        level = logging.INFO if outcome in (Outcome.IMAGE, Outcome.TEXT_ONLY) else logging.WARNING
        extra = {
            "gemini_model": self.model,
            "attempt": attempt,
            "max_attempts": self._max_attempts,
            "outcome": outcome,
            "latency_ms": round((time.monotonic() - started) * 1000),
            **{k: v for k, v in fields.items() if v is not None},
        }
        logger.log(
            level,
            "gemini attempt %d/%d: %s",
            attempt,
            self._max_attempts,
            outcome,
            extra=extra,
            exc_info=exc_info,
        )
