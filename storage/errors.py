"""Errors a store raises when the database itself is unusable."""

from __future__ import annotations


class StoreError(Exception):
    """The database cannot be used: written by a newer bot, not open, or misconfigured."""
