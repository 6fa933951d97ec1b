"""The Gemini image model behind one small seam: records in, a classified result out.

This package is the only place that imports ``google.genai``. It turns stored content records (see
``storage.content``) into SDK objects, calls ``generateContent`` once per attempt with our own
retry policy, and turns the answer back into records, blobs and user-visible parts. Every
API, network and timeout failure becomes a :class:`GenerationResult` with a plain message;
nothing from the API (raw JSON, stack traces, the key) reaches users.
"""

from google import genai
from google.genai import types

from bot.gemini.api_errors import is_daily_quota, retry_delay_s
from bot.gemini.engine import GeminiEngine
from bot.gemini.lookups import LOOKUP_TIMEOUT_S, LookupFailure, ModelLookupError
from bot.gemini.outcomes import (
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
    GenerationRequest,
    GenerationResult,
    Outcome,
    rate_limited_message,
    rejected_message,
    stopped_message,
    unknown_model_message,
)
from bot.gemini.records import (
    MissingBlobError,
    RecordError,
    content_to_record,
    record_to_content,
    usage_from,
    visible_parts,
)

__all__ = [
    "LOOKUP_TIMEOUT_S",
    "MSG_BLOCKLIST",
    "MSG_EMPTY",
    "MSG_FAILED",
    "MSG_IMAGE_PROHIBITED",
    "MSG_IMAGE_SAFETY",
    "MSG_INVALID_KEY",
    "MSG_MALFORMED",
    "MSG_NO_IMAGE",
    "MSG_PROMPT_BLOCKED",
    "MSG_QUOTA_EXHAUSTED",
    "MSG_RECITATION",
    "MSG_REJECTED",
    "MSG_SPII",
    "MSG_TIMEOUT",
    "MSG_UNAVAILABLE",
    "GeminiEngine",
    "GenerationRequest",
    "GenerationResult",
    "LookupFailure",
    "MissingBlobError",
    "ModelLookupError",
    "Outcome",
    "RecordError",
    "content_to_record",
    "genai",
    "is_daily_quota",
    "rate_limited_message",
    "record_to_content",
    "rejected_message",
    "retry_delay_s",
    "stopped_message",
    "types",
    "unknown_model_message",
    "usage_from",
    "visible_parts",
]
