"""The Interactions API engine (GEMINI_API=interactions): server-side history, so a later turn
sends only what is new plus ``previous_interaction_id``.

The local history stays the source of truth, written exactly as on the generateContent path;
each model record also names the interaction that made it (``bot.gemini.steps.INTERACTION``).
A turn continues from the interaction of the turn it follows when that turn was drawn by the
same model; otherwise (the first turn after a switch of model, a turn whose answer was changed
here, such as a framed edit's composite) and whenever the API no longer knows the id (expired,
deleted, another key's: a 404 or 400), the local history is sent once and the conversation
continues from the new interaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from google.genai import _interactions as gaos
from google.genai import errors

from bot.gemini.capabilities import INTERACTIONS, ModelCapabilities
from bot.gemini.engine import GeminiEngine
from bot.gemini.lookups import model_id
from bot.gemini.outcomes import (
    IMAGE_BLOCKED,
    MSG_NO_IMAGE,
    MSG_PROMPT_BLOCKED,
    NORMAL_FINISH,
    PROMPT_BLOCKED,
    GenerationRequest,
    GenerationResult,
    Outcome,
    stopped_message,
)
from bot.gemini.records import content_to_record, visible_parts
from bot.gemini.steps import (
    answer_content,
    block_reason,
    check_records,
    history_steps,
    interaction_of,
    plain,
    record_steps,
    with_interaction,
)
from bot.vocabulary import ImagePart, ResponseMode, Usage

logger = logging.getLogger("bot.gemini")

# An id the API does not know (expired, deleted, another key's) is answered with one of these.
_UNKNOWN_ID = (400, 404)
_FAILED = ("failed", "cancelled", "budget_exceeded")


def interaction_config(request: GenerationRequest, caps: ModelCapabilities) -> dict[str, Any]:
    """The create body's settings: what generateContent's config says, in this API's fields.
    What to answer with goes in ``response_format`` (google-genai 3.3 marks the top-level
    ``response_modalities`` and ``generation_config.image_config`` deprecated): a text format
    unless images only, and an image format carrying the aspect ratio and size."""
    image: dict[str, str] = {"type": "image"}
    if request.aspect_ratio:
        image["aspect_ratio"] = request.aspect_ratio
    if request.image_size and caps.supports_sizes():
        image["image_size"] = request.image_size
    text_too = request.response_mode != ResponseMode.IMAGE_ONLY
    body: dict[str, Any] = {"response_format": [{"type": "text"}, image] if text_too else [image]}
    if request.thinking_level and request.thinking_level in caps.thinking_levels:
        body["generation_config"] = {"thinking_level": request.thinking_level}
    return body


def _by_modality(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items or ():
        name = str(item.get("modality") or "unspecified").upper()
        out[name] = out.get(name, 0) + int(item.get("tokens") or 0)
    return out


def interaction_usage(usage: Mapping[str, Any] | None, images: int) -> Usage:
    if not usage:
        return Usage(images_generated=images)
    return Usage(
        prompt_tokens=int(usage.get("total_input_tokens") or 0),
        output_tokens=int(usage.get("total_output_tokens") or 0),
        thought_tokens=int(usage.get("total_thought_tokens") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
        prompt_by_modality=_by_modality(usage.get("input_tokens_by_modality")),
        output_by_modality=_by_modality(usage.get("output_tokens_by_modality")),
        images_generated=images,
    )


def _as_genai_error(exc: gaos.APIError) -> BaseException:
    """The Interactions client's error as the engine's retry policy reads errors: an HTTP status
    as ``errors.APIError``, a timeout as ``TimeoutError``, no answer as ``ConnectionError``."""
    if isinstance(exc, gaos.APITimeoutError):
        return TimeoutError()
    status = exc.status_code
    if isinstance(exc, gaos.APIConnectionError) or status is None:
        return ConnectionError(type(exc).__name__)
    if isinstance(exc, gaos.APIResponseValidationError) and 200 <= status < 300:
        return ValueError("the interaction did not parse")
    body = exc.body if isinstance(exc.body, dict) else {"error": {"message": str(exc.body or "")}}
    return errors.APIError(status, body)


class InteractionsEngine(GeminiEngine):
    """Generates through ``client.aio.interactions`` with server-side history."""

    api = INTERACTIONS

    def _serves(self, found: Any) -> bool:
        """Also a model only the Interactions API serves (its registry entry says so), whatever
        methods ``models.list`` gives it."""
        return super()._serves(found) or self.models.interactions_only(model_id(found))

    def _sender(
        self, request: GenerationRequest, model: str, caps: ModelCapabilities
    ) -> Callable[[], Coroutine[Any, Any, Any]]:
        """Raises :class:`RecordError` now, before any call, for a record that cannot be sent."""
        check_records((*request.history, request.user), request.blobs)
        previous = interaction_of(request.history[-1], model) if request.history else None
        config = interaction_config(request, caps)

        async def send() -> Any:
            # Runs on the SDK's loop: base64 of the images is built there, off the bot's loop.
            new = record_steps(request.user, request.blobs)
            if previous is not None:
                try:
                    return await self._create(model, new, config, previous)
                except errors.APIError as exc:
                    if exc.code not in _UNKNOWN_ID:
                        raise
                    logger.info(
                        "gemini interaction not known any more; sending the local history",
                        extra={"gemini_model": model, "status": exc.code},
                    )
            return await self._create(model, [*history_steps(request.history, request.blobs), *new], config)

        return send

    async def _create(
        self, model: str, steps: list[dict[str, Any]], config: dict[str, Any], previous: str | None = None
    ) -> Any:
        body: dict[str, Any] = {"model": model, "input": steps, **config}
        if previous is not None:
            body["previous_interaction_id"] = previous
        create: Any = self._client.aio.interactions.create
        try:
            return await create(**body)
        except gaos.APIError as exc:
            raise _as_genai_error(exc) from None

    async def _interpret_async(self, response: Any, attempts: int, model: str) -> GenerationResult:
        return self._read(plain(response), attempts, model)

    def _read(self, data: dict[str, Any], attempts: int, model: str) -> GenerationResult:
        status = str(data.get("status") or "")
        content = answer_content(list(data.get("steps") or ()))
        parts = visible_parts(content)
        n_images = sum(isinstance(p, ImagePart) for p in parts)
        reason, of_prompt = block_reason(data)
        finish = reason or ("STOP" if status == "completed" else status.upper() or None)

        def failed(outcome: Outcome, message: str) -> GenerationResult:
            usage = interaction_usage(data.get("usage"), 0)
            return GenerationResult(outcome, message, usage=usage, finish_reason=finish, attempts=attempts)

        if of_prompt and reason:
            return failed(Outcome.PROMPT_BLOCKED, PROMPT_BLOCKED.get(reason, MSG_PROMPT_BLOCKED))
        if reason in IMAGE_BLOCKED:
            return failed(Outcome.IMAGE_BLOCKED, IMAGE_BLOCKED[reason])
        if reason == "NO_IMAGE" or (not parts and status not in _FAILED):
            return failed(Outcome.NO_IMAGE, MSG_NO_IMAGE)
        if not n_images and (status in _FAILED or reason not in NORMAL_FINISH):
            return failed(Outcome.FAILED, stopped_message(finish or "UNKNOWN"))
        record, blobs = content_to_record(content)
        return GenerationResult(
            outcome=Outcome.IMAGE if n_images else Outcome.TEXT_ONLY,
            message=None,
            model_content=with_interaction(record, data.get("id"), model),
            new_blobs=tuple(blobs),
            parts=parts,
            usage=interaction_usage(data.get("usage"), n_images),
            finish_reason=finish,
            attempts=attempts,
        )
