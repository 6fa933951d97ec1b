"""Every kind of turn as data: what the pipeline is asked to run, whatever started it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.vocabulary import Author, ConversationKey, ImageRef, Position, Turn
from storage.protocol import Claim


class TurnKind(StrEnum):
    """What a turn does; the pipeline is the same for each, only its plan differs."""

    PROMPT = "prompt"  # a person's message: new text and photos, continuing the conversation
    REGENERATE = "regenerate"  # draw a stored turn's prompt again from the same point
    VARIATIONS = "variations"  # several takes of a stored turn at once, stored as siblings
    REDO_SIZE = "redo_size"  # draw a stored turn again at a larger size, for that turn only
    CONTINUE = "continue"  # make one take of a variations turn the conversation's head
    FRAME = "frame"  # zoom out of or pan a stored turn's image (bot.turns.framing)
    REGION_EDIT = "region_edit"  # change a painted region of a stored turn's image


# How many takes the Variations control asks for.
VARIATIONS_TAKES = 4


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One unit of work for the turn pipeline.

    ``request_id`` is claimed once (a message id, or a control click's own id), so redeliveries
    never run twice. ``position`` is its place in the conversation's order.
    """

    kind: TurnKind
    key: ConversationKey
    request_id: str
    author: Author
    position: Position
    text: str = ""
    images: tuple[ImageRef, ...] = ()
    # PROMPT: continue from this stored turn (a reply to an earlier image) instead of the head.
    continue_from: int | None = None
    # REGENERATE: the stored turn drawn again, and optionally a new aspect ratio for it.
    source_turn: int | None = None
    aspect_ratio: str | None = None
    # VARIATIONS: how many takes; REDO_SIZE: the size drawn at.
    takes: int = 1
    image_size: str | None = None
    # FRAME: "zoom:1.5", "pan:left"... (bot.turns.framing.Frame.spec); REGION_EDIT: the painted
    # mask as PNG (the instruction is ``text``).
    frame: str | None = None
    mask_png: bytes = b""
    # Another delivery of the same message speaks for it when the database cannot be reached.
    echo: bool = False
    # Already claimed on arrival, where deciding that it is a turn looked at the store anyway
    # (bot.entry.routing); None: the pipeline claims it.
    claim: Claim | None = None

    @classmethod
    def prompt(cls, turn: Turn) -> TurnRequest:
        return cls(
            kind=TurnKind.PROMPT,
            key=turn.key,
            request_id=turn.message_id,
            author=turn.author,
            position=turn.position or Position.now(),
            text=turn.text,
            images=turn.images,
            continue_from=turn.continue_from,
            echo=turn.echo,
        )

    @classmethod
    def regenerate(
        cls,
        key: ConversationKey,
        turn_id: int,
        author: Author,
        request_id: str,
        position: Position | None = None,
        aspect_ratio: str | None = None,
    ) -> TurnRequest:
        return cls(
            kind=TurnKind.REGENERATE,
            key=key,
            request_id=request_id,
            author=author,
            position=position or Position.now(),
            source_turn=turn_id,
            aspect_ratio=aspect_ratio,
        )

    @classmethod
    def on_turn(
        cls,
        kind: TurnKind,
        key: ConversationKey,
        turn_id: int,
        author: Author,
        request_id: str,
        *,
        takes: int = 1,
        image_size: str | None = None,
        position: Position | None = None,
        frame: str | None = None,
    ) -> TurnRequest:
        """A control clicked on a stored turn's reply (Variations, a larger size, Continue, Zoom
        out, Pan)."""
        return cls(
            kind=kind,
            key=key,
            request_id=request_id,
            author=author,
            position=position or Position.now(),
            source_turn=turn_id,
            takes=takes,
            image_size=image_size,
            frame=frame,
        )
