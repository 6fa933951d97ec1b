"""What a generation request is and how it can end, each ending with one plain sentence."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.text.messages import (  # noqa: F401 (names the engine and tests import from here)
    IMAGE_BLOCKED,
    MSG_BLOCKLIST,
    MSG_EMPTY,
    MSG_FAILED,
    MSG_IMAGE_PROHIBITED,
    MSG_IMAGE_SAFETY,
    MSG_INVALID_KEY,
    MSG_MALFORMED,
    MSG_NO_IMAGE,
    MSG_PROMPT_BLOCKED,
    MSG_QUOTA_EXHAUSTED,
    MSG_RECITATION,
    MSG_REJECTED,
    MSG_SPII,
    MSG_TIMEOUT,
    MSG_UNAVAILABLE,
    PROMPT_BLOCKED,
    rate_limited_message,
    rejected_message,
    stopped_message,
    unknown_model_message,
)
from bot.vocabulary import ReplyPart, ResponseMode, Usage
from storage.content import Blob, ContentRecord


class Outcome(StrEnum):
    """How one generation ended."""

    IMAGE = "image"
    TEXT_ONLY = "text_only"
    PROMPT_BLOCKED = "prompt_blocked"
    IMAGE_BLOCKED = "image_blocked"
    NO_IMAGE = "no_image"
    QUOTA_EXHAUSTED = "quota_exhausted"
    RATE_LIMITED = "rate_limited"
    INVALID_KEY = "invalid_key"
    UNKNOWN_MODEL = "unknown_model"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class GenerationRequest:
    """One turn to send: the earlier turns, the new user turn and every blob they reference."""

    history: Sequence[ContentRecord]
    user: ContentRecord
    blobs: Mapping[str, bytes]
    aspect_ratio: str | None = None
    image_size: str | None = None
    response_mode: ResponseMode = ResponseMode.TEXT_AND_IMAGE
    # The conversation's model; None = the engine's (GEMINI_MODEL, or the one start-up chose).
    model: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    """What came of a request. ``model_content`` is what to append to history when ``ok``."""

    outcome: Outcome
    message: str | None
    model_content: ContentRecord | None = None
    new_blobs: tuple[Blob, ...] = ()
    parts: tuple[ReplyPart, ...] = ()
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.IMAGE, Outcome.TEXT_ONLY)


# Finish reasons that mean "done normally": the visible parts decide the outcome.
NORMAL_FINISH = {None, "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}
