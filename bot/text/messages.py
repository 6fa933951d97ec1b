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

# The region editor's web page (bot/editing): its refusals, labels and what it says as it goes.
EDIT_LINK_REFUSED = {
    "invalid": "This editor link is not valid; press Edit region under the image again for a new one.",
    "expired": "This editor link has expired; press Edit region under the image again for a new one.",
    "used": "This editor link has already been used; press Edit region under the image again to edit more.",
    "foreign": "This editor link is not yours; press Edit region under the image for your own.",
}
EDIT_IMAGE_GONE = "That image is no longer in the conversation (it may have been forgotten)."
EDIT_TOO_LARGE = "That edit is too large to send; paint a simpler region and try again."
EDIT_BAD_MASK = "The painted region didn't arrive as a picture; reload the page and paint it again."
EDIT_NOTHING_PAINTED = "Paint over the part of the image to change first."
EDIT_NO_INSTRUCTION = "Say what should change in the painted region first."
EDIT_SENDING = "Sending your edit…"
EDIT_SEND_FAILED = "Your edit didn't reach me; check your connection and press Submit again."
# For RegionEdits.progress (the wiring slice): while the edit runs, and once its reply is posted.
EDIT_WAITING = "Working on it; the result will appear here and in the conversation."
EDIT_READY = "Here is the result; it is in the conversation too."
EDIT_LABELS = {
    "title": "Edit region",
    "intro": "Paint over the part of the image to change, then say what should change there.",
    "brush": "Brush",
    "eraser": "Eraser",
    "size": "Brush size",
    "undo": "Undo",
    "clear": "Clear",
    "instruction": "What should change in the painted region?",
    "placeholder": "for example: a red umbrella instead of the hat",
    "submit": "Submit",
    "image": "The image to edit",
    "result": "The result",
}


def edit_on_its_way(where: str) -> str:
    """The page's answer to a submitted edit; ``where`` names the place, "in the thread #art"."""
    return f"Your edit is on its way; the result will appear {where}, and here when it is ready."


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


# -- what each platform's adapter says in its own words (adapters import these) -----------

CONSOLE_NEW_CONVERSATION = "New conversation. Describe the image you want."

CONSOLE_NO_IMAGE_YET = "! Make an image first; this conversation has none yet."

CONSOLE_CONTROLS_HELP = """\
  --model id / --n 3    draw with another model / make 2-4 takes at once, inline
  /model [id]           show or set this conversation's model
  /variations [n]       make n takes (2-4, default 4) of the latest image at once
  /continue n           go on from take n of the latest variations
  /redo 2K|4K           draw the latest image again at a larger size (models with sizes)"""

DISCORD_INTENT_REFUSED = (
    "Discord refused the message-content intent; enable it in the Developer Portal "
    "(Bot > Privileged Gateway Intents) or set DISCORD_MESSAGE_CONTENT=false."
)

DISCORD_BAD_TOKEN = "Discord rejected DISCORD_TOKEN; copy the bot token again from the Developer Portal."

DISCORD_UPLOAD_FAILED = "I made the image but Discord would not take the upload; please try again."

DISCORD_POST_FAILED = "Discord wouldn't let me post my reply in this thread just now; please try again."

DISCORD_HELP = """\
**Make an image**: mention me with a prompt, e.g. `@{name} a red bicycle at dawn, watercolor`, \
or use `/imagine`. I answer in a thread.
**Refine it**: {refine}
**Edit photos**: attach images to any message (up to {max_images} per turn).
**Go back**: reply to one of my earlier images to continue from that one.
**Shape and size**: add `--ar 16:9`{size_flag} to a prompt, use `/aspect`{size_command}, \
or pick a ratio under an image. Ratios: {ratios}.
**Buttons**: 🔁 Regenerate makes a new take on the same prompt; 🎲 Variations makes 4 at once \
(or add `--n 3` to a prompt), and Continue from this one picks the take to refine. Redo at 2K/4K \
draws an image again larger. `/model` or `--model` changes the model.
**Start over**: `/forget` deletes the thread's history. In DMs every message is a turn.
**Usage**: `/usage` shows the images you made and their estimated cost."""

DISCORD_FORGET_WHERE = (
    "Use /forget inside one of my image threads (or in a DM with me); it deletes that conversation."
)

DISCORD_MALFORMED_COMMAND = (
    "I couldn't read that command's options; type / and pick the command from the list again."
)

DISCORD_RESTARTING = "I'm restarting; try again in a minute."

DISCORD_UNKNOWN_PLACE = "I couldn't tell which channel this is; please try again in a moment."

DISCORD_THREAD_FAILED = "Discord wouldn't let me start a thread for this; please try again in a moment."

DISCORD_THREAD_FORBIDDEN = (
    "I can't start a thread here; ask a server admin to give me the Create Public Threads and "
    "Send Messages in Threads permissions in this channel."
)

SLACK_APP_TOKEN_REJECTED = (
    "Slack rejected SLACK_APP_TOKEN; create an app-level token with the connections:write scope "
    "(Basic Information > App-Level Tokens) and copy it again."
)

SLACK_BOT_TOKEN_REJECTED = (
    "Slack rejected SLACK_BOT_TOKEN; reinstall the app and copy the Bot User OAuth Token again."
)

SLACK_CONTROLS_FALLBACK = "Regenerate, pick another aspect ratio, or forget this thread."

SLACK_SIZE_HINT = "Inside a thread, add --size 2K to a message."

SLACK_THREAD_HINT = "Inside a thread, add --ar 16:9 to a message or use the menu on my reply."

SLACK_FORGET_COMMAND_REPLY = (
    "Slash commands can't run inside threads, so to clear one use the Forget thread button on my "
    "reply in that thread; its image history is then deleted."
)

# Slack kept refusing to post a reply (after the client's retries): say so privately, if it can.
SLACK_POST_FAILED = (
    "Slack wouldn't let me post my reply in this thread just now; please send your message again."
)

# Slack still answered 429 after the client's retries (each waited the Retry-After Slack asked).
SLACK_UPLOAD_RATE_LIMITED = (
    "I made the image but Slack is limiting how fast I can upload right now; press Regenerate in a minute."
)

SLACK_UPLOAD_FAILED = (
    "I made the image but Slack refused the upload; ask a workspace admin to check the app has "
    "the files:write scope, then press Regenerate."
)

SLACK_MODEL_HINT = "Inside a thread, add --model and a model id to a message."
