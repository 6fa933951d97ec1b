"""One pipeline for every kind of turn: order, claim, refuse, plan, admit, run exclusively, reply."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from bot.entry.access import AccessPolicy
from bot.gemini.model_choice import store_model
from bot.limits.quotas import RateLimiter
from bot.observing import watch
from bot.ports import Fence, OrderTicket, ReplySink, TurnFence, TurnOrder
from bot.text import messages
from bot.text.conversation_settings import ConversationSettings
from bot.text.settings import EffectiveSettings
from bot.turns.answers import Failed, TakenOver
from bot.turns.generation_step import GenerationStep
from bot.turns.plan import Refusal, TurnPlan, TurnPlanner
from bot.turns.request import TurnRequest
from bot.vocabulary import ConversationKey, Reply, SettingName, SettingScope
from storage.aftercare import Aftercare
from storage.errors import HeadMoved, StoreUnavailable
from storage.protocol import Store

log = logging.getLogger(__name__)


class TurnStatus(StrEnum):
    """How a turn ended, for logs and tests."""

    ANSWERED = "answered"
    FAILED = "failed"
    REJECTED = "rejected"
    SETTINGS_ONLY = "settings_only"
    DUPLICATE = "duplicate"
    REFUSED = "refused"  # not on an allow-list
    LIMITED = "limited"  # a rate limit, the spend cap or the queue bound
    # Another process announced it as cut off and the conversation moved on: nothing is posted.
    TAKEN_OVER = "taken_over"


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What handling one turn did."""

    status: TurnStatus
    reply: Reply | None = None
    turn_id: int | None = None


class _Answering:
    """The turn's sink, remembering whether the person has had their answer, and which posted
    messages show which stored turn (recorded with the finished claim, in one transaction)."""

    def __init__(self, sink: ReplySink) -> None:
        self._sink = sink
        self.said = False
        self.posted: list[tuple[str, int]] = []

    def working(self) -> AbstractAsyncContextManager[None]:
        return self._sink.working()

    async def send(self, reply: Reply) -> Sequence[str]:
        with _timed("reply"):
            posted = await self._sink.send(reply)
        self.said = True
        if reply.turn_id is not None:
            self.posted += [(message_id, reply.turn_id) for message_id in posted]
        return posted

    async def notice(self, text: str) -> None:
        with _timed("notice"):
            await self._sink.notice(text)


@contextmanager
def _timed(what: str) -> Iterator[None]:
    """Tell the turn's observer how long posting took (``bot.observing.watch.posted``)."""
    started, failed = time.monotonic(), True
    try:
        yield
        failed = False
    finally:
        watch.posted(what, time.monotonic() - started, failed)


