"""The console's own words (the core's are in bot/text/messages.py)."""

from __future__ import annotations

NEW_CONVERSATION = "New conversation. Describe the image you want."
BYE = "Bye. Your conversation is saved; run the bot again to continue it."
HELP_INTRO = "Type a prompt and press Enter to make an image; keep typing to refine it."
# Lines only the console has, before and after the commands every surface shares.
HELP_BEFORE = (
    ("@photo.jpg", 'attach a photo (quote paths with spaces: @"my photo.jpg")'),
    ("--ar 16:9 / --size 2K", "set this conversation's aspect ratio / image size inline"),
    ("--model id / --n 3", "draw with another model / make 2-4 takes at once, inline"),
    ("--ref name", "add a pinned image to this prompt (several allowed); /pin name @photo.jpg pins a file"),
    ("/new", "start a new conversation"),
)
HELP_AFTER = (("/quit", "leave (Ctrl-D works too); the conversation is kept for next time"),)


def banner(model: str) -> str:
    return f"Nano Banana console · model {model} · type /help for commands"


def unknown_model(model: str) -> str:
    return (
        f"Note: {model} is not a model this version knows; it gets the ratios and photo limits "
        "every known model accepts, and its cost is unknown until MODELS_FILE gives its price."
    )


def continuing(turns: int) -> str:
    return f"Continuing your conversation ({turns} turn{'' if turns == 1 else 's'}); /new starts a fresh one."


def unknown_command(name: str) -> str:
    return f"Unknown command {name}; type /help for the list."


def not_found(names: str) -> str:
    return f"I can't find {names}; check the path after @ and try again."


def unreadable(name: str, reason: str | None) -> str:
    return f"I couldn't read {name} ({reason})."
