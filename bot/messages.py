"""Every sentence the core says to people, in one place (adapters only format it for their platform)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.vocabulary import ScopeLevel, SettingName

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

NOTHING_TO_FORGET = "There was nothing to forget here; this conversation has no saved images."
MENTION_TO_RESTART = "Mention me to start again."
# What a message whose controls were removed by a forget says instead.
FORGOTTEN = "Forgotten."
MODEL_DEFAULT = "the model default"

SETTING_LABELS = {
    SettingName.ASPECT_RATIO: "Aspect ratio",
    SettingName.IMAGE_SIZE: "Image size",
    SettingName.RESPONSE_MODE: "Response mode",
}

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


def current_setting(
    name: SettingName, current: str | None, level: ScopeLevel, command: str, choices: Sequence[str]
) -> str:
    """What a setting is where it was asked (``/aspect`` with no value), and how to change it."""
    return (
        f"{SETTING_LABELS[name]} for {_WHERE[level]}: {current or MODEL_DEFAULT}. "
        f"Change it with {command} (choices: {', '.join(choices)})."
    )


def single_size(model: str) -> str:
    return f"{model} makes images at a single size, so the size can't be changed."


def forgotten(turns: int) -> str:
    """The confirmation of a forget that deleted ``turns`` turns (at least one)."""
    return f"Forgot this conversation: {turns} turn{'' if turns == 1 else 's'} and their images are deleted."


def download_failed(name: str, source: str = "") -> str:
    """``source`` is the platform the file was on, when the failure was reaching it."""
    where = f" from {source}" if source else ""
    return f"I couldn't download {name}{where}; attach it again."


# -- the operator's, at start-up ------------------------------------------------------------


def default_not_supported(variable: str, value: str, model: str, choices: Sequence[str]) -> str:
    """DEFAULT_ASPECT_RATIO or DEFAULT_IMAGE_SIZE names a value ``model`` lacks."""
    return f"{variable} {value!r} is not supported by {model}; use one of {', '.join(choices)}."


def default_size_fixed(model: str) -> str:
    return f"DEFAULT_IMAGE_SIZE is set but {model} has a single image size; unset it."


CONTINUED = "Continuing from this take: your next message refines it."


def take_label(number: int, count: int) -> str:
    return f"Take {number} of {count}"


def takes_missing(missing: int, count: int, reason: str) -> str:
    """The one sentence after a variations turn some of whose takes did not come back."""
    return f"{missing} of the {count} takes did not come back: {reason.rstrip('.')}."


def model_changed(model: str, level: ScopeLevel, notes: list[str]) -> str:
    return " ".join([setting_changed(f"The model is now {model}", level), *notes])
