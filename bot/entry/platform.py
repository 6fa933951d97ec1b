"""What the runtime needs from a platform adapter (Discord, Slack): run it, then close it."""

from __future__ import annotations

from typing import Protocol


class PlatformError(Exception):
    """A fatal platform problem an operator must fix (bad token, missing intent); its text is one
    plain line, printed instead of a traceback."""


class PlatformAdapter(Protocol):
    """A long-running connection to one chat platform, built once from Config and the service."""

    name: str

    async def run(self) -> None:
        """Connect and serve until closed; raise on a fatal problem (bad token, refused URL)."""
        ...

    async def close(self) -> None:
        """Stop taking new events and disconnect; idempotent, safe before ``run`` finished."""
        ...

    async def announce_interrupted(self) -> None:
        """Tell each person whose turn a crash or a stop cut off (each turn once)."""
        ...

    async def connected(self) -> bool:
        """Whether it can take events right now (for /healthz)."""
        ...
