"""Each kind of turn's own part: checks and settings before it waits, and what it will send."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bot.gemini.capabilities import ModelCapabilities
from bot.images.checks import ImageLimits, ImageRejected, check_declared, too_many_images_message
from bot.text import editor_words, messages, model_words
from bot.text.conversation_settings import ConversationSettings
from bot.text.flags import parse_flags
from bot.text.settings import EffectiveSettings, SettingError, validate_aspect_ratio, validate_image_size
from bot.turns import framing
from bot.turns.framing import Frame, FrameJob
from bot.turns.references import Reference, resolve
from bot.turns.request import TurnKind, TurnRequest
from bot.vocabulary import ImageRef, SettingName
from storage.content import ContentRecord
from storage.protocol import Store, StoredTurn


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
    images: tuple[ImageRef, ...] = ()  # downloaded only once the turn runs
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
    # With ``note``: make this stored turn the conversation's head (Continue from this one).
    move_head: int | None = None
    # Takes drawn at once (each its own request, stored as siblings), and a size for this
    # turn only (Redo at 4K) that leaves the conversation's size setting alone.
    takes: int = 1
    image_size: str | None = None
    # Zoom out, pan or a region edit of a stored image: the answer is composited over it.
    frame: FrameJob | None = None
    # --think: the thinking level of this turn only (None: the conversation's /think).
    thinking_level: str | None = None
    # Pinned images named with ``--ref``, sent labelled before the prompt text.
    references: tuple[Reference, ...] = ()


# A kind's planner gets the conversation's settings as its claim read them.
Planner = Callable[[TurnRequest, EffectiveSettings], Awaitable[TurnPlan | Refusal]]


class TurnPlanner:
    """Dispatches on the turn's kind; a new kind of turn adds a planner here, not a pipeline."""

    def __init__(
        self,
        *,
        store: Store,
        settings: ConversationSettings,
        image_limits: ImageLimits,
        max_prompt_chars: int,
    ) -> None:
        self._store = store
        self._settings = settings
        self._image_limits = image_limits
        self._max_prompt_chars = max_prompt_chars
        self._planners: dict[TurnKind, Planner] = {
            TurnKind.PROMPT: self._prompt,
            TurnKind.REGENERATE: self._regenerate,
            TurnKind.VARIATIONS: self._variations,
            TurnKind.REDO_SIZE: self._redo_size,
            TurnKind.CONTINUE: self._continue,
            TurnKind.FRAME: self._frame,
            TurnKind.REGION_EDIT: self._frame,
        }

    async def plan(self, request: TurnRequest, settings: EffectiveSettings) -> TurnPlan | Refusal:
        planned = await self._planners[request.kind](request, settings)
        if isinstance(planned, TurnPlan) and planned.note is None and self._settings.spend_capped:
            # With a spend cap, a model whose price no model file gives is never called.
            chosen = dict(planned.settings).get(SettingName.MODEL)
            caps = self._settings.capabilities_for(chosen) if chosen else self._caps(settings)
            if not caps.priced:
                return Refusal(model_words.unpriced_refused(caps.model), limited=True)
        return planned

    @staticmethod
    def _caps(settings: EffectiveSettings) -> ModelCapabilities:
        caps = settings.caps
        assert caps is not None  # the service's resolver always names the model
        return caps

    async def _prompt(self, request: TurnRequest, current: EffectiveSettings) -> TurnPlan | Refusal:
        caps = self._caps(current)
        parsed = parse_flags(request.text, caps, self._settings.allowed_models, self._settings.models)
        if len(parsed.text) > self._max_prompt_chars:
            return Refusal(messages.prompt_too_long(len(parsed.text), self._max_prompt_chars))
        if parsed.refusal:
            return Refusal(parsed.refusal)
        settings: list[tuple[SettingName, str]] = []
        if parsed.model:
            # First, so the ratio and size below are stored after any reset the switch makes.
            settings.append((SettingName.MODEL, parsed.model))
            caps = caps if caps.model == parsed.model else self._settings.capabilities_for(parsed.model)
        if parsed.aspect_ratio:
            settings.append((SettingName.ASPECT_RATIO, parsed.aspect_ratio))
        if parsed.image_size:
            settings.append((SettingName.IMAGE_SIZE, parsed.image_size))
        if not parsed.text and not request.images and not parsed.refs:
            if parsed.has_settings:
                note = messages.settings_only(parsed.aspect_ratio, parsed.image_size, parsed.model)
                return TurnPlan(settings=tuple(settings), note=note)
            return Refusal(messages.EMPTY_PROMPT)
        if len(request.images) > caps.max_input_images:
            return Refusal(too_many_images_message(len(request.images), caps.max_input_images, caps.model))
        try:
            for ref in request.images:
                check_declared(ref.filename, ref.size, self._image_limits)
        except ImageRejected as exc:
            return Refusal(exc.user_message)
        refs = await resolve(
            self._store, request.key, request.author.id, parsed.refs, len(request.images), caps
        )
        if isinstance(refs, str):
            return Refusal(refs)
        continuing = request.continue_from is not None
        return TurnPlan(
            text=parsed.text,
            images=request.images,
            from_head=not continuing,
            base=request.continue_from,
            settings=tuple(settings),
            takes=parsed.takes,
            thinking_level=parsed.thinking_level,
            references=refs,
        )

    async def _regenerate(self, request: TurnRequest, settings: EffectiveSettings) -> TurnPlan | Refusal:
        chosen: tuple[tuple[SettingName, str], ...] = ()
        if request.aspect_ratio is not None:
            try:
                ratio = validate_aspect_ratio(request.aspect_ratio, self._caps(settings))
            except SettingError as exc:
                return Refusal(exc.user_message)
            chosen = ((SettingName.ASPECT_RATIO, ratio),)
        # Ownership before any side effect: a control carrying another conversation's turn
        # changes nothing (the ratio is stored only once the turn runs).
        original = await self._source(request)
        if original is None:
            return Refusal(messages.UNKNOWN_TURN)
        again = TurnPlan(
            from_head=False,
            base=original.parent_id,
            original_user=original.user_content,
            source_turn=original.id,
            settings=chosen,
        )
        return await self._framed_again(request, original, again)

    async def _framed_again(self, request: TurnRequest, original: StoredTurn, again: TurnPlan) -> TurnPlan:
        """A zoom, pan or region edit drawn again is framed again, over the same original."""
        if original.parent_id is None or not framing.looks_framed(original.user_content):
            return again
        spec = (await self._store.settings(request.key)).get(framing.setting_name(original.id))
        frame = Frame.parse(spec) if spec else None
        if frame is None or original.parent_id is None:
            return again
        mask = b""
        if frame.op == framing.REGION:
            blob = framing.stored_mask(original.user_content)
            mask = (await self._store.load_blobs([blob])).get(blob, b"") if blob else b""
            if not mask:
                return again
        return replace(again, settings=(), frame=FrameJob(frame, original.parent_id, mask))

    async def _frame(self, request: TurnRequest, settings: EffectiveSettings) -> TurnPlan | Refusal:
        """Zoom out, pan or a region edit of a stored turn's image, continuing from that turn."""
        frame = Frame.parse(request.frame or "") if request.kind is TurnKind.FRAME else Frame(framing.REGION)
        if frame is None:
            return Refusal(messages.ZOOM_WHICH)
        if frame.op == framing.REGION and not request.text.strip():
            return Refusal(editor_words.EDIT_NO_INSTRUCTION)
        if len(request.text) > self._max_prompt_chars:
            return Refusal(messages.prompt_too_long(len(request.text), self._max_prompt_chars))
        original = await self._source(request)
        if original is None:
            return Refusal(messages.UNKNOWN_TURN)
        if framing.first_image(original) is None:
            return Refusal(messages.NO_IMAGE_TO_FRAME)
        return TurnPlan(
            text=framing.instruction(frame, request.text.strip()),
            from_head=False,
            base=original.id,
            source_turn=original.id,
            frame=FrameJob(frame, original.id, request.mask_png),
        )

    async def _source(self, request: TurnRequest) -> StoredTurn | None:
        """The stored turn a control was clicked on, if it is this conversation's."""
        original = await self._store.turn(request.source_turn) if request.source_turn is not None else None
        return original if original is not None and original.key == request.key else None

    async def _again(
        self, request: TurnRequest, *, takes: int = 1, image_size: str | None = None
    ) -> TurnPlan | Refusal:
        """The stored turn drawn again from the same point, as several takes or at a size."""
        original = await self._source(request)
        if original is None:
            return Refusal(messages.UNKNOWN_TURN)
        return TurnPlan(
            from_head=False,
            base=original.parent_id,
            original_user=original.user_content,
            source_turn=original.id,
            takes=takes,
            image_size=image_size,
        )

    async def _variations(self, request: TurnRequest, _settings: EffectiveSettings) -> TurnPlan | Refusal:
        return await self._again(request, takes=max(1, request.takes))

    async def _redo_size(self, request: TurnRequest, settings: EffectiveSettings) -> TurnPlan | Refusal:
        try:
            size = validate_image_size(request.image_size or "", self._caps(settings))
        except SettingError as exc:
            return Refusal(exc.user_message)
        return await self._again(request, image_size=size)

    async def _continue(self, request: TurnRequest, _settings: EffectiveSettings) -> TurnPlan | Refusal:
        original = await self._source(request)
        if original is None:
            return Refusal(messages.UNKNOWN_TURN)
        return TurnPlan(note=messages.CONTINUED, move_head=original.id)
