"""What the region editor's web page says: its refusals, its labels, and what it says as it goes."""

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
