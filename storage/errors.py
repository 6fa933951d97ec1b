"""Errors a store raises when the database itself is unusable."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used: written by a newer bot, not open, or misconfigured."""


class HeadMoved(StoreError):
    """``append_turn`` found the conversation's head is no longer the one the turn was computed
    against: another turn was stored first, so writing would silently branch the conversation."""

    def __init__(self, expected: int | None, current: int | None) -> None:
        super().__init__(f"conversation head moved from {expected} to {current}")
        self.expected = expected
        self.current = current
