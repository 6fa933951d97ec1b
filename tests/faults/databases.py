"""The fault suite's view of the bot's database, read back after (or between) runs, on either backend."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from tests.faults.harness import (
    TurnRow,
    database_problems,
    empty_images,
    open_readonly,
    read_turns,
    record_refs,
    record_text,
    turn_problems,
)


class Database(Protocol):
    """What the suite checks: soundness, the stored turns, and the claimed messages."""

    url: str
    # A process that dies keeps its conversations until its lease runs out (PostgreSQL only).
    lease_s: float

    async def problems(self) -> list[str]: ...

    async def turns(self) -> list[TurnRow]: ...

    async def claimed(self) -> set[str]: ...

    async def unfinished(self) -> set[str]: ...


@dataclass
class SqliteDatabase:
    path: Path
    lease_s: float = 0.0

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    async def problems(self) -> list[str]:
        return await asyncio.to_thread(database_problems, self.path)

    async def turns(self) -> list[TurnRow]:
        return await asyncio.to_thread(read_turns, self.path)

    async def claimed(self) -> set[str]:
        return await asyncio.to_thread(self._ids, "SELECT message_id FROM processed_messages")

    async def unfinished(self) -> set[str]:
        return await asyncio.to_thread(
            self._ids, "SELECT message_id FROM processed_messages WHERE finished_at IS NULL"
        )

    def _ids(self, sql: str) -> set[str]:
        with open_readonly(self.path) as conn:
            return {str(row[0]) for row in conn.execute(sql)}


@dataclass
class PostgresDatabase:
    url: str
    lease_s: float = 2.0

    async def _fetch(self, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    async def turns(self) -> list[TurnRow]:
        rows = await self._fetch(
            "SELECT t.id, c.thread, t.parent_id, t.user_content, t.model_content "
            "FROM turns AS t JOIN conversations AS c ON c.id = t.conversation_id ORDER BY t.id"
        )
        return [_turn_row(r) for r in rows]

    async def claimed(self) -> set[str]:
        return {str(r[0]) for r in await self._fetch("SELECT message_id FROM processed_messages")}

    async def unfinished(self) -> set[str]:
        rows = await self._fetch("SELECT message_id FROM processed_messages WHERE finished_at IS NULL")
        return {str(r[0]) for r in rows}

    async def problems(self) -> list[str]:
        """The same checks as on SQLite, except SQLite's own integrity pragmas (PostgreSQL keeps
        its data files consistent itself, and foreign keys are enforced on every write)."""
        problems: list[str] = []
        for row in await self._fetch(
            "SELECT c.id, c.head_turn_id, t.conversation_id FROM conversations AS c "
            "LEFT JOIN turns AS t ON t.id = c.head_turn_id"
        ):
            if row["head_turn_id"] is None or row["conversation_id"] != row["id"]:
                problems.append(
                    f"conversation {row['id']} head {row['head_turn_id']} is not one of its turns"
                )
        for row in await self._fetch(
            "SELECT t.id, t.parent_id FROM turns AS t JOIN turns AS p ON p.id = t.parent_id "
            "WHERE p.conversation_id != t.conversation_id"
        ):
            problems.append(f"turn {row['id']} continues turn {row['parent_id']} of another conversation")
        stored = {
            r["sha256"]: (r["size"], hashlib.sha256(bytes(r["data"])).hexdigest())
            for r in await self._fetch("SELECT sha256, size, data FROM blobs")
        }
        linked: dict[int, set[str]] = {}
        for r in await self._fetch("SELECT turn_id, sha256 FROM turn_blobs"):
            linked.setdefault(r["turn_id"], set()).add(r["sha256"])
        usage = {r[0] for r in await self._fetch("SELECT turn_id FROM usage_log")}
        for r in await self._fetch("SELECT id, user_content, model_content FROM turns"):
            problems += turn_problems(r["id"], r["user_content"], r["model_content"], stored, linked, usage)
        return problems + empty_images(stored)


def _turn_row(row: Any) -> TurnRow:
    user, model = json.loads(row["user_content"]), json.loads(row["model_content"])
    return TurnRow(
        id=row["id"],
        thread=row["thread"],
        parent_id=row["parent_id"],
        prompt=record_text(user),
        model_parts=len(model.get("parts") or ()),
        refs=tuple(dict.fromkeys([*record_refs(user), *record_refs(model)])),
    )
