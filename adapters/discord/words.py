"""Discord's own words: what only the Discord adapter says (the core's are in bot/text/messages.py)."""

from __future__ import annotations

INTENT_REFUSED = (
    "Discord refused the message-content intent; enable it in the Developer Portal "
    "(Bot > Privileged Gateway Intents) or set DISCORD_MESSAGE_CONTENT=false."
)

BAD_TOKEN = "Discord rejected DISCORD_TOKEN; copy the bot token again from the Developer Portal."

UPLOAD_FAILED = "I made the image but Discord would not take the upload; please try again."

POST_FAILED = "Discord wouldn't let me post my reply in this thread just now; please try again."

HELP = """\
**Make an image**: mention me with a prompt, e.g. `@{name} a red bicycle at dawn, watercolor`, \
or use `/imagine`. I answer in a thread.
**Refine it**: {refine}
**Edit photos**: attach images to any message (up to {max_images} per turn).
**Go back**: reply to one of my earlier images to continue from that one.
**Shape and size**: add `--ar 16:9`{size_flag} to a prompt, use `/aspect`{size_command}, \
or pick a ratio under an image. Ratios: {ratios}.
**Buttons**: 🔁 Regenerate makes a new take on the same prompt; 🎲 Variations makes 4 at once \
(or add `--n 3` to a prompt), and Continue from this one picks the take to refine. Redo at 2K/4K \
draws an image again larger. `/model` or `--model` changes the model. 🔍 Zoom out and Pan show more \
of the scene around an image, which stays exactly as it was; 🖌️ Edit region (when the bot has a \
public address) sends you a private link to paint over the part to change.
**References**: `/pin name` pins the latest image (or an attached one) for the whole server, \
and so does right-clicking a message with an image (*Apps* → *Pin as reference*); write \
`--ref name` in any prompt to use it (several allowed). `/pins` lists them, and `/unpin name` \
removes one.
**Start over**: `/forget` deletes the thread's history. In DMs every message is a turn.
**Usage**: `/usage` shows the images you made and their estimated cost.
**Commands**:
{commands}"""

REFINE_BY_TALKING = "just keep talking in the thread, e.g. `make the sky warmer`."


def refine_by_mention(name: str) -> str:
    return f"mention me again in the thread, e.g. `@{name} make the sky warmer`."


FORGET_WHERE = (
    "Use /forget inside one of my image threads (or in a DM with me); it deletes that conversation."
)

MALFORMED_COMMAND = "I couldn't read that command's options; type / and pick the command from the list again."

RESTARTING = "I'm restarting; try again in a minute."

UNKNOWN_PLACE = "I couldn't tell which channel this is; please try again in a moment."

THREAD_FAILED = "Discord wouldn't let me start a thread for this; please try again in a moment."

THREAD_FORBIDDEN = (
    "I can't start a thread here; ask a server admin to give me the Create Public Threads and "
    "Send Messages in Threads permissions in this channel."
)

ASPECT_PLACEHOLDER = "Regenerate at another aspect ratio…"


def command_gone(name: str) -> str:
    return f"/{name} is not one of my commands any more; type / to see the current ones."


def grew_in_transit(name: str) -> str:
    return f"{name} arrived larger than Discord said it was, so I didn't use it; attach it again."


# The zoom, pan and region editor buttons under an image: (label, emoji) by (what, argument).
FRAME_LABELS = {
    ("zoom", "1.5"): ("Zoom out 1.5x", "🔍"),
    ("zoom", "2"): ("Zoom out 2x", "🔍"),
    ("edit", ""): ("Edit region", "🖌️"),
    ("pan", "left"): ("Pan left", "⬅️"),
    ("pan", "right"): ("Pan right", "➡️"),
    ("pan", "up"): ("Pan up", "⬆️"),
    ("pan", "down"): ("Pan down", "⬇️"),
}


# -- doors: Edit with Nano Banana, the user install, takes in one message, alt text ---------------

EDIT_MENU = "Edit with Nano Banana"

EDIT_TITLE = "Edit with Nano Banana"

EDIT_LABEL = "What should change?"

EDIT_PLACEHOLDER = "e.g. make the sky a stormy purple"

REFINE_TITLE = "Refine this image"

REFINE_LABEL = "What next?"

REFINE_PLACEHOLDER = "e.g. now as a watercolor"

REFINE_BUTTON = "Refine"

NO_IMAGE_TO_EDIT = "That message has no image I can edit; right-click a message with a picture."

PIN_MENU = "Pin as reference"

PIN_LABEL = "Pin name (then write --ref name in a prompt)"

PIN_PLACEHOLDER = "up to 32 letters, digits, - and _, e.g. alice"

NO_IMAGE_TO_PIN = "That message has no image I can pin; right-click a message with a picture."

# Alt text for an image whose prompt had no words (a photo sent on its own).
ALT_WITHOUT_PROMPT = "An image made with Gemini"


def edit_started(thread_mention: str) -> str:
    return f"Editing it in {thread_mention}."


def continue_take(number: int) -> str:
    return f"Continue from {number}"


# -- forms submitted statelessly (adapters.discord.desk) ---------------------------------------------

FORM_UNREADABLE = "I couldn't read that form; right-click the message (or click the button) and try again."

FORM_MESSAGE_GONE = "That message is gone or I can't see it any more, so I left it alone."

FORM_FROM_BEFORE_RESTART = (
    "I restarted since you opened that form and can't see this channel to find the message again; "
    "right-click the message and pick the command once more."
)
