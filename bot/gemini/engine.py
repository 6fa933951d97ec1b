"""The engine: one request to Gemini with our own retries, on the SDK's own loop thread."""

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import aiohttp
from google import genai
from google.genai import _interactions as gaos
from google.genai import errors, types

# The engine's log lines keep the name they have always had.
from bot.gemini.api_errors import error_reasons, is_daily_quota, retry_delay_s
from bot.gemini.calls import model_call
from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.generation_config import generation_config
from bot.gemini.lookups import LOOKUP_TIMEOUT_S, LookupFailure, ModelLookupError, generates, model_id
from bot.gemini.outcomes import (
    IMAGE_BLOCKED,
    MSG_EMPTY,
    MSG_FAILED,
    MSG_INVALID_KEY,
    MSG_MALFORMED,
    MSG_NO_IMAGE,
    MSG_PROMPT_BLOCKED,
    MSG_QUOTA_EXHAUSTED,
    MSG_TIMEOUT,
    MSG_UNAVAILABLE,
    NORMAL_FINISH,
    PROMPT_BLOCKED,
    GenerationRequest,
    GenerationResult,
    Outcome,
    rate_limited_message,
    rejected_message,
    stopped_message,
    unknown_model_message,
)
from bot.gemini.records import content_to_record, enum_name, record_to_content, usage_from, visible_parts
from bot.gemini.registry import ModelRegistry, shipped
from bot.gemini.sdk_loop import SdkLoop
from bot.observing.null import NOBODY
from bot.ports import Observer
from bot.vocabulary import ImagePart

logger = logging.getLogger("bot.gemini")

# ---------------------------------------------------------------------------------------------
# The engine

_RETRY_STATUS = {408, 500, 502, 503, 504}
# Interactions deleted at once when a conversation or a workspace is forgotten.
_DELETES_AT_ONCE = 8
_MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class _Attempt:
    """How one failed attempt should be handled."""

    retry: bool
    kind: str  # "rate", "timeout", "unavailable" when retrying; the final outcome otherwise
    delay_s: float | None = None
    result: GenerationResult | None = None


T = TypeVar("T")


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
        observer: Observer = NOBODY,
        models: ModelRegistry | None = None,
    ) -> None:
        self.model = model
        self._observer = observer
        # What each model accepts and costs: config.models (the shipped file alone if not given).
        self.models = models if models is not None else shipped()
        self.capabilities: ModelCapabilities = self.models.capabilities_for(model)
        self.use_model(model)
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_attempts = max(1, max_attempts)
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._max_retry_delay_s = max_retry_delay_s
        self._sleep = sleep
        self._sdk = SdkLoop()
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
        self.capabilities = self.models.capabilities_for(model)
        if not self.capabilities.known:
            logger.warning(
                "Gemini model %r is in no model file; using limits every known model accepts and no price",
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
        return self._serves(found)

    def _serves(self, found: types.Model) -> bool:
        """Whether this engine can generate with a model ``models.get``/``list`` describes."""
        return generates(found)

    async def image_models(self) -> list[str]:
        """Ids of the image models this key can generate with (``models.list``, every page), in
        the API's order. Raises :class:`ModelLookupError` when the API could not say."""

        async def every_page() -> list[types.Model]:
            return [m async for m in await self._client.aio.models.list()]

        found = await self._lookup(every_page())
        return [model_id(m) for m in found if "image" in model_id(m) and self._serves(m)]

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

    async def forget_interactions(self, ids: Iterable[str]) -> int:
        """Delete these interactions on Google's side, a few at once; how many went (one not
        known counts as gone). Failures are logged, never raised: the conversation is forgotten
        here anyway."""
        unique = list(dict.fromkeys(ids))
        gone = 0
        for start in range(0, len(unique), _DELETES_AT_ONCE):
            batch = unique[start : start + _DELETES_AT_ONCE]
            gone += sum(await asyncio.gather(*(self._forget_interaction(i) for i in batch)))
        return gone

    async def _forget_interaction(self, ident: str) -> int:
        delete: Any = self._client.aio.interactions.delete
        try:
            await self._sdk.run(delete(ident))
        except gaos.NotFoundError:
            pass
        except gaos.APIError as exc:
            logger.warning(
                "could not delete a stored interaction",
                extra={"status": getattr(exc, "status_code", None), "error": type(exc).__name__},
            )
            return 0
        return 1

    # -- request -----------------------------------------------------------------------------
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Generate one answer. API, network and timeout failures come back as results; each is
        told to the observer. Raises :class:`RecordError` (before any call) when a record
        references a blob that ``request.blobs`` lacks or does not validate as SDK ``Content``."""
        started = time.monotonic()
        result = await self._generate(request)
        caps = self.models.capabilities_for(request.model) if request.model else self.capabilities
        self._observer.model_called(model_call(caps, request.image_size, result, time.monotonic() - started))
        return result

    async def _generate(self, request: GenerationRequest) -> GenerationResult:
        model = request.model or self.model
        caps = self.models.capabilities_for(model) if request.model else self.capabilities
        send = self._sender(request, model, caps)
        log_attempt = functools.partial(self._log_attempt, gemini_model=model)
        attempts = 0
        while True:
            attempts += 1
            started = time.monotonic()
            try:
                # The SDK's own timeout covers the call; this guard only catches a hang
                # the transport timeout would miss.
                async with asyncio.timeout(self._timeout_s + 10):
                    response = await self._sdk.run(send())
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
                result = await self._sdk.run(self._interpret_async(response, attempts, model))
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
        return float(min(self._backoff_max_s, base + random.uniform(0, base / 2)))

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
        reasons = error_reasons(details)
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

    def _sender(
        self, request: GenerationRequest, model: str, caps: ModelCapabilities
    ) -> Callable[[], Coroutine[Any, Any, Any]]:
        """What one attempt sends: ``generateContent`` with the whole window, every time.
        Raises :class:`RecordError` now, before any call, for a record that cannot be sent."""
        contents = [record_to_content(r, request.blobs) for r in (*request.history, request.user)]
        config = generation_config(request, caps)
        return lambda: self._client.aio.models.generate_content(model=model, contents=contents, config=config)

    async def _interpret_async(self, response: Any, attempts: int, model: str) -> GenerationResult:
        return self._interpret(response, attempts)

    def _interpret(self, response: types.GenerateContentResponse, attempts: int) -> GenerationResult:
        candidates = response.candidates or []
        if not candidates:
            feedback = response.prompt_feedback
            reason = enum_name(feedback.block_reason) if feedback else None
            usage = usage_from(response.usage_metadata, 0)
            if reason:
                message = PROMPT_BLOCKED.get(reason, MSG_PROMPT_BLOCKED)
                return GenerationResult(
                    Outcome.PROMPT_BLOCKED,
                    message,
                    usage=usage,
                    finish_reason=reason,
                    attempts=attempts,
                )
            return GenerationResult(Outcome.FAILED, MSG_EMPTY, usage=usage, attempts=attempts)

        candidate = candidates[0]
        finish = enum_name(candidate.finish_reason)
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

        if finish in IMAGE_BLOCKED:
            return failed(Outcome.IMAGE_BLOCKED, IMAGE_BLOCKED[finish])
        if finish == "NO_IMAGE":
            return failed(Outcome.NO_IMAGE, MSG_NO_IMAGE)
        if not n_images and finish not in NORMAL_FINISH:
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