class TurnPipeline:
    """Every turn takes its place in its conversation's order first, before any await, so work
    that arrives later can never overtake it; then the steps below run in sequence."""

    def __init__(
        self,
        *,
        store: Store,
        order: TurnOrder,
        access: AccessPolicy,
        limiter: RateLimiter,
        planner: TurnPlanner,
        step: GenerationStep,
        settings: ConversationSettings,
        aftercare: Aftercare,
        fence: Fence,
    ) -> None:
        self._store = store
        self._aftercare = aftercare
        self._fence = fence
        self._order = order
        self._access = access
        self._limiter = limiter
        self._planner = planner
        self._step = step
        self._settings = settings

    async def run(
        self, request: TurnRequest, sink: ReplySink, ticket: OrderTicket | None = None
    ) -> TurnResult:
        """``ticket``: the place the message took on arrival (see bot.entry.routing); taken here if none.

        Whatever fails, the person gets one answer: an image, or one sentence. Until the claim
        is written a database outage only delays the turn (the store waits it out); past
        ``DATABASE_OUTAGE_S`` the message gets one sentence and stays unclaimed."""
        key = request.key
        ticket = ticket or self._order.enter(key, request.position)
        answer = _Answering(sink)
        try:
            try:
                # Claimed on arrival when deciding it was a turn took a look at the store anyway.
                claim = request.claim or await self._store.claim_turn(
                    key, request.request_id, token=uuid.uuid4().hex
                )
            except StoreUnavailable:
                log.warning(
                    "message not taken: the database stayed away",
                    extra={"conversation": str(key), "echo": request.echo},
                )
                if request.echo:  # the message's other delivery says it
                    return TurnResult(TurnStatus.FAILED)
                return await self._reject(answer, Refusal(messages.STORAGE_UNREACHABLE), TurnStatus.FAILED)
            if not claim.claimed:
                log.info("duplicate turn ignored", extra={"conversation": str(key)})
                return TurnResult(TurnStatus.DUPLICATE)
            fence = self._fence.for_turn(key, request.request_id)
            settings = self._settings.resolved(claim.settings)
            try:
                work = self._claimed(request, settings, ticket, answer, fence)
                return await self._finishing(request, answer, work)
            except Exception as exc:  # the database or a bug: the person still gets one sentence
                unreachable = isinstance(exc, StoreUnavailable)
                log.error("turn crashed", extra={"conversation": str(key)}, exc_info=not unreachable)
                if answer.said:  # they have their answer; what failed after it is not theirs
                    return TurnResult(TurnStatus.FAILED)
                refusal = Refusal(messages.STORAGE_UNREACHABLE if unreachable else messages.FAILED)
                return await self._reject(answer, refusal, TurnStatus.FAILED)
        finally:
            ticket.leave()

    async def _finishing(
        self, request: TurnRequest, answer: _Answering, work: Awaitable[TurnResult]
    ) -> TurnResult:
        """Mark a claimed turn finished however it ends, recording which messages show its
        stored turns in the same transaction, except when it is cut off (cancelled at shutdown,
        or the process dies): then it stays unfinished and is announced after the restart (see
        ``bot.turns.recovery``). With the database away, the mark waits in the background
        (``storage.aftercare``)."""
        key = request.key
        try:
            return await work
        finally:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                await self._aftercare.now_or_later(
                    "finish the claim",
                    partial(
                        self._store.finish_message,
                        key.platform,
                        key.channel,
                        request.request_id,
                        answer.posted,
                    ),
                )
            elif answer.posted:  # cut off after posting: replying to what was posted still works
                for turn_id in dict.fromkeys(turn for _, turn in answer.posted):
                    ids = [message for message, turn in answer.posted if turn == turn_id]
                    self._aftercare.soon(
                        "record the posted messages",
                        partial(self._store.record_posted, key.platform, key.channel, ids, turn_id),
                    )

    async def _claimed(
        self,
        request: TurnRequest,
        settings: EffectiveSettings,
        ticket: OrderTicket,
        sink: ReplySink,
        fence: TurnFence,
    ) -> TurnResult:
        """``settings``: the conversation's as the claim read them, for the plan; the turn reads
        them again once it holds the conversation (an earlier turn's flags may change them)."""
        key, author = request.key, request.author
        decision = self._access.check(key, author)
        if not decision.allowed:
            log.info("turn refused by allow-list", extra={"conversation": str(key), "author": author.id})
            if decision.message:
                await sink.notice(decision.message)
            return TurnResult(TurnStatus.REFUSED)
        plan = await self._planner.plan(request, settings)
        if isinstance(plan, Refusal):
            return await self._reject(sink, plan)
        if plan.note is not None:
            # Settings change in posting order too: "--ar 16:9" sent after a prompt must not
            # reshape the image that prompt is still waiting to draw.
            async with ticket:
                return await self._noted(key, plan, sink)
        admin = self._access.is_admin(key.platform, author.id)
        async with self._limiter.admit(key, author, admin=admin, images=plan.takes) as refusal:
            if refusal is not None:
                return await self._reject(sink, Refusal(refusal, limited=True))
            if ticket.ahead():
                await sink.notice(messages.QUEUED)
            async with ticket, sink.working():
                return await self._exclusive(request, plan, ticket, sink, fence)

    async def _noted(self, key: ConversationKey, plan: TurnPlan, sink: ReplySink) -> TurnResult:
        """A turn with nothing to draw: settings, or Continue from this one (a move of the head)."""
        if plan.move_head is not None:
            info = await self._store.conversation(key)
            try:
                await self._store.move_head(
                    key, plan.move_head, expected_head=info.head_turn_id if info is not None else None
                )
            except ValueError:  # forgotten while the click waited
                return await self._reject(sink, Refusal(messages.UNKNOWN_TURN))
            except HeadMoved:  # another process stored a turn in between
                return await self._reject(sink, Refusal(messages.HEAD_MOVED))
        notes = await self._apply_settings(key, plan)
        reply = Reply.note(" ".join([plan.note or "", *notes]).strip())
        await sink.send(reply)
        return TurnResult(TurnStatus.SETTINGS_ONLY, reply, plan.move_head)

    async def _exclusive(
        self, request: TurnRequest, plan: TurnPlan, ticket: OrderTicket, sink: ReplySink, fence: TurnFence
    ) -> TurnResult:
        if not await fence.holds():
            # Announced as cut off while this process was paused or cut off: the person was asked
            # to send it again, so it is not started now.
            log.warning("turn taken over before it started", extra={"conversation": str(request.key)})
            return TurnResult(TurnStatus.TAKEN_OVER)
        notes = await self._apply_settings(request.key, plan)
        try:
            outcome = await self._step.run(request, plan, sink, late=ticket.late, notes=notes, fence=fence)
        except HeadMoved:
            # Only another process can move the head while this one holds the conversation; the
            # answer is not stored, so the history stays linear.
            log.warning("conversation head moved during a turn", extra={"conversation": str(request.key)})
            return await self._reject(sink, Refusal(messages.HEAD_MOVED))
        if isinstance(outcome, Refusal):
            return await self._reject(sink, outcome)
        if isinstance(outcome, Failed):
            return await self._reject(sink, Refusal(outcome.message), status=TurnStatus.FAILED)
        if isinstance(outcome, TakenOver):
            return TurnResult(TurnStatus.TAKEN_OVER)
        return TurnResult(TurnStatus.ANSWERED, outcome.reply, outcome.turn_id)

    async def _apply_settings(self, key: ConversationKey, plan: TurnPlan) -> list[str]:
        """Store the plan's settings for the thread; returns a sentence per setting a switch of
        model reset."""
        scope = SettingScope.for_thread(key)
        notes: list[str] = []
        for name, value in plan.settings:
            if name is SettingName.MODEL:
                notes += await store_model(self._store, scope, value, lambda: self._settings.effective(key))
            else:
                await self._store.set_setting(scope, name.value, value)
        return notes

    async def _reject(
        self, sink: ReplySink, refusal: Refusal, status: TurnStatus | None = None
    ) -> TurnResult:
        reply = Reply.error(refusal.message)
        await sink.send(reply)
        if status is None:
            status = TurnStatus.LIMITED if refusal.limited else TurnStatus.REJECTED
        return TurnResult(status, reply)
