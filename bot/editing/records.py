"""What the region editor passes around: a checked link's grant, an image, an edit, its progress."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.vocabulary import ConversationKey


@dataclass(frozen=True, slots=True)
class EditGrant:
    """What a valid editor link allows: one region edit of one turn's image in one conversation,
    by one person, until ``expires_at``. ``link_id`` names the link for its single use."""

    key: ConversationKey
    turn_id: int
    person: str
    expires_at: float
    link_id: str


@dataclass(frozen=True, slots=True)
class EditImage:
    data: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class RegionEdit:
    """A submitted edit: the painted mask (PNG, painted pixels opaque; any size, scaled to the
    image's) and what should change there."""

    grant: EditGrant
    mask_png: bytes
    instruction: str


class EditState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class EditProgress:
    """How a submitted edit is going: ``message`` is one sentence for the page; ``image`` is the
    result once done."""

    state: EditState
    message: str
    image: EditImage | None = None
