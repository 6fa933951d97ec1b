"""Every sentence the core says to people, in one place (adapters only format it for their platform)."""

from __future__ import annotations

from bot.vocabulary import ScopeLevel

EMPTY_PROMPT = "Tell me what to draw, for example: a red bicycle at dawn. Add --ar 16:9 to change the shape."
QUEUED = "Queued: I'll start on this as soon as the image before it is finished."
FAILED = "Something went wrong on my side while making that image; please try again."
INTERRUPTED = "I was restarted before I could finish this one; if no image came, please send it again."
UNKNOWN_TURN = (
    "That image is no longer in this conversation's history (it may have been forgotten); "
    "send a new prompt instead."
)
LATE_ARRIVAL = (
    "This message reached me after a later one had already been answered, so I applied it to the "
    "latest image."
)
HEAD_MOVED = (
    "This conversation moved on while I was drawing (another reply was answered first); "
    "please send your message again."
)

_WHERE = {
    ScopeLevel.THREAD: "this conversation",
    ScopeLevel.CHANNEL: "new conversations in this channel",
    ScopeLevel.GLOBAL: "everywhere",
}


def prompt_too_long(length: int, limit: int) -> str:
    return f"That prompt is {length:,} characters long; please keep it under {limit:,} characters."


def queue_position(position: int) -> str:
    return f"You're number {position} in line for an image; yours starts as soon as a slot frees up."


def setting_changed(label: str, level: ScopeLevel) -> str:
    """``label`` is the change itself, e.g. "Aspect ratio is now 16:9"."""
    return f"{label} for {_WHERE[level]}."


def settings_only(aspect: str | None, size: str | None, model: str | None = None) -> str:
    """The reply to a message that only set flags (``--ar 16:9`` and nothing to draw)."""
    changes = []
    if model:
        changes.append(f"the model {model}")
    if aspect:
        changes.append(f"aspect ratio {aspect}")
    if size:
        changes.append(f"image size {size}")
    return f"This conversation now uses {' and '.join(changes)}; send a prompt to make an image."


CONTINUED = "Continuing from this take: your next message refines it."


def take_label(number: int, count: int) -> str:
    return f"Take {number} of {count}"


def takes_missing(missing: int, count: int, reason: str) -> str:
    """The one sentence after a variations turn some of whose takes did not come back."""
    return f"{missing} of the {count} takes did not come back: {reason.rstrip('.')}."


def model_changed(model: str, level: ScopeLevel, notes: list[str]) -> str:
    return " ".join([setting_changed(f"The model is now {model}", level), *notes])
