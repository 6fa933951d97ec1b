"""Whether a turn still owns its message: a process paused or cut off from a shared database
longer than its lease may find its turn taken over (announced as cut off) by another process."""

from __future__ import annotations

from bot.ports import TurnFence
from bot.vocabulary import ConversationKey


class _Always:
    async def holds(self) -> bool:
        return True


# A turn nobody else can take over.
ALWAYS_HOLDS: TurnFence = _Always()


class SoleProcess:
    """One process (SQLite): nobody else can take a turn over."""

    def for_turn(self, key: ConversationKey, message_id: str) -> TurnFence:
        return ALWAYS_HOLDS
