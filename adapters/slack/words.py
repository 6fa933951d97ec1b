"""Slack's own words: what only the Slack adapter says (the core's are in bot/text/messages.py)."""

from __future__ import annotations

APP_TOKEN_REJECTED = (
    "Slack rejected SLACK_APP_TOKEN; create an app-level token with the connections:write scope "
    "(Basic Information > App-Level Tokens) and copy it again."
)

BOT_TOKEN_REJECTED = (
    "Slack rejected SLACK_BOT_TOKEN; reinstall the app and copy the Bot User OAuth Token again."
)

CONTROLS_FALLBACK = "Regenerate, pick another aspect ratio, or forget this thread."

# Slash commands set a channel's defaults; inside a thread these say how to change each setting.
SIZE_HINT = "Inside a thread, add --size 2K to a message."
THREAD_HINT = "Inside a thread, add --ar 16:9 to a message or use the menu on my reply."
MODEL_HINT = "Inside a thread, add --model and a model id to a message."
THINK_HINT = "Inside a thread, add --think high to a message for that image."
# How the model button says a thread's model is changed.
MODEL_IN_THREAD = "--model and a model id in a message"

FORGET_COMMAND_REPLY = (
    "Slash commands can't run inside threads, so to clear one use the Forget thread button on my "
    "reply in that thread; its image history is then deleted."
)

FORGET_CONFIRM_TITLE = "Forget this thread?"
FORGET_CONFIRM_TEXT = "The bot deletes this thread's image history. The messages stay in Slack."

# Slack kept refusing to post a reply (after the client's retries): say so privately, if it can.
POST_FAILED = "Slack wouldn't let me post my reply in this thread just now; please send your message again."

# Slack still answered 429 after the client's retries (each waited the Retry-After Slack asked).
UPLOAD_RATE_LIMITED = (
    "I made the image but Slack is limiting how fast I can upload right now; press Regenerate in a minute."
)

UPLOAD_FAILED = (
    "I made the image but Slack refused the upload; ask a workspace admin to check the app has "
    "the files:write scope, then press Regenerate."
)


def hidden_by_plan(name: str) -> str:
    return f"{name} is hidden by this workspace's plan limits, so I can't read it; attach it again."


def shared_from_elsewhere(name: str) -> str:
    return (
        f"Slack wouldn't let me read {name} (it may be shared from another organization); "
        "download it and attach it here again."
    )


def unreachable(name: str) -> str:
    return f"I couldn't reach Slack to fetch {name}; attach it again."


def not_found(name: str) -> str:
    return f"I couldn't find {name} on Slack; attach it again."


def deleted(name: str) -> str:
    return f"{name} is no longer on Slack (it was deleted); attach it again."


def sign_in_page(name: str) -> str:
    return (
        f"{name} could not be downloaded from Slack (got a sign-in page instead of the file); "
        "check the app has the files:read scope and try again."
    )


# The zoom, pan and region editor buttons under an image, by (what, argument).
FRAME_LABELS = {
    ("zoom", "1.5"): "Zoom out 1.5x",
    ("zoom", "2"): "Zoom out 2x",
    ("edit", ""): "Edit region",
    ("pan", "left"): "Pan left",
    ("pan", "right"): "Pan right",
    ("pan", "up"): "Pan up",
    ("pan", "down"): "Pan down",
}


# -- the "Edit with Nano Banana" message shortcut (adapters/slack/shortcut.py) ---------------------
EDIT_SHORTCUT_NAME = "Edit with Nano Banana"  # also the modal's title (Slack allows 24 characters)
EDIT_MODAL_LABEL = "What should change?"
EDIT_MODAL_HINT = "For example: make the sky warmer, or turn it into a watercolor."
EDIT_MODAL_SUBMIT = "Edit"
EDIT_MODAL_CANCEL = "Cancel"
EDIT_EMPTY = "Say what should change in the image."
NO_IMAGE_TO_EDIT = (
    "That message has no image I can edit; use Edit with Nano Banana on a message with a picture."
)

# -- the AI app surface (adapters/slack/assistant.py) ------------------------------------------------
# While a turn runs: Slack shows "<app name> is drawing…" under the thread.
WORKING_STATUS = "is drawing…"
SUGGESTED_TITLE = "Try one of these:"
# The prompts a new assistant thread offers (Slack shows up to four): (button title, message sent).
SUGGESTED_PROMPTS = (
    ("A watercolor city", "A watercolor painting of a rainy city street at dusk"),
    ("Sticker of a fox", "A cute sticker of a sleepy fox, white border, flat colors"),
    ("Product photo", "A studio product photo of a ceramic coffee mug on a wooden table"),
    ("Retro poster", "A retro travel poster of a lighthouse on a cliff, bold flat shapes"),
)
# An uploaded image whose turn had no words (alt text describes every upload).
ALT_TEXT_FALLBACK = "An image made by Nano Banana"
