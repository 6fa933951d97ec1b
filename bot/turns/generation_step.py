"""The exclusive part of a turn: history, photos, the Gemini call, the stored answer and the reply."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from functools import partial

from bot.gemini import GeminiEngine, GenerationRequest, GenerationResult, Outcome
from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.steps import without_interaction
from bot.images.budget import ImageMemory, turn_bytes
from bot.images.checks import ImageLimits, ImageRejected, PreparedImage, prepare_image_async
from bot.observing import watch
from bot.ports import ReplySink, TurnFence
from bot.text import messages
from bot.text.conversation_settings import ConversationSettings
from bot.text.settings import EffectiveSettings
from bot.turns import framing
from bot.turns.answers import Answered, Failed, TakenOver, after_all, answer, unsaved
from bot.turns.context_budget import ContextWindow, model_window
from bot.turns.fence import ALWAYS_HOLDS
from bot.turns.framing import Framed, FrameJob
from bot.turns.gate import GenerationGate, QueueFull
from bot.turns.plan import Refusal, TurnPlan
from bot.turns.references import gone, with_references
from bot.turns.request import TurnRequest
from bot.vocabulary import (
    AttachmentUnavailable,
    Author,
    ConversationKey,
    ImageRef,
    SettingScope,
)
from storage.aftercare import Aftercare
from storage.content import Blob, ContentRecord, blob_refs, user_record
from storage.errors import HeadMoved, StoreUnavailable
from storage.protocol import NewTurn, Store, StoredTurn

log = logging.getLogger(__name__)


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
        settings: ConversationSettings,
        memory: ImageMemory,
        on_first_turn: Callable[[ConversationKey, Author], Awaitable[None]],
        aftercare: Aftercare,
        editable: bool = False,
    ) -> None:
        """``editable``: the region editor is served (PUBLIC_URL), so images get Edit region."""
        self._answer = partial(answer, editable=editable)
        self._aftercare = aftercare
        self._store = store
        self._engine = engine
        self._gate = gate
        self._image_limits = image_limits
        self._context_max_images = context_max_images
        self._settings = settings
        self._memory = memory
        self._on_first_turn = on_first_turn

    async def run(
        self,
        request: TurnRequest,
        plan: TurnPlan,
        sink: ReplySink,
        *,
        late: bool,
        notes: Sequence[str] = (),
        fence: TurnFence | None = None,
    ) -> Answered | Failed | Refusal | TakenOver:
        """``notes``: sentences said with the answer (what a switch of model reset); ``fence``
        says whether the turn is still this process's (see ``bot.turns.fence``). The settings
        are read here, with the history, so a setting an earlier turn of the conversation
        stored while this one waited applies."""
        fence = fence or ALWAYS_HOLDS
        key = request.key
        started = time.monotonic()
        # Room in the image memory budget is taken with the generation slot and kept until the
        # reply is posted (the photos and the answer's images are in memory until then).
        async with AsyncExitStack() as memory:
            generated = await self._generate(request, plan, sink, memory)
            if not isinstance(generated, tuple):
                return generated
            built, results = generated
            head, history, settings = built.head, built.history, built.settings
            good = [r for r in results if r.ok and r.model_content is not None]
            for result in results:
                if not (result.ok and result.model_content is not None):
                    self._log(request, None, result, started, built.window.dropped_turns)
            if not good:
                return Failed(results[0].message or messages.FAILED)
            # Paid for now. A turn taken over while this process was paused or cut off is still
            # stored and posted if the conversation has not moved on, with a sentence that
            # replaces the "send it again" its person was given; otherwise nothing is posted.
            taken_over = False
            try:
                taken_over = not await fence.holds()
                stored = await self._store_takes(request, history, head, built, good, settings)
            except HeadMoved:
                if not taken_over:
                    raise
                log.warning("turn taken over; the conversation moved on", extra={"conversation": str(key)})
                return TakenOver()
            except StoreUnavailable:
                log.error("answer not stored: the database stayed away", extra={"conversation": str(key)})
                kept_nowhere = unsaved(plan, good, results, notes)
                await self._deliver(kept_nowhere, sink)
                return kept_nowhere
            for turn, result in zip(stored, good, strict=True):
                self._log(request, turn.id, result, started, built.window.dropped_turns)
            caps, drawn_at = self._drawn_with(built.request), built.request.image_size
            answered = self._answer(plan, caps, drawn_at, stored, good, results, late=late, notes=notes)
            if taken_over or not await _still_holds(fence):
                answered = after_all(answered)
            await self._deliver(answered, sink)
            return answered

    async def _generate(
        self, request: TurnRequest, plan: TurnPlan, sink: ReplySink, memory: AsyncExitStack
    ) -> tuple[_Built, list[GenerationResult]] | Failed | Refusal:
        """The turn's photos and its reads (head, settings, history and the images it re-sends:
        one store call) wait for a generation slot, so a burst of turns waits in the queue
        instead of sitting in memory. The takes of a variations turn are separate requests sent at once
        (the API gives one image per request) within the turn's one slot."""

        async def queued(position: int) -> None:
            await sink.notice(messages.queue_position(position))

        held = turn_bytes((ref.size for ref in plan.images), self._image_limits.max_bytes)
        try:
            async with self._gate.slot(f"{request.key.platform}:{request.author.id}", queued):
                await memory.enter_async_context(self._memory.turns.reserve(held))
                prepared = [await self._load_image(ref) for ref in plan.images]
                read = await self._read(request, plan)
                if read is None:
                    return Refusal(messages.UNKNOWN_TURN)
                if missing := gone(plan.references, read.blobs):
                    return Refusal(missing)
                framed = await self._framed(plan, read, memory)
                built = self._build(plan, read, prepared, framed)
                calls = (self._engine.generate(built.request) for _ in range(max(1, plan.takes)))
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
                if framed is not None:
                    outcomes = [await self._composited(o, framed) for o in outcomes]
        except QueueFull as exc:
            return Refusal(exc.user_message, limited=True)
        except (ImageRejected, AttachmentUnavailable) as exc:
            return Refusal(exc.user_message)
        except StoreUnavailable:
            raise  # the pipeline says so in its own sentence
        except Exception:
            log.exception("generation crashed", extra={"conversation": str(request.key)})
            return Failed(messages.FAILED)
        return built, [self._result(request, outcome) for outcome in outcomes]

    async def _framed(self, plan: TurnPlan, read: _Read, memory: AsyncExitStack) -> Framed | None:
        """A zoom, pan or region edit's canvases, made from the original in a thread, within the
        image memory budget (the original held until the reply, its pixels while they are worked
        on). The original is the image the turn continues from, so the turn's read has brought
        it already, unless the context budget left it out."""
        if plan.frame is None:
            return None
        data = _image_of(read, plan.frame.image_turn) or await framing.source_image(
            self._store, plan.frame.image_turn
        )
        if data is None:
            raise AttachmentUnavailable(messages.UNKNOWN_TURN)
        await memory.enter_async_context(self._memory.turns.reserve(turn_bytes([len(data)], len(data))))
        settings = read.settings
        caps = settings.caps or self._settings.capabilities
        # Zoomed out 2x, the canvas has 4 times the original's pixels.
        async with self._memory.decodes.reserve(framing.work_bytes(framing.image_size(data), 4.0)):
            return await asyncio.to_thread(framing.framed, plan.frame, data, caps.aspect_ratios)

    async def _remember_frame(
        self, request: TurnRequest, frame: FrameJob | None, stored: list[StoredTurn]
    ) -> None:
        """How a framed turn was framed, kept with its thread so Regenerate frames it again."""
        if frame is None:
            return
        scope, spec = SettingScope.for_thread(request.key), frame.frame.spec
        for turn in stored:
            await self._aftercare.now_or_later(
                "remember the framing",
                partial(self._store.set_setting, scope, framing.setting_name(turn.id), spec),
            )

    async def _composited(
        self, outcome: GenerationResult | BaseException, framed: Framed
    ) -> GenerationResult | BaseException:
        if not isinstance(outcome, GenerationResult):
            return outcome
        async with self._memory.decodes.reserve(framing.work_bytes(framed.base.size)):
            result = await asyncio.to_thread(framing.composited, outcome, framed)
        # The stored answer is the composite, not what the model made: the next turn cannot
        # continue the model's server-side history, so it sends the local history instead.
        content = result.model_content
        return replace(result, model_content=without_interaction(content)) if content else result

    def _drawn_with(self, request: GenerationRequest) -> ModelCapabilities:
        return (
            self._settings.capabilities_for(request.model) if request.model else self._settings.capabilities
        )

    async def _deliver(self, answered: Answered, sink: ReplySink) -> None:
        """Post the answer (every take of a variations turn, in order, together: the turn still
        holds its conversation). Which messages show which turn is recorded with the turn's
        finished claim (``bot.turns.pipeline``: the sink it is given remembers them)."""
        for reply in (answered.reply, *answered.more):
            await sink.send(reply)

    def _result(self, request: TurnRequest, outcome: GenerationResult | BaseException) -> GenerationResult:
        if isinstance(outcome, GenerationResult):
            return outcome
        log.error(
            "generation crashed",
            extra={"conversation": str(request.key), "error": type(outcome).__name__},
            exc_info=outcome,
        )
        return GenerationResult(Outcome.FAILED, messages.FAILED)

    async def _store_takes(
        self,
        request: TurnRequest,
        history: Sequence[StoredTurn],
        head: int | None,
        built: _Built,
        good: list[GenerationResult],
        settings: EffectiveSettings,
    ) -> list[StoredTurn]:
        """Each take is its own turn with the same parent (sibling branches), stored one after
        another; the head then goes back to take 1."""
        caps = settings.caps or self._settings.capabilities
        parent = history[-1].id if history else None
        stored: list[StoredTurn] = []
        expected = head
        for result in good:
            turn = await self._append(request, parent, expected, built, result, caps)
            stored.append(turn)
            expected = turn.id
        if len(stored) > 1:
            await self._store.move_head(request.key, stored[0].id, expected_head=expected)
        await self._remember_frame(request, built.frame, stored)
        return stored

    async def _read(self, request: TurnRequest, plan: TurnPlan) -> _Read | None:
        """The conversation's head, settings and the history the turn continues, with the images
        its request re-sends (None: the turn it continues was forgotten while it waited)."""
        if plan.source_turn is not None:
            source = await self._store.turn(plan.source_turn)
            if source is None or source.key != request.key:
                return None
        chosen: list[tuple[EffectiveSettings, ContextWindow]] = []

        def needed(stored: Mapping[str, str], history: Sequence[StoredTurn]) -> set[str]:
            settings = self._settings.resolved(stored)
            caps = settings.caps or self._settings.capabilities
            window = model_window(history, settings.model, self._context_max_images, caps.max_input_images)
            chosen.append((settings, window))  # a retried read appends again: the last is its own
            return {
                h for record in (*window.history, _user_content(plan, window, [])) for h in blob_refs(record)
            }

        try:
            # From the head, the head's branch ends at the head: one read gives both.
            context = await self._store.turn_context(
                request.key,
                upto=None if plan.from_head else plan.base,
                branch=plan.from_head or plan.base is not None,
                blobs=needed,
            )
        except ValueError:
            return None
        settings, window = chosen[-1]
        return _Read(context.head, context.history, settings, window, context.blobs)

    async def _load_image(self, ref: ImageRef) -> PreparedImage:
        started = time.monotonic()
        try:
            data = await ref.load()
        except AttachmentUnavailable as exc:
            watch.download_failed(exc.reason)
            watch.downloaded(time.monotonic() - started, exc.reason)
            raise
        except Exception as exc:  # an adapter's download failed in a way it did not translate
            watch.download_failed("error")
            watch.downloaded(time.monotonic() - started, "error")
            log.warning(
                "attachment download failed", extra={"file": ref.filename, "error": type(exc).__name__}
            )
            raise AttachmentUnavailable(messages.download_failed(ref.filename)) from exc
        watch.downloaded(time.monotonic() - started)
        return await prepare_image_async(data, ref.filename, self._image_limits, self._memory.decodes)

    def _build(
        self, plan: TurnPlan, read: _Read, prepared: list[PreparedImage], framed: Framed | None = None
    ) -> _Built:
        settings, window = read.settings, read.window
        new_blobs = [p.blob for p in prepared] + list(framed.blobs if framed is not None else ())
        user = _user_content(plan, window, new_blobs)
        known = {**read.blobs, **{b.sha256: b.data for b in new_blobs}}
        wanted = {h for record in (*window.history, user) for h in blob_refs(record)}
        request = GenerationRequest(
            history=window.history,
            user=user,
            blobs={h: known[h] for h in wanted if h in known},
            aspect_ratio=framed.aspect_ratio if framed is not None else settings.aspect_ratio,
            image_size=plan.image_size or settings.image_size,
            response_mode=settings.response_mode,
            thinking_level=plan.thinking_level or settings.thinking_level,
            model=settings.model,
        )
        user_refs = set(blob_refs(user))
        pinned = [Blob(r.mime_type, read.blobs[r.sha256]) for r in plan.references if r.sha256 in read.blobs]
        user_blobs = tuple(b for b in [*new_blobs, *pinned] if b.sha256 in user_refs)
        return _Built(request, window, user_blobs, read.head, read.history, settings, plan.frame)

    async def _append(
        self,
        request: TurnRequest,
        parent: int | None,
        expected_head: int | None,
        built: _Built,
        result: GenerationResult,
        caps: ModelCapabilities,
    ) -> StoredTurn:
        usage = replace(
            result.usage,
            cost_usd=caps.estimate_cost(result.usage, built.request.image_size),
        )
        turn = NewTurn(
            key=request.key,
            parent_id=parent,
            user_content=built.request.user,
            model_content=result.model_content or {},
            model=caps.model,
            author_id=request.author.id,
            usage=usage,
            blobs=(*built.user_blobs, *result.new_blobs),
        )
        stored = await self._store.append_turn(turn, expected_head=expected_head)
        if parent is None:  # a new conversation: its author started it (see bot.turns.forgetting)
            await self._aftercare.now_or_later(
                "note who started the conversation", lambda: self._on_first_turn(request.key, request.author)
            )
        return stored

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
class _Read:
    head: int | None
    history: list[StoredTurn]
    settings: EffectiveSettings
    window: ContextWindow
    blobs: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class _Built:
    request: GenerationRequest
    window: ContextWindow
    user_blobs: tuple[Blob, ...]
    head: int | None
    history: list[StoredTurn]
    settings: EffectiveSettings
    frame: FrameJob | None = None


