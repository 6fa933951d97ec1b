"""Each kind of turn's own part: checks and settings before it waits, and what it will send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot import messages
from bot.capabilities import ModelCapabilities
from bot.content import ContentRecord
from bot.flags import parse_flags
from bot.images import ImageLimits, ImageRejected, check_declared, too_many_images_message
from bot.settings import SettingError, validate_aspect_ratio
from bot.turn_request import TurnKind, TurnRequest
from bot.vocabulary import SettingName
from storage.protocol import Store


@dataclass(frozen=True, slots=True)
class Refusal:
    """The turn will not run; tell the person this one sentence."""

    message: str
    # A limit, the spend cap or the queue bound, rather than something wrong with the turn.
    limited: bool = False


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """What a turn sends, decided before it waits for its conversation's earlier turns."""

    text: str = ""
    images: tuple = ()  # tuple[ImageRef, ...], downloaded only once the turn runs
    # History ends at the conversation's head, or (from_head False) at ``base`` (None = empty).
    from_head: bool = True
    base: int | None = None
    # REGENERATE: the stored user content sent again, and the turn that must still exist.
    original_user: ContentRecord | None = None
    source_turn: int | None = None
    # Stored for the thread before the turn is admitted (inline flags, a ratio picked on a control).
    settings: tuple[tuple[SettingName, str], ...] = ()
    # Nothing to draw: reply with this note and stop (a message that only set flags).
    note: str | None = None


Planner = Callable[[TurnRequest], Awaitable[TurnPlan | Refusal]]


class TurnPlanner:
    """Dispatches on the turn's kind; a new kind of turn adds a planner here, not a pipeline."""

    def __init__(
        self,
        *,
        store: Store,
        capabilities: Callable[[], ModelCapabilities],
        image_limits: ImageLimits,
        max_prompt_chars: int,
    ) -> None:
        self._store = store
        self._caps = capabilities
        self._image_limits = image_limits
        self._max_prompt_chars = max_prompt_chars
        self._planners: dict[TurnKind, Planner] = {
            TurnKind.PROMPT: self._prompt,
            TurnKind.REGENERATE: self._regenerate,
        }

    async def plan(self, request: TurnRequest) -> TurnPlan | Refusal:
        return await self._planners[request.kind](request)

    async def _prompt(self, request: TurnRequest) -> TurnPlan | Refusal:
        caps = self._caps()
        parsed = parse_flags(request.text, caps)
        if len(parsed.text) > self._max_prompt_chars:
            return Refusal(messages.prompt_too_long(len(parsed.text), self._max_prompt_chars))
        if parsed.refusal:
            return Refusal(parsed.refusal)
        settings: list[tuple[SettingName, str]] = []
        if parsed.aspect_ratio:
            settings.append((SettingName.ASPECT_RATIO, parsed.aspect_ratio))
        if parsed.image_size:
            settings.append((SettingName.IMAGE_SIZE, parsed.image_size))
        if not parsed.text and not request.images:
            if parsed.has_settings:
                note = messages.settings_only(parsed.aspect_ratio, parsed.image_size)
                return TurnPlan(settings=tuple(settings), note=note)
            return Refusal(messages.EMPTY_PROMPT)
        if len(request.images) > caps.max_input_images:
            return Refusal(too_many_images_message(len(request.images), caps.max_input_images, caps.model))
        try:
            for ref in request.images:
                check_declared(ref.filename, ref.size, self._image_limits)
        except ImageRejected as exc:
            return Refusal(exc.user_message)
        continuing = request.continue_from is not None
        return TurnPlan(
            text=parsed.text,
            images=request.images,
            from_head=not continuing,
            base=request.continue_from,
            settings=tuple(settings),
        )

    async def _regenerate(self, request: TurnRequest) -> TurnPlan | Refusal:
        settings: tuple[tuple[SettingName, str], ...] = ()
        if request.aspect_ratio is not None:
            try:
                ratio = validate_aspect_ratio(request.aspect_ratio, self._caps())
            except SettingError as exc:
                return Refusal(exc.user_message)
            settings = ((SettingName.ASPECT_RATIO, ratio),)
        # Ownership before any side effect: a control carrying another conversation's turn
        # changes nothing (the ratio is stored only once the turn runs).
        original = await self._store.turn(request.source_turn) if request.source_turn is not None else None
        if original is None or original.key != request.key:
            return Refusal(messages.UNKNOWN_TURN)
        return TurnPlan(
            from_head=False,
            base=original.parent_id,
            original_user=original.user_content,
            source_turn=original.id,
            settings=settings,
        )
