"""The conversation service: turns in, replies out, one persisted Gemini history per thread."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.access import AccessPolicy
from bot.capabilities import ModelCapabilities
from bot.config import Config
from bot.content import Blob, ContentRecord, blob_refs, user_record
from bot.context_budget import select_context
from bot.flags import parse_flags
from bot.forgetting import ForgetResult, Forgetting
from bot.gemini import GeminiEngine, GenerationRequest, GenerationResult
from bot.generation_gate import GenerationGate, QueueFull
from bot.heap import HeapTrimmer, freeze_startup_objects, tune_allocator
from bot.images import (
    ImageLimits,
    ImageRejected,
    PreparedImage,
    check_declared,
    prepare_image_async,
    too_many_images_message,
)
from bot.limits import LimitPolicy, RateLimiter
from bot.locks import KeyedLocks
from bot.logs import log_context
from bot.settings import (
    EffectiveSettings,
    SettingError,
    resolve,
    validate_aspect_ratio,
    validate_image_size,
    validate_response_mode,
)
from bot.usage_report import usage_report
from bot.vocabulary import (
    Action,
    ActionKind,
    Author,
    ConversationKey,
    ImagePart,
    ImageRef,
    Reply,
    ReplySink,
    ScopeLevel,
    SettingName,
    SettingScope,
    Turn,
)
from storage.protocol import Store, StoredTurn

log = logging.getLogger(__name__)

EMPTY_PROMPT_MESSAGE = (
    "Tell me what to draw, for example: a red bicycle at dawn. Add --ar 16:9 to change the shape."
)
QUEUED_MESSAGE = "Queued: I'll start on this as soon as the image before it is finished."
FAILED_MESSAGE = "Something went wrong on my side while making that image; please try again."
RETENTION_SWEEP_S = 3600.0
# Turns cut off longer ago than this are not mentioned after a restart; nobody waits that long.
INTERRUPTED_WINDOW_S = 6 * 3600.0
INTERRUPTED_MESSAGE = (
    "I was restarted before I could finish this one; if no image came, please send it again."
)


def prompt_too_long_message(length: int, limit: int) -> str:
    return f"That prompt is {length:,} characters long; please keep it under {limit:,} characters."


def queue_position_message(position: int) -> str:
    return f"You're number {position} in line for an image; yours starts as soon as a slot frees up."


UNKNOWN_TURN_MESSAGE = (
    "That image is no longer in this conversation's history (it may have been forgotten); "
    "send a new prompt instead."
)


class AttachmentUnavailable(Exception):
    """Raised by an adapter's ``ImageRef.load`` when a file cannot be downloaded."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class TurnStatus(StrEnum):
    """How a turn ended, for logs and tests."""

    ANSWERED = "answered"
    FAILED = "failed"
    REJECTED = "rejected"
    SETTINGS_ONLY = "settings_only"
    DUPLICATE = "duplicate"
    REFUSED = "refused"  # not on an allow-list
    LIMITED = "limited"  # a rate limit, the spend cap or the queue bound


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What handling one turn did."""

    status: TurnStatus
    reply: Reply | None = None
    turn_id: int | None = None


class ConversationService:
    """Maps each conversation key to a persisted Gemini history and does all of a turn's work.

    One turn at a time per conversation (queued turns wait their turn); different
    conversations run fully concurrently. History is written only after a valid model answer,
    in one transaction, so a failed, blocked or interrupted turn leaves it exactly as it was.
    """

    def __init__(self, *, config: Config, store: Store, engine: GeminiEngine) -> None:
        self._config = config
        self._store = store
        self._engine = engine
        self._locks = KeyedLocks()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._image_limits = ImageLimits(
            max_bytes=config.max_attachment_bytes, max_side=config.max_input_side
        )
        self._access = AccessPolicy.from_config(config)
        self._limiter = RateLimiter(LimitPolicy.from_config(config), store)
        self._gate = GenerationGate(config.max_concurrent_generations, config.max_queued_turns)
        self._forgetting = Forgetting(store, self._locks.hold, self._access)
        # Turns churn through tens of MB of image buffers: reuse them while busy, release when quiet.
        tune_allocator()
        self._heap = HeapTrimmer()

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._engine.capabilities

    @property
    def store(self) -> Store:
        return self._store

    async def is_conversation(self, key: ConversationKey) -> bool:
        """Whether the bot has history for ``key`` (adapters ask this, not the platform cache)."""
        return await self._store.conversation(key) is not None

    async def effective_settings(self, key: ConversationKey) -> EffectiveSettings:
        return resolve(await self._store.settings(key), self._config, self.capabilities)

    async def change_setting(self, scope: SettingScope, name: SettingName, value: str) -> str:
        """Validate and store a setting; returns a confirmation sentence or raises SettingError."""
        caps = self.capabilities
        if name is SettingName.ASPECT_RATIO:
            cleaned = validate_aspect_ratio(value, caps)
            label = f"Aspect ratio is now {cleaned}"
        elif name is SettingName.IMAGE_SIZE:
            cleaned = validate_image_size(value, caps)
            label = f"Image size is now {cleaned}"
        else:
            mode = validate_response_mode(value)
            cleaned = mode.value
            label = "Replies are now " + ("images only" if cleaned == "image_only" else "text and images")
        await self._store.set_setting(scope, name.value, cleaned)
        where = {
            ScopeLevel.THREAD: "this conversation",
            ScopeLevel.CHANNEL: "new conversations in this channel",
            ScopeLevel.GLOBAL: "everywhere",
        }[scope.level]
        return f"{label} for {where}."

    async def forget(self, key: ConversationKey) -> int:
        """Delete a conversation's history and images, whoever asks (console, retention)."""
        return await self._forgetting.forget(key)

    async def may_forget(
        self, key: ConversationKey, author: Author, *, moderator: bool = False, opener: str | None = None
    ) -> bool:
        """Whether ``author`` may forget ``key``: see bot.forgetting for the rule."""
        return await self._forgetting.may_forget(key, author, moderator=moderator, opener=opener)

    async def forget_as(
        self, key: ConversationKey, author: Author, *, moderator: bool = False, opener: str | None = None
    ) -> ForgetResult:
        """Forget ``key`` for a person in a shared place, or say who may."""
        return await self._forgetting.forget_as(key, author, moderator=moderator, opener=opener)

    async def remember_reply(self, key: ConversationKey, message_ids: Sequence[str], turn_id: int) -> None:
        """Record the platform messages that show a turn's reply, so replying to one of them
        continues from that turn."""
        await self._store.record_posted(key.platform, key.channel, message_ids, turn_id)

    async def turn_for_message(self, key: ConversationKey, message_id: str) -> int | None:
        """The turn a platform message of the bot shows, if it is one of this conversation's."""
        turn_id = await self._store.turn_for_message(key.platform, key.channel, message_id)
        if turn_id is None:
            return None
        turn = await self._store.turn(turn_id)
        return turn_id if turn is not None and turn.key == key else None

    @property
    def in_flight(self) -> int:
        """Turns being worked on or waiting for their conversation right now."""
        return self._in_flight

    async def drain(self, grace_s: float) -> bool:
        """Wait up to ``grace_s`` for turns in flight to finish; True if none are left."""
        try:
            async with asyncio.timeout(grace_s):
                while self._in_flight:
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            return False
        return True

    @contextmanager
    def _counted(self) -> Iterator[None]:
        freeze_startup_objects()  # by the first turn every module and client is loaded
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            self._heap.poke()

    async def handle_turn(self, turn: Turn, sink: ReplySink) -> TurnResult:
        """Run one user turn end to end and post the outcome through ``sink``."""
        with self._counted(), log_context(conversation=str(turn.key), message_id=turn.message_id):
            return await self._handle_turn(turn, sink)

    async def _handle_turn(self, turn: Turn, sink: ReplySink) -> TurnResult:
        key = turn.key
        if not await self._store.claim_message(key.platform, key.channel, turn.message_id, key):
            log.info(
                "duplicate turn ignored", extra={"conversation": str(key), "message_id": turn.message_id}
            )
            return TurnResult(TurnStatus.DUPLICATE)
        return await self._finishing(key, turn.message_id, self._claimed_turn(turn, sink))

    async def _finishing(
        self, key: ConversationKey, message_id: str, work: Awaitable[TurnResult]
    ) -> TurnResult:
        """Run a claimed turn and mark it finished however it ends, except when it is cut off
        (cancelled at shutdown, or the process dies): then it stays unfinished, and the person
        is told after the restart (see ``interrupted_turns``)."""
        try:
            return await work
        finally:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                await self._store.finish_message(key.platform, key.channel, message_id)

    async def _claimed_turn(self, turn: Turn, sink: ReplySink) -> TurnResult:
        key = turn.key
        refused = await self._refuse_stranger(key, turn.author, sink)
        if refused is not None:
            return refused

        caps = self.capabilities
        parsed = parse_flags(turn.text, caps)
        if len(parsed.text) > self._config.max_prompt_chars:
            return await self._reject(
                sink, prompt_too_long_message(len(parsed.text), self._config.max_prompt_chars)
            )
        if parsed.refusal:
            return await self._reject(sink, parsed.refusal)
        scope = SettingScope.for_thread(key)
        if parsed.aspect_ratio:
            await self._store.set_setting(scope, SettingName.ASPECT_RATIO.value, parsed.aspect_ratio)
        if parsed.image_size:
            await self._store.set_setting(scope, SettingName.IMAGE_SIZE.value, parsed.image_size)
        if not parsed.text and not turn.images:
            if parsed.has_settings:
                reply = Reply.note(_settings_confirmation(parsed.aspect_ratio, parsed.image_size))
                await sink.send(reply)
                return TurnResult(TurnStatus.SETTINGS_ONLY, reply)
            return await self._reject(sink, EMPTY_PROMPT_MESSAGE)

        if len(turn.images) > caps.max_input_images:
            return await self._reject(
                sink, too_many_images_message(len(turn.images), caps.max_input_images, caps.model)
            )
        try:
            for ref in turn.images:
                check_declared(ref.filename, ref.size, self._image_limits)
        except ImageRejected as exc:
            return await self._reject(sink, exc.user_message)

        async with self._admitted(key, turn.author) as refusal:
            if refusal is not None:
                return await self._reject(sink, refusal, status=TurnStatus.LIMITED)
            return await self._run_turn(turn, parsed.text, sink)

    async def _run_turn(self, turn: Turn, text: str, sink: ReplySink) -> TurnResult:
        key = turn.key
        if self._locks.waiting(key):
            await sink.notice(QUEUED_MESSAGE)
        async with self._locks.hold(key), sink.working():
            try:
                prepared = [await self._load_image(ref) for ref in turn.images]
            except (ImageRejected, AttachmentUnavailable) as exc:
                return await self._reject(sink, exc.user_message)
            history = await self._history(key, turn.continue_from)
            if history is None:
                return await self._reject(sink, UNKNOWN_TURN_MESSAGE)
            blobs = [p.blob for p in prepared]
            return await self._generate(
                key=key,
                history=history,
                text=text,
                images=[(b.sha256, b.mime_type) for b in blobs],
                new_blobs=blobs,
                author=turn.author,
                sink=sink,
            )

    async def regenerate(
        self,
        key: ConversationKey,
        turn_id: int,
        author: Author,
        sink: ReplySink,
        request_id: str,
        aspect_ratio: str | None = None,
    ) -> TurnResult:
        """Run a stored turn's prompt again from the same point (a new branch), optionally at a
        new aspect ratio, which then becomes the conversation's setting."""
        with self._counted(), log_context(conversation=str(key), message_id=request_id):
            return await self._regenerate(key, turn_id, author, sink, request_id, aspect_ratio)

    async def _regenerate(
        self,
        key: ConversationKey,
        turn_id: int,
        author: Author,
        sink: ReplySink,
        request_id: str,
        aspect_ratio: str | None,
    ) -> TurnResult:
        if not await self._store.claim_message(key.platform, key.channel, request_id, key):
            return TurnResult(TurnStatus.DUPLICATE)
        return await self._finishing(
            key, request_id, self._claimed_regeneration(key, turn_id, author, sink, aspect_ratio)
        )

    async def _claimed_regeneration(
        self,
        key: ConversationKey,
        turn_id: int,
        author: Author,
        sink: ReplySink,
        aspect_ratio: str | None,
    ) -> TurnResult:
        refused = await self._refuse_stranger(key, author, sink)
        if refused is not None:
            return refused
        if aspect_ratio is not None:
            try:
                validate_aspect_ratio(aspect_ratio, self.capabilities)
            except SettingError as exc:
                return await self._reject(sink, exc.user_message)
            # Ownership before any side effect: a refused control must not change the ratio.
            original = await self._store.turn(turn_id)
            if original is None or original.key != key:
                return await self._reject(sink, UNKNOWN_TURN_MESSAGE)
            await self.change_setting(SettingScope.for_thread(key), SettingName.ASPECT_RATIO, aspect_ratio)
        async with self._admitted(key, author) as refusal:
            if refusal is not None:
                return await self._reject(sink, refusal, status=TurnStatus.LIMITED)
            return await self._run_regeneration(key, turn_id, author, sink)

    async def _run_regeneration(
        self, key: ConversationKey, turn_id: int, author: Author, sink: ReplySink
    ) -> TurnResult:
        if self._locks.waiting(key):
            await sink.notice(QUEUED_MESSAGE)
        async with self._locks.hold(key), sink.working():
            original = await self._store.turn(turn_id)
            if original is None or original.key != key:
                return await self._reject(sink, UNKNOWN_TURN_MESSAGE)
            history = await self._history(key, original.parent_id) if original.parent_id else []
            if history is None:
                return await self._reject(sink, UNKNOWN_TURN_MESSAGE)
            return await self._generate(
                key=key,
                history=history,
                text=None,
                images=[],
                new_blobs=[],
                author=author,
                sink=sink,
                user_content=original.user_content,
            )

    async def _refuse_stranger(
        self, key: ConversationKey, author: Author, sink: ReplySink
    ) -> TurnResult | None:
        """None when ``author`` may use the bot here; otherwise tell them once (or not at all)."""
        decision = self._access.check(key, author)
        if decision.allowed:
            return None
        log.info("turn refused by allow-list", extra={"conversation": str(key), "author": author.id})
        if decision.message:
            await sink.notice(decision.message)
        return TurnResult(TurnStatus.REFUSED)

    def _admitted(self, key: ConversationKey, author: Author) -> AbstractAsyncContextManager[str | None]:
        return self._limiter.admit(key, author, admin=self._access.is_admin(key.platform, author.id))

    def is_admin(self, platform: str, user_id: str) -> bool:
        return self._access.is_admin(platform, user_id)

    async def usage_report(self, key: ConversationKey, author: Author) -> str:
        """What ``author`` made today and this month with estimated cost; admins get totals."""
        return await usage_report(
            self._store, self._config, key, author, admin=self.is_admin(key.platform, author.id)
        )

    async def interrupted_turns(
        self, platform: str, window_s: float = INTERRUPTED_WINDOW_S
    ) -> list[tuple[ConversationKey, str]]:
        """Turns of ``platform`` that a crash or a stop cut off in the last ``window_s``, as
        (conversation, message id), each returned once: an adapter calls this when it starts
        and tells each person INTERRUPTED_MESSAGE in that conversation."""
        found = await self._store.unfinished_messages(platform, time.time() - window_s)
        for key, message_id in found:
            await self._store.finish_message(key.platform, key.channel, message_id)
        if found:
            log.info("turns interrupted by a restart", extra={"platform": platform, "turns": len(found)})
        return found

    async def apply_retention(self) -> int:
        """Forget conversations idle for longer than RETENTION_DAYS; returns how many."""
        if not self._config.retention_days:
            return 0
        cutoff = time.time() - self._config.retention_days * 86400
        forgotten = 0
        while keys := await self._store.idle_conversations(cutoff):
            for key in keys:
                await self.forget(key)
                forgotten += 1
        if forgotten:
            log.info("retention forgot idle conversations", extra={"conversations": forgotten})
        return forgotten

    async def run_retention(self) -> None:
        """Apply retention now and then hourly, until cancelled."""
        while True:
            try:
                await self.apply_retention()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(RETENTION_SWEEP_S)

    async def _history(self, key: ConversationKey, upto: int | None) -> list[StoredTurn] | None:
        try:
            return await self._store.history(key, upto)
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
            raise AttachmentUnavailable(f"I couldn't download {ref.filename}; attach it again.") from exc
        return await prepare_image_async(data, ref.filename, self._image_limits)

    async def _generate(
        self,
        *,
        key: ConversationKey,
        history: Sequence[StoredTurn],
        text: str | None,
        images: list[tuple[str, str]],
        new_blobs: list[Blob],
        author: Author,
        sink: ReplySink,
        user_content: ContentRecord | None = None,
    ) -> TurnResult:
        started = time.monotonic()
        settings = await self.effective_settings(key)
        window = select_context(history, self._config.context_max_images)
        if user_content is None:
            user_content = user_record(text or "", [*window.seed_images, *images])
        elif window.seed_images:
            seeded = user_record("", list(window.seed_images))
            user_content = {**user_content, "parts": [*seeded["parts"], *user_content["parts"]]}
        known = {b.sha256: b.data for b in new_blobs}
        wanted = {h for record in (*window.history, user_content) for h in blob_refs(record)}
        known.update(await self._store.load_blobs(wanted - known.keys()))
        request = GenerationRequest(
            history=window.history,
            user=user_content,
            blobs=known,
            aspect_ratio=settings.aspect_ratio,
            image_size=settings.image_size,
            response_mode=settings.response_mode,
        )

        async def queued(position: int) -> None:
            await sink.notice(queue_position_message(position))

        try:
            async with self._gate.slot(f"{key.platform}:{author.id}", queued):
                result = await self._engine.generate(request)
        except QueueFull as exc:
            return await self._reject(sink, exc.user_message, status=TurnStatus.LIMITED)
        except Exception:
            log.exception("generation crashed", extra={"conversation": str(key)})
            return await self._reject(sink, FAILED_MESSAGE, status=TurnStatus.FAILED)
        if not result.ok or result.model_content is None:
            self._log_turn(key, None, result, started, window.dropped_turns)
            return await self._reject(sink, result.message or FAILED_MESSAGE, status=TurnStatus.FAILED)
        user_refs = set(blob_refs(user_content))
        user_blobs = [b for b in new_blobs if b.sha256 in user_refs]
        usage = replace(
            result.usage,
            cost_usd=self.capabilities.estimate_cost(
                result.usage.images_generated, result.usage.prompt_tokens
            ),
        )
        stored = await self._store.append_turn(
            key,
            history[-1].id if history else None,
            user_content,
            result.model_content,
            [*user_blobs, *result.new_blobs],
            self.capabilities.model,
            usage,
            author.id,
        )
        if not history:
            await self._forgetting.note_first_turn(key, author)
        self._log_turn(key, stored.id, result, started, window.dropped_turns)
        reply = Reply(parts=result.parts, turn_id=stored.id, actions=self._actions(stored.id, result))
        await sink.send(reply)
        return TurnResult(TurnStatus.ANSWERED, reply, stored.id)

    def _actions(self, turn_id: int, result: GenerationResult) -> tuple[Action, ...]:
        if not any(isinstance(p, ImagePart) for p in result.parts):
            return (Action(ActionKind.FORGET, turn_id),)
        return (
            Action(ActionKind.REGENERATE, turn_id),
            Action(ActionKind.ASPECT_RATIO, turn_id, self.capabilities.aspect_ratios),
            Action(ActionKind.FORGET, turn_id),
        )

    async def _reject(
        self, sink: ReplySink, message: str, status: TurnStatus = TurnStatus.REJECTED
    ) -> TurnResult:
        reply = Reply.error(message)
        await sink.send(reply)
        return TurnResult(status, reply)

    def _log_turn(
        self,
        key: ConversationKey,
        turn_id: int | None,
        result: GenerationResult,
        started: float,
        dropped: int,
    ) -> None:
        usage = result.usage
        log.info(
            "turn finished",
            extra={
                "conversation": str(key),
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


def _settings_confirmation(aspect: str | None, size: str | None) -> str:
    changes = []
    if aspect:
        changes.append(f"aspect ratio {aspect}")
    if size:
        changes.append(f"image size {size}")
    return f"This conversation now uses {' and '.join(changes)}; send a prompt to make an image."
