"""What a generation request is and how it can end, each ending with one plain sentence."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

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


# ---------------------------------------------------------------------------------------------
# User-facing messages: one plain sentence each, saying what happened and what to do.

MSG_INVALID_KEY = "The bot's Gemini API key was rejected; the operator needs to set a valid GEMINI_API_KEY."
MSG_QUOTA_EXHAUSTED = (
    "Today's Gemini image quota for this bot is used up; it resets at midnight Pacific time."
)
MSG_TIMEOUT = "Gemini took too long to answer; please try again in a moment."
MSG_UNAVAILABLE = "Gemini is unavailable right now; please try again in a few minutes."
MSG_MALFORMED = "Gemini sent an answer the bot could not read; please try again."
MSG_FAILED = "Something went wrong while talking to Gemini; please try again."
MSG_EMPTY = "Gemini returned an empty answer; please try again."
MSG_NO_IMAGE = "Gemini did not produce an image this time; try again or rephrase the prompt."
MSG_REJECTED = "Gemini rejected this request; try changing the prompt or the attached images."

PROMPT_BLOCKED = {
    "SAFETY": "Gemini blocked this prompt for safety reasons; try rephrasing it.",
    "PROHIBITED_CONTENT": ("Gemini blocked this prompt as prohibited content; try a different request."),
    "BLOCKLIST": "Gemini blocked this prompt because it contains blocked terms; try rephrasing it.",
    "IMAGE_SAFETY": ("Gemini blocked the attached images for safety reasons; try different images."),
}
MSG_PROMPT_BLOCKED = "Gemini blocked this prompt; try rephrasing it."

MSG_IMAGE_SAFETY = "Gemini withheld the image for safety reasons; try rephrasing the prompt."
MSG_IMAGE_PROHIBITED = (
    "Gemini withheld the image because it would be prohibited content; try a different request."
)
MSG_BLOCKLIST = "Gemini withheld the answer because it contained blocked terms; try rephrasing the prompt."
MSG_SPII = (
    "Gemini withheld the answer because it could reveal sensitive personal information; "
    "try a different request."
)
MSG_RECITATION = (
    "Gemini withheld the image because it was too close to existing copyrighted work; "
    "try a more original prompt."
)
IMAGE_BLOCKED = {
    "IMAGE_SAFETY": MSG_IMAGE_SAFETY,
    "SAFETY": MSG_IMAGE_SAFETY,
    "IMAGE_PROHIBITED_CONTENT": MSG_IMAGE_PROHIBITED,
    "PROHIBITED_CONTENT": MSG_IMAGE_PROHIBITED,
    "BLOCKLIST": MSG_BLOCKLIST,
    "SPII": MSG_SPII,
    "IMAGE_RECITATION": MSG_RECITATION,
    "RECITATION": MSG_RECITATION,
}
# Finish reasons that mean "done normally": the visible parts decide the outcome.
NORMAL_FINISH = {None, "STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"}


def stopped_message(reason: str) -> str:
    return f"Gemini stopped without an image ({reason}); try rephrasing."


def rate_limited_message(seconds: float | None) -> str:
    if seconds is None:
        return "Gemini is rate-limiting this bot; try again in about a minute."
    n = max(1, math.ceil(seconds))
    return f"Gemini is rate-limiting this bot; try again in about {n} second{'s' * (n != 1)}."


def unknown_model_message(model: str) -> str:
    return (
        f"Gemini does not offer the model {model!r}; the operator needs to set GEMINI_MODEL "
        "to an available image model."
    )


def rejected_message(reason: str | None) -> str:
    if not reason:
        return MSG_REJECTED
    return f"Gemini rejected this request ({reason}); try changing the prompt or the attached images."
