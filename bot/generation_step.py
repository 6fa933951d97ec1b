"""The exclusive part of a turn: history, photos, the Gemini call, the stored answer and the reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace

from bot import messages
from bot.capabilities import ModelCapabilities
from bot.content import Blob, ContentRecord, blob_refs, user_record
from bot.context_budget import ContextWindow, select_context
from bot.gemini import GeminiEngine, GenerationRequest, GenerationResult
from bot.generation_gate import GenerationGate, QueueFull
from bot.image_budget import ImageMemory, turn_bytes
from bot.images import ImageLimits, ImageRejected, PreparedImage, prepare_image_async
from bot.settings import EffectiveSettings
from bot.turn_plan import Refusal, TurnPlan
from bot.turn_request import TurnRequest
from bot.vocabulary import (
    Action,
    ActionKind,
    AttachmentUnavailable,
    Author,
    ConversationKey,
    ImagePart,
    ImageRef,
    Reply,
    ReplySink,
    TextPart,
)
from storage.protocol import Store, StoredTurn

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answered:
    """A turn that produced a stored answer and was posted."""

    reply: Reply
    turn_id: int


@dataclass(frozen=True, slots=True)
class Failed:
    """Gemini did not give a usable answer; ``message`` says why in one sentence."""

    message: str


class GenerationStep:
    """Runs while the turn holds its conversation exclusively: nothing else of that conversation
    can change the head between reading the history and storing the answer."""

    def __init__(
        self,
        *,
        store: Store,
        engine: GeminiEngine,
        gate: GenerationGate,
        image_limits: ImageLimits,
        context_max_images: int | None,
        capabilities: Callable[[], ModelCapabilities],
        memory: ImageMemory,
        on_first_turn: Callable[[ConversationKey, Author], Awaitable[None]],
    ) -> None:
        self._store = store
        self._engine = engine
        self._gate = gate
        self._image_limits = image_limits
        self._context_max_images = context_max_images
        self._caps = capabilities
        self._memory = memory
        self._on_first_turn = on_first_turn

    async def run(
        self,
        request: TurnRequest,
        plan: TurnPlan,
        settings: EffectiveSettings,
        sink: ReplySink,
        *,
        late: bool,
    ) -> Answered | Failed | Refusal:
        key = request.key
        head = await self._head(request)
        history = await self._history(request, plan, head)
        if history is None:
            return Refusal(messages.UNKNOWN_TURN)
        started = time.monotonic()

        async def queued(position: int) -> None:
            await sink.notice(messages.queue_position(position))

        # Photos are downloaded and decoded only once the turn holds a generation slot and room
        # in the image memory budget (kept until its reply is posted), so a burst of attachments
        # waits in the queue instead of sitting in memory.
        held = turn_bytes((ref.size for ref in plan.images), self._image_limits.max_bytes)
        async with AsyncExitStack() as memory:
            try:
                async with self._gate.slot(f"{key.platform}:{request.author.id}", queued):
                    await memory.enter_async_context(self._memory.turns.reserve(held))
                    prepared = [await self._load_image(ref) for ref in plan.images]
                    built = await self._build(plan, history, prepared, settings)
                    result = await self._engine.generate(built.request)
            except QueueFull as exc:
                return Refusal(exc.user_message, limited=True)
            except (ImageRejected, AttachmentUnavailable) as exc:
                return Refusal(exc.user_message)
            except Exception:
                log.exception("generation crashed", extra={"conversation": str(key)})
                return Failed(messages.FAILED)
            if not result.ok or result.model_content is None:
                self._log(request, None, result, started, built.window.dropped_turns)
                return Failed(result.message or messages.FAILED)
            stored = await self._append(request, plan, history, head, built, result)
            self._log(request, stored.id, result, started, built.window.dropped_turns)
            parts = result.parts
            if late and plan.from_head:
                parts = (TextPart(messages.LATE_ARRIVAL), *parts)
            reply = Reply(parts=parts, turn_id=stored.id, actions=self._actions(stored.id, result))
            await self._deliver(request, reply, sink)
            return Answered(reply, stored.id)

    async def _deliver(self, request: TurnRequest, reply: Reply, sink: ReplySink) -> None:
        posted = await sink.send(reply)
        if posted and reply.turn_id is not None:
            key = request.key
            await self._store.record_posted(key.platform, key.channel, list(posted), reply.turn_id)

    async def _head(self, request: TurnRequest) -> int | None:
        info = await self._store.conversation(request.key)
        return info.head_turn_id if info is not None else None

    async def _history(
        self, request: TurnRequest, plan: TurnPlan, head: int | None
    ) -> list[StoredTurn] | None:
        if plan.source_turn is not None:
            source = await self._store.turn(plan.source_turn)
            if source is None or source.key != request.key:
                return None  # forgotten while the turn waited
        if plan.from_head:
            return await self._store.history(request.key) if head is not None else []
        if plan.base is None:
            return []
        try:
            return await self._store.history(request.key, plan.base)
        except ValueError:
            return None

    async def _load_image(self, ref: ImageRef) -> PreparedImage:
        try:
            data = await ref.load()
        except AttachmentUnavailable:
            raise
        except Exception as exc:  # an adapter's download failed in a way it did not translate
            log.warning(
                "attachment download failed", extra={"file": ref.filename, "error": type(exc).__name__}
            )
            raise AttachmentUnavailable(messages.download_failed(ref.filename)) from exc
        return await prepare_image_async(data, ref.filename, self._image_limits, self._memory.decodes)

    async def _build(
        self,
        plan: TurnPlan,
        history: Sequence[StoredTurn],
        prepared: list[PreparedImage],
        settings: EffectiveSettings,
    ) -> _Built:
        window = select_context(history, self._context_max_images)
        new_blobs = [p.blob for p in prepared]
        user = _user_content(plan, window, new_blobs)
        known = {b.sha256: b.data for b in new_blobs}
        wanted = {h for record in (*window.history, user) for h in blob_refs(record)}
        known.update(await self._store.load_blobs(wanted - known.keys()))
        request = GenerationRequest(
            history=window.history,
            user=user,
            blobs=known,
            aspect_ratio=settings.aspect_ratio,
            image_size=settings.image_size,
            response_mode=settings.response_mode,
        )
        user_refs = set(blob_refs(user))
        return _Built(request, window, tuple(b for b in new_blobs if b.sha256 in user_refs))

    async def _append(
        self,
        request: TurnRequest,
        plan: TurnPlan,
        history: Sequence[StoredTurn],
        head: int | None,
        built: _Built,
        result: GenerationResult,
    ) -> StoredTurn:
        caps = self._caps()
        usage = replace(
            result.usage,
            cost_usd=caps.estimate_cost(result.usage, built.request.image_size),
        )
        stored = await self._store.append_turn(
            request.key,
            history[-1].id if history else None,
            built.request.user,
            result.model_content or {},
            [*built.user_blobs, *result.new_blobs],
            caps.model,
            usage,
            request.author.id,
            expected_head=head,
        )
        if not history:  # a new conversation: its author started it (see bot.forgetting)
            await self._on_first_turn(request.key, request.author)
        return stored

    def _actions(self, turn_id: int, result: GenerationResult) -> tuple[Action, ...]:
        if not any(isinstance(p, ImagePart) for p in result.parts):
            return (Action(ActionKind.FORGET, turn_id),)
        return (
            Action(ActionKind.REGENERATE, turn_id),
            Action(ActionKind.ASPECT_RATIO, turn_id, self._caps().aspect_ratios),
            Action(ActionKind.FORGET, turn_id),
        )

    def _log(
        self,
        request: TurnRequest,
        turn_id: int | None,
        result: GenerationResult,
        started: float,
        dropped: int,
    ) -> None:
        usage = result.usage
        log.info(
            "turn finished",
            extra={
                "conversation": str(request.key),
                "kind": request.kind.value,
                "turn_id": turn_id,
                "outcome": result.outcome.value,
                "latency_ms": round((time.monotonic() - started) * 1000),
                "attempts": result.attempts,
                "prompt_tokens": usage.prompt_tokens,
                "output_tokens": usage.output_tokens,
                "images": usage.images_generated,
                "history_turns_dropped": dropped,
            },
        )


@dataclass(frozen=True, slots=True)
class _Built:
    request: GenerationRequest
    window: ContextWindow
    user_blobs: tuple[Blob, ...]


def _user_content(plan: TurnPlan, window: ContextWindow, new_blobs: list[Blob]) -> ContentRecord:
    """The new user turn: the person's text and photos, or (regenerating) the stored one; either
    way led by the latest images when the context budget re-seeded the conversation."""
    if plan.original_user is None:
        images = [*window.seed_images, *((b.sha256, b.mime_type) for b in new_blobs)]
        return user_record(plan.text, images)
    if not window.seed_images:
        return plan.original_user
    seeded = user_record("", list(window.seed_images))
    return {**plan.original_user, "parts": [*seeded["parts"], *plan.original_user["parts"]]}