def _image_of(read: _Read, turn_id: int) -> bytes | None:
    """The image of ``turn_id`` when the turn's read brought it (its branch, within the window)."""
    turn = next((t for t in reversed(read.history) if t.id == turn_id), None)
    found = framing.first_image(turn) if turn is not None else None
    return read.blobs.get(found[0]) if found is not None else None


def _user_content(plan: TurnPlan, window: ContextWindow, new_blobs: list[Blob]) -> ContentRecord:
    """The new user turn: the person's text and photos, or (regenerating) the stored one; either
    way led by the latest images when the context budget re-seeded the conversation."""
    if plan.original_user is None:
        images = [*window.seed_images, *((b.sha256, b.mime_type) for b in new_blobs)]
        return with_references(user_record(plan.text, images), plan.references)
    # A turn that was itself seeded (the first after a switch of model) already leads with them.
    already = set(blob_refs(plan.original_user))
    seeds = [seed for seed in window.seed_images if seed[0] not in already]
    if not seeds:
        return plan.original_user
    seeded = user_record("", seeds)
    return {**plan.original_user, "parts": [*seeded["parts"], *plan.original_user["parts"]]}


async def _still_holds(fence: TurnFence) -> bool:
    """Checked again just before posting; a database gone again by then cannot take the image
    back from the person, so it is posted as it is."""
    try:
        return await fence.holds()
    except StoreUnavailable:
        return True
