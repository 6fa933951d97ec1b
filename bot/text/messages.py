"""Every sentence the core says to people, in one place (each platform's own: adapters/*/words.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bot.text.model_words import THINKING_HELP, THINKING_LABEL
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

# The database stayed unreachable for DATABASE_OUTAGE_S while the message waited for it.
STORAGE_UNREACHABLE = (
    "I couldn't reach my storage for too long to take this message, so I didn't make anything; "
    "please send it again."
)
# The image was made and paid for, but the database stayed away too long to save it.
NOT_SAVED = (
    "I couldn't save this image to the conversation (my storage is unreachable), so the next "
    "message won't build on it."
)
# A turn taken for cut off (and announced as such) while its process was paused or cut off from
# the database, whose image then came back before the conversation moved on: it replaces the
# earlier request to send the message again.
AFTER_ALL = "Here it is after all; no need to send it again."

NOTHING_TO_FORGET = "There was nothing to forget here; this conversation has no saved images."
MENTION_TO_RESTART = "Mention me to start again."
# What a message whose controls were removed by a forget says instead.
FORGOTTEN = "Forgotten."
MODEL_DEFAULT = "the model default"

# Zoom out, pan and region edits (bot/turns/framing.py): what the model is told, and refusals.
_KEEP = "in the same style and light, and keep the existing picture exactly as it is."
ZOOM_INSTRUCTION = f"Extend the scene into the grey border (white in the second image), {_KEEP}"
PAN_INSTRUCTION = "Extend the scene into the grey area on its {side} (white in the second image), " + _KEEP
PAN_SIDES = {"left": "left", "right": "right", "up": "top", "down": "bottom"}
_REGION = "Change only the region white in the second image (outlined in magenta in the third; "
REGION_INSTRUCTION = _REGION + "draw no outline): {instruction}. Keep everything else exactly as it is."
ZOOM_WHICH = "Zoom out by 1.5 or 2, for example: /zoom 2"
PAN_WHICH = "Pan left, right, up or down, for example: /pan left"
NO_IMAGE_TO_FRAME = "That reply has no image to zoom, pan or edit; use the controls under an image."
EDITOR_OFF = "The region editor is not set up on this bot (its PUBLIC_URL is not set)."
EDIT_IN_THE_CONVERSATION = "in the conversation"
EDITOR_LINK = "Your link to edit this image (only for you, valid 15 minutes, usable once): {url}"


SETTING_LABELS = {
    SettingName.ASPECT_RATIO: "Aspect ratio",
    SettingName.IMAGE_SIZE: "Image size",
    SettingName.RESPONSE_MODE: "Response mode",
    SettingName.MODEL: "Model",
    SettingName.THINKING: THINKING_LABEL,
}
# What a setting's change says, e.g. "Aspect ratio is now 16:9" (the model's is model_changed).
_MODES = {"image_only": "Replies are now images only", "text_image": "Replies are now text and images"}

_WHERE = {
    ScopeLevel.THREAD: "this conversation",
    ScopeLevel.CHANNEL: "new conversations in this channel",
    ScopeLevel.GLOBAL: "everywhere",
}


def images(count: int) -> str:
    """ "1 image", "3 images"."""
    return f"{count} image{'' if count == 1 else 's'}"


def prompt_too_long(length: int, limit: int) -> str:
    return f"That prompt is {length:,} characters long; please keep it under {limit:,} characters."


def queue_position(position: int) -> str:
    return f"You're number {position} in line for an image; yours starts as soon as a slot frees up."


def setting_changed(label: str, level: ScopeLevel) -> str:
    """``label`` is the change itself, e.g. "Aspect ratio is now 16:9"."""
    return f"{label} for {_WHERE[level]}."


def now_set(name: SettingName, value: str) -> str:
    """The change itself, before where it applies: "Aspect ratio is now 16:9"."""
    if name is SettingName.RESPONSE_MODE:
        return _MODES[value]
    return f"{SETTING_LABELS[name]} is now {value}"


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


NEXT_MESSAGE_STARTS = "Your next message starts a new image."
FORGET_REFUSED = (
    "Only the person who started this conversation or an admin can forget it; "
    "everyone else can keep going, or mention me in a new message to start their own."
)


def forget_done(turns: int, next_message_is_turn: bool) -> str:
    """What a forget says, and how to start again where it was asked."""
    done = forgotten(turns) if turns else NOTHING_TO_FORGET
    return f"{done} {NEXT_MESSAGE_STARTS if next_message_is_turn else MENTION_TO_RESTART}"


# -- the commands that start a turn on an earlier image ------------------------------------

NO_IMAGE_YET = "Make an image first; this conversation has none yet."
REDO_WHICH_SIZE = "Say which size: /redo 2K or /redo 4K."
NO_TAKES = "There are no takes to continue from; make some with /variations or --n 3."


def takes_out_of_range(argument: str) -> str:
    return f"/variations takes 2, 3 or 4 (how many takes to make), not {argument}."


def which_take(count: int) -> str:
    return f"Say which take: /continue 1 to /continue {count}."


# The help: each command as typed, and what it does (surfaces list the ones they offer).
HELP_ENTRIES = {
    "aspect": ("/aspect [ratio]", "show or set the aspect ratio"),
    "size": ("/size [size]", "show or set the image size (models that have sizes)"),
    "model": ("/model [id]", "show or set the model that draws"),
    "mode": ("/mode [image|text]", "images only, or text and images"),
    "think": THINKING_HELP,
    "variations": ("/variations [n]", "make n takes (2-4, default 4) of the latest image at once"),
    "continue": ("/continue n", "go on from take n of the latest variations"),
    "redo": ("/redo 2K|4K", "draw the latest image again at a larger size (models with sizes)"),
    "forget": ("/forget", "delete this conversation's history and images"),
    "usage": ("/usage", "images made and estimated cost, today and this month"),
    "zoom": ("/zoom 1.5|2", "zoom out of the latest image: more of the scene around it"),
    "pan": ("/pan left|right|up|down", "extend the latest image on one side"),
    "edit": ("/edit", "a private link to paint over part of the latest image and change it"),
    "help": ("/help", "this help"),
}


def download_failed(name: str, source: str = "") -> str:
    """``source`` is the platform the file was on, when the failure was reaching it."""
    where = f" from {source}" if source else ""
    return f"I couldn't download {name}{where}; attach it again."


def stored_elsewhere(name: str, platform: str) -> str:
    """A file that is only a link to somewhere off ``platform``: the bot never fetches it."""
    return (
        f"{name} is a link to a file stored outside {platform}, so I can't open it; "
        "upload the image itself and try again."
    )


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


# -- what Gemini answered, in plain words: what happened and what to do ---------------------

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


# -- people's input: attachments, flags and settings they typed ----------------------------


def empty_file(name: str) -> str:
    return f"{name} is empty (0 bytes); attach the image again."


def file_too_large(name: str, limit: str) -> str:
    return f"{name} is larger than {limit}; attach a smaller image."


def not_an_image(name: str) -> str:
    return f"{name} is not an image; attach a PNG, JPEG, WebP or HEIC photo."


def a_drawing(name: str, kind: str, export: str) -> str:
    return f"{name} is {kind}, not a photo; export {export} as PNG and attach that."


def damaged_file(name: str) -> str:
    return f"{name} could not be read (the file is damaged or incomplete); attach it again."


def too_many_pixels(name: str, dims: str, limit: str) -> str:
    """``dims`` is " (W×H pixels)" when known, else empty."""
    return f"{name} is too large to process{dims}; attach an image under {limit}."


def too_many_images(count: int, limit: int, model: str) -> str:
    return f"You attached {count} images; {model} takes at most {limit} per turn. Attach fewer and try again."


def bad_takes(shown: str) -> str:
    return f"{shown} can't be used; ask for 2, 3 or 4 takes at once, for example --n 3."


def flag_needs_value(flag: str, example: str) -> str:
    return f"{flag} needs a value, for example {flag} {example}."


def bad_aspect_ratio(shown: str, model: str, choices: Sequence[str]) -> str:
    return f"{shown} is not an aspect ratio {model} supports; use one of {', '.join(choices)}."


def bad_image_size(shown: str, model: str, choices: Sequence[str]) -> str:
    return f"{shown} is not an image size {model} supports; use one of {', '.join(choices)}."


def bad_response_mode(shown: str) -> str:
    return f"{shown} is not a response mode; use image or text+image."


def bad_model(shown: str, allowed: Sequence[str]) -> str:
    return f"{shown} is not a model this bot offers; use one of {', '.join(allowed)}."


def ratio_reset(model: str, ratio: str, now: str) -> str:
    return f"{model} has no {ratio} aspect ratio, so it is back to {now}."


def size_dropped(model: str, size: str) -> str:
    return f"{model} makes images at a single size, so the {size} size is reset."


def size_reset(model: str, size: str, now: str) -> str:
    return f"{model} has no {size} size, so it is back to {now}."


# -- access and limits ---------------------------------------------------------------------

NOT_ENABLED = "Sorry, this bot isn't enabled for you here; ask whoever runs it to add you or this channel."


def spend_cap_reached(cap_usd: float, until: str) -> str:
    return f"The bot has reached today's spending cap of ${cap_usd:.2f}; {until}."


def person_daily_limit(limit: int, until: str) -> str:
    return f"You've made {images(limit)} today, the daily limit for each person; {until}."


def channel_daily_limit(limit: int, until: str) -> str:
    return f"This channel has made {images(limit)} today, its daily limit; {until}."


def workspace_daily_limit(where: str, limit: int, until: str) -> str:
    """``where``: the platform's word for a workspace ("server" on Discord)."""
    return f"This {where} has made {images(limit)} today, its daily limit; {until}."


def hourly_limit(limit: int, wait: str) -> str:
    return (
        f"You've made {images(limit)} in the last hour, the limit for each person; "
        f"you can make more in about {wait}."
    )


def very_busy(queued: int) -> str:
    return f"The bot is very busy right now ({images(queued)} waiting); please try again in a few minutes."


# -- /usage ----------------------------------------------------------------------------------

ADMIN_NO_LIMITS = "You are an admin, so per-person limits don't apply to you."


def usage_line(who: str, day_images: int, day_usd: float, month_images: int, month_usd: float) -> str:
    return (
        f"{who}: {images(day_images)} today (about ${day_usd:.2f}), "
        f"{images(month_images)} this month (about ${month_usd:.2f})."
    )


def spend_cap(cap_usd: float) -> str:
    return f"Daily spending cap: ${cap_usd:.2f}."


def prices_of(date: str) -> str:
    return f"Costs are estimated from Gemini's paid-tier list prices of {date}."


def your_limits(limits: Sequence[str]) -> str:
    return f"Your limits: {' and '.join(limits)}."


def draws_with(model: str) -> str:
    return f"This conversation draws with {model}."
