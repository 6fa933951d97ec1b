"""What a shared PostgreSQL still holds for work that should be over: places, reservations, claims."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from tests.auxil.waiting import settled


@dataclass
class Leftovers:
    """Rows no finished work should leave behind, with enough detail to say whose they are."""

    queued: list[str] = field(default_factory=list)
    reservations: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.queued) + len(self.reservations) + len(self.unfinished)

    def describe(self) -> str:
        parts = [
            f"turn_queue {len(self.queued)} {self.queued[:5]}",
            f"limit_reservations {len(self.reservations)} {self.reservations[:5]}",
            f"unfinished claims {len(self.unfinished)} {self.unfinished[:5]}",
        ]
        return ", ".join(parts)


async def read_leftovers(conn: asyncpg.Connection) -> Leftovers:
    queued = await conn.fetch("SELECT conversation, owner, running FROM turn_queue ORDER BY id")
    reserved = await conn.fetch("SELECT scope, owner FROM limit_reservations ORDER BY id")
    unfinished = await conn.fetch(
        "SELECT message_id, owner FROM processed_messages WHERE finished_at IS NULL ORDER BY claimed_at"
    )
    return Leftovers(
        queued=[
            f"{r['conversation']} of {str(r['owner'])[:8]}{' running' if r['running'] else ''}"
            for r in queued
        ],
        reservations=[f"{r['scope']} of {str(r['owner'])[:8]}" for r in reserved],
        unfinished=[f"{r['message_id']} of {str(r['owner'] or '')[:8]}" for r in unfinished],
    )


async def settled_leftovers(url: str, timeout_s: float) -> Leftovers:
    """Waits (at most ``timeout_s``) for the background clean-up to leave no such row; returns
    what is left then (nothing, when it settled). ``url`` must reach the bot's schema with a
    role that may read it."""
    conn = await asyncpg.connect(url)
    try:
        last = Leftovers()

        async def clean() -> bool:
            nonlocal last
            last = await read_leftovers(conn)
            return last.count == 0

        await settled(clean, timeout_s)
        return last
    finally:
        await conn.close()
