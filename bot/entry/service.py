"""The conversation service: the core's one entry point for adapters, wiring the turn pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.config import Config
from bot.entry.access import AccessPolicy
from bot.entry.commands import Command, CommandName
from bot.entry.dialogue import Dialogue
from bot.entry.routing import Inbound, Router
from bot.gemini.capabilities import ModelCapabilities
from bot.images.budget import ImageMemory
from bot.logs import log_context
from bot.observing.null import NOBODY
from bot.observing.watch import conversation_tag
from bot.ports import Observer, OrderTicket, ReplySink
from bot.text import messages
from bot.text.conversation_settings import ConversationSettings
from bot.text.settings import EffectiveSettings
from bot.turns.forgetting import ForgetResult, Forgetting
from bot.turns.in_flight import InFlight
from bot.turns.pipeline import TurnPipeline, TurnResult, TurnStatus
from bot.turns.recovery import INTERRUPTED_WINDOW_S, Tell, announce_interrupted
from bot.turns.request import TurnRequest
from bot.vocabulary import AttachmentUnavailable, Author, ConversationKey, SettingName, SettingScope, Turn
from storage.aftercare import Aftercare
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
        settings: ConversationSettings,
        access: AccessPolicy,
        router: Router,
        forgetting: Forgetting,
        pipeline: TurnPipeline,
        in_flight: InFlight,
        aftercare: Aftercare,
        dialogue: Dialogue,
        observer: Observer = NOBODY,
        image_memory: ImageMemory | None = None,
    ) -> None:
        """Built by ``bot.composition.build_service``, the one place that wires the parts;
        ``observer`` follows each turn for operators' metrics."""
        self._config = config
        self._store = store
        self._settings = settings
        self._access = access
        self._router = router
        self._forgetting = forgetting
        self._pipeline = pipeline
        self._in_flight = in_flight
        self._aftercare = aftercare
        self._dialogue = dialogue
        self._observer = observer
        # Deletes interactions Google keeps (the engine's forget_interactions), for leaving a
        # workspace (bot.entry.leaving); None when nothing is kept there.
        self.drop_remote = forgetting.drop_remote
        # The process's image memory budget, for the parts built around the service (the editor).
        self.image_memory = image_memory or ImageMemory.of(config.images.memory_bytes)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._settings.capabilities

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """Models people may pick per conversation, the default first."""
        return self._settings.allowed_models

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
            return await self._run(decision.applied_to(request), sink, decision.ticket)
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
            self._observer.turn(
                request.key.platform, request.kind.value, conversation_tag(request.key)
            ) as watch,
        ):
            result = await self._pipeline.run(request, sink, ticket)
            watch.ended(result.status.value)
            return result

    async def effective_settings(self, key: ConversationKey) -> EffectiveSettings:
        return await self._settings.effective(key)

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
