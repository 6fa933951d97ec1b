"""Errors a store raises: the database is unusable, away for now, or a write lost a race."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used: written by a newer bot, not open, or misconfigured."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or cannot take the write right now: down, restarting,
    failing over, out of connections, locked, or out of disk. Nothing of the call was written
    (a transaction that failed rolled back), so the same call may be tried again later."""


class HeadMoved(StoreError):
    """A turn was computed against a conversation head that is no longer the head.

    Another turn was stored in between (by another coroutine or process); nothing was written.
    ``head`` is the conversation's current head (None if it has no turns).
    """

    def __init__(self, expected: int | None, head: int | None) -> None:
        super().__init__(
            f"The conversation moved on while this turn was made (expected head {expected}, now {head})."
        )
        self.expected = expected
        self.head = head
