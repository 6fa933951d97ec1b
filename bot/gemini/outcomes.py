"""What a generation request is and how it can end, each ending with one plain sentence."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

# The sentences the engine and its callers name from here, re-exported from the catalogue.
from bot.text.messages import IMAGE_BLOCKED as IMAGE_BLOCKED
from bot.text.messages import MSG_BLOCKLIST as MSG_BLOCKLIST
from bot.text.messages import MSG_EMPTY as MSG_EMPTY
from bot.text.messages import MSG_FAILED as MSG_FAILED
from bot.text.messages import MSG_IMAGE_PROHIBITED as MSG_IMAGE_PROHIBITED
from bot.text.messages import MSG_IMAGE_SAFETY as MSG_IMAGE_SAFETY
from bot.text.messages import MSG_INVALID_KEY as MSG_INVALID_KEY
from bot.text.messages import MSG_MALFORMED as MSG_MALFORMED
from bot.text.messages import MSG_NO_IMAGE as MSG_NO_IMAGE
from bot.text.messages import MSG_PROMPT_BLOCKED as MSG_PROMPT_BLOCKED
from bot.text.messages import MSG_QUOTA_EXHAUSTED as MSG_QUOTA_EXHAUSTED
from bot.text.messages import MSG_RECITATION as MSG_RECITATION
from bot.text.messages import MSG_REJECTED as MSG_REJECTED
from bot.text.messages import MSG_SPII as MSG_SPII
from bot.text.messages import MSG_TIMEOUT as MSG_TIMEOUT
from bot.text.messages import MSG_UNAVAILABLE as MSG_UNAVAILABLE
from bot.text.messages import PROMPT_BLOCKED as PROMPT_BLOCKED
from bot.text.messages import rate_limited_message as rate_limited_message
from bot.text.messages import rejected_message as rejected_message
from bot.text.messages import stopped_message as stopped_message
from bot.text.messages import unknown_model_message as unknown_model_message
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
    # --think or /think: sent as the thinking configuration when the model lists the level.
    thinking_level: str | None = None
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
