"""The conversation service: the core's one entry point for adapters, wiring the turn pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from bot.composition import patience_for
from bot.config import Config
from bot.entry.access import AccessPolicy
from bot.entry.commands import Command, CommandName
from bot.entry.dialogue import Dialogue
from bot.entry.routing import Inbound, Router
from bot.gemini import GeminiEngine
from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.model_choice import allowed_models
from bot.images.budget import ImageMemory
from bot.images.checks import ImageLimits
from bot.limits.quotas import LimitPolicy, RateLimiter, Reservations
from bot.logs import log_context
from bot.text import messages
from bot.text.settings import EffectiveSettings, resolve
from bot.turns.fence import Fence, SoleProcess
from bot.turns.forgetting import ForgetResult, Forgetting
from bot.turns.gate import GenerationGate
from bot.turns.generation_step import GenerationStep
from bot.turns.in_flight import InFlight
from bot.turns.order import LocalTurnOrder, OrderTicket, TurnOrder
from bot.turns.patient_store import PatientStore
from bot.turns.pipeline import TurnPipeline, TurnResult, TurnStatus
from bot.turns.plan import TurnPlanner
from bot.turns.recovery import INTERRUPTED_WINDOW_S, Tell, announce_interrupted
from bot.turns.request import TurnRequest
from bot.vocabulary import (
    AttachmentUnavailable,
    Author,
    ConversationKey,
    Position,
    ReplySink,
    SettingName,
    SettingScope,
    Turn,
)
from storage.aftercare import Aftercare
from storage.patience import Patience
from storage.protocol import Store

# Names adapters and tests import from here.
EMPTY_PROMPT_MESSAGE = messages.EMPTY_PROMPT
QUEUED_MESSAGE = messages.QUEUED
FAILED_MESSAGE = messages.FAILED
INTERRUPTED_MESSAGE = messages.INTERRUPTED
UNKNOWN_TURN_MESSAGE = messages.UNKNOWN_TURN
prompt_too_long_message = messages.prompt_too_long
queue_position_message = messages.queue_position

__all__ = [
    "AttachmentUnavailable",
    "ConversationService",
    "TurnResult",
    "TurnStatus",
]


class ConversationService:
    """Maps each conversation key to a persisted Gemini history and does all of a turn's work.

    Turns of one conversation run one at a time in the order people posted them (``order``, an
    injected coordinator); different conversations run fully concurrently. History is written
    only after a valid model answer, in one transaction, so a failed, blocked or interrupted turn
    leaves it exactly as it was.
    """

    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        engine: GeminiEngine,
        order: TurnOrder | None = None,
        reservations: Reservations | None = None,
        in_flight: InFlight | None = None,
        fence: Fence | None = None,
        patience: Patience | None = None,
        aftercare: Aftercare | None = None,
    ) -> None:
        self._config = config
        self._patience = patience if patience is not None else patience_for(config)
        self._aftercare = aftercare if aftercare is not None else Aftercare()
        # Every store call of the core waits out a database outage (see storage.patience).
        store = PatientStore(store, self._patience)  # type: ignore[assignment]
        self._store = store
        self._engine = engine
        # Not ``order or ...``: an idle LocalTurnOrder is empty, so falsy.
        self._order = order if order is not None else LocalTurnOrder(config.storage.turn_order_settle_s)
        self._in_flight = in_flight or InFlight()
        self._access = AccessPolicy.from_config(config)
        self._router = Router(store, self._order)
        # Forget waits for the conversation's earlier turns, like any turn posted before it.
        self._forgetting = Forgetting(store, lambda key: self._order.enter(key, Position.now()), self._access)
        limits = ImageLimits(
            max_bytes=config.images.max_attachment_bytes, max_side=config.images.max_input_side
        )
        self._pipeline = TurnPipeline(
            store=store,
            order=self._order,
            access=self._access,
            limiter=RateLimiter(
                LimitPolicy.from_config(config), store, reservations=reservations, patience=self._patience
            ),
            planner=TurnPlanner(
                store=store,
                settings=self.effective_settings,
                allowed_models=self.allowed_models,
                image_limits=limits,
                max_prompt_chars=config.limits.max_prompt_chars,
            ),
            step=GenerationStep(
                store=store,
                engine=engine,
                gate=GenerationGate(config.limits.max_concurrent_generations, config.limits.max_queued_turns),
                image_limits=limits,
                context_max_images=config.limits.context_max_images,
                capabilities=lambda: self.capabilities,
                memory=ImageMemory.of(config.images.memory_bytes),
                on_first_turn=self._forgetting.note_first_turn,
                aftercare=self._aftercare,
            ),
            settings=self.effective_settings,
            aftercare=self._aftercare,
            fence=fence or SoleProcess(),
        )
        self._dialogue = self._build_dialogue()

    def _build_dialogue(self) -> Dialogue:
        return Dialogue(
            store=self._store,
            config=self._config,
            access=self._access,
            forgetting=self._forgetting,
            settings=self.effective_settings,
            models=lambda: self.allowed_models,
            capabilities=lambda: self.capabilities,
        )

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._engine.capabilities

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """Models people may pick per conversation, the default first."""
        return allowed_models(self._config, self._engine.model)

    @property
    def store(self) -> Store:
        return self._store

    @property
    def dialogue(self) -> Dialogue:
        """The conversation commands (settings, takes, forget, usage, help), neutral in and out."""
        return self._dialogue

    async def drain(self, grace_s: float) -> bool:
        """Wait up to ``grace_s`` for turns in flight, then their bookkeeping, to finish; True
        if none are left."""
        loop = asyncio.get_running_loop()
        until = loop.time() + grace_s
        turns_done = await self._in_flight.drain(grace_s)
        return await self._aftercare.drain(max(0.0, until - loop.time())) and turns_done

    async def receive(
        self, message: Inbound, sink: ReplySink, on_turn: Callable[[], None] | None = None
    ) -> TurnResult | None:
        """A person's message, handed over once: decide whether it is a turn (see bot.entry.routing)
        and, if so, run it end to end; None when it is not a turn.

        Its place in its conversation's order is taken on arrival, before any await, so later
        messages never overtake it, and left however the message ends. ``on_turn`` runs once
        the message is known to be a turn, before the turn itself does."""
        request = TurnRequest.prompt(message.turn)
        decision = await self._router.consider(message, request.position)
        try:
            if not decision.is_turn:
                return None
            if on_turn is not None:
                on_turn()
            if decision.continue_from is not None:
                request = replace(request, continue_from=decision.continue_from)
            return await self._run(request, sink, decision.ticket)
        finally:
            decision.ticket.leave()

    async def handle_turn(self, turn: Turn, sink: ReplySink) -> TurnResult:
        """Run a message already known to be a turn (the console's) end to end."""
        return await self.run(TurnRequest.prompt(turn), sink)

    async def run(self, request: TurnRequest, sink: ReplySink) -> TurnResult:
        """Any kind of turn (``TurnRequest.regenerate(...)``, a variations turn...), through the
        one pipeline, which takes its place in order on arrival."""
        return await self._run(request, sink, None)

    async def _run(self, request: TurnRequest, sink: ReplySink, ticket: OrderTicket | None) -> TurnResult:
        with (
            self._in_flight.track(),
            log_context(conversation=str(request.key), message_id=request.request_id),
        ):
            return await self._pipeline.run(request, sink, ticket)

    async def effective_settings(self, key: ConversationKey) -> EffectiveSettings:
        return resolve(await self._store.settings(key), self._config, self.capabilities, self.allowed_models)

    async def change_setting(self, scope: SettingScope, name: SettingName, value: str) -> str:
        """Validate and store a setting; returns a confirmation sentence or raises SettingError
        (see ``Dialogue.change``)."""
        return await self._dialogue.change(scope, name, value)

    async def forget(self, key: ConversationKey) -> int:
        """Delete a conversation's history and images, whoever asks (console, retention), in its
        order: turns posted before the request finish first, then nothing of it is left."""
        return await self._forgetting.forget(key)

    async def may_forget(
        self, key: ConversationKey, author: Author, *, moderator: bool = False, opener: str | None = None
    ) -> bool:
        """Whether ``author`` may forget ``key`` (see bot.turns.forgetting for the rule)."""
        return await self._forgetting.may_forget(key, author, moderator=moderator, opener=opener)

    async def forget_as(
        self, key: ConversationKey, author: Author, *, moderator: bool = False, opener: str | None = None
    ) -> ForgetResult:
        """Forget ``key`` for a person in a shared place, or say who may (see bot.turns.forgetting)."""
        return await self._forgetting.forget_as(key, author, moderator=moderator, opener=opener)

    async def usage_report(self, key: ConversationKey, author: Author) -> str:
        """What ``author`` made today and this month with estimated cost; admins get totals."""
        return (await self._dialogue.run(Command(CommandName.USAGE, key, author))).text

    async def announce_interrupted(
        self, platform: str, tell: Tell, window_s: float = INTERRUPTED_WINDOW_S
    ) -> int:
        """Tell each person of ``platform`` whose turn a crash or a stop cut off (see
        ``bot.turns.recovery``); returns how many were told."""
        return await announce_interrupted(self._store, platform, tell, window_s)
