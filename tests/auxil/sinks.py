"""A ReplySink that records what the core sends, in order, for assertions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.vocabulary import Reply


@dataclass
class RecordingSink:
    """Implements bot.vocabulary.ReplySink by keeping every call as an event."""

    events: list[tuple[str, object]] = field(default_factory=list)

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        self.events.append(("working", True))
        try:
            yield
        finally:
            self.events.append(("working", False))

    async def send(self, reply: Reply) -> list[str]:
        self.events.append(("send", reply))
        return [f"posted-{len(self.events)}"]

    async def notice(self, text: str) -> None:
        self.events.append(("notice", text))

    @property
    def replies(self) -> list[Reply]:
        return [r for kind, r in self.events if kind == "send" and isinstance(r, Reply)]

    @property
    def notices(self) -> list[str]:
        return [str(t) for kind, t in self.events if kind == "notice"]

    @property
    def last(self) -> Reply:
        return self.replies[-1]
