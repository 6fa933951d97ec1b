"""The reference board's words: /pin, /pins, /unpin and ``--ref`` (catalogued with bot/text/messages.py)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.text.settings import SettingError

# How long a pin's name may be; letters, digits, - and _ only (starting with a letter or digit),
# any letter case (stored lower).
MAX_NAME = 32

HELP_ENTRIES = {
    "pin": ("/pin name", "pin the latest image (or an attached one) as a reference for everyone here"),
    "pins": ("/pins", "the pinned references, by name"),
    "unpin": ("/unpin name", "remove a pin (whoever pinned it, or an admin)"),
}

PIN_WHICH_NAME = "Give the pin a name: /pin name (letters, digits, - and _, up to 32)."
UNPIN_WHICH_NAME = "Say which pin to remove: /unpin name."
NOTHING_TO_PIN = "There is no image here to pin yet; make one first, or attach the image to /pin."
NO_PINS = "Nothing is pinned here yet; /pin name pins the latest image (or an attached one)."
PINS_HEADING = "Pinned references (write --ref name in a prompt to use one):"
ONE_IMAGE_TO_PIN = "Attach one image to pin at a time."


def bad_name(name: str) -> str:
    return (
        f'"{name[:40]}" can\'t be a pin name; use up to {MAX_NAME} letters, digits, - and _, '
        "for example --ref alice."
    )


def ref_needs_name() -> str:
    return "--ref needs a pin name, for example --ref alice; /pins lists them."


def pinned(name: str) -> str:
    return f'Pinned as "{name}". Write --ref {name} in any prompt here to use it.'


def name_taken(name: str) -> str:
    return f'"{name}" is already pinned here; /unpin {name} first, or pick another name.'


def unpinned(name: str) -> str:
    return f'Unpinned "{name}".'


def unknown_pin(name: str) -> str:
    return f'Nothing is pinned as "{name}" here; /pins lists the names.'


def unknown_refs(names: Sequence[str]) -> str:
    shown = ", ".join(f'"{n}"' for n in names)
    if len(names) == 1:
        return f"There is no pin called {shown} here; /pins lists the names."
    return f"There are no pins called {shown} here; /pins lists the names."


def unpin_refused(name: str) -> str:
    return f'Only the person who pinned "{name}" or an admin can unpin it.'


def too_many_references(refs: int, attached: int, limit: int, model: str) -> str:
    photos = f" and {attached} attached image{'' if attached == 1 else 's'}" if attached else ""
    return (
        f"That's {refs} reference{'' if refs == 1 else 's'}{photos}; {model} takes at most {limit} "
        "images per turn. Use fewer and try again."
    )


def reference_gone(name: str) -> str:
    return f'The pin "{name}" was removed while your turn waited; send it again without it.'


def reference_label(name: str) -> str:
    """What the request says before a reference image (the model reads it, and so do people
    who look at what was sent)."""
    return f'Reference "{name}":'


def pin_line(name: str, pinned_by: str) -> str:
    return f"{name} (pinned by {pinned_by})"


def clean_name(value: str) -> str:
    """A pin's name as stored (lower case), or SettingError with the sentence to show."""
    name = value.strip().lower()
    allowed = all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    if not name or len(name) > MAX_NAME or not allowed or not name[0].isalnum():
        raise SettingError(bad_name(value.strip()))
    return name
