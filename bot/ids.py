"""Strict parsing of the ids the bot wrote into controls and gets back from the network."""

from __future__ import annotations

import re

# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
_DIGITS = re.compile(r"[0-9]{1,19}")
# Stored ids are SQLite / PostgreSQL integers: signed 64-bit.
MAX_ID = 2**63 - 1


def parse_id(text: object) -> int | None:
    """A positive id that fits a signed 64-bit integer, or None for anything else."""
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
