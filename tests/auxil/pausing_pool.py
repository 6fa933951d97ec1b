"""An asyncpg pool stand-in that stops a connection inside its transaction: forced interleavings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg


class PausingPool:
    """Wraps a pool; a connection from it stops right after a statement starting with ``prefix``
    (still inside its transaction, holding its locks) until ``resume`` is set."""

    def __init__(self, pool: asyncpg.Pool, prefix: str) -> None:
        self._pool = pool
        self.prefix = prefix
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._pool, name)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[PausingConnection]:
        async with self._pool.acquire() as conn:
            yield PausingConnection(conn, self)


class PausingConnection:
    def __init__(self, conn: asyncpg.Connection, pool: PausingPool) -> None:
        self._conn = conn
        self._pool = pool

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    async def _after(self, query: str) -> None:
        if query.startswith(self._pool.prefix):
            self._pool.paused.set()
            await self._pool.resume.wait()

    async def execute(self, query: str, *args: object) -> str:
        result: str = await self._conn.execute(query, *args)
        await self._after(query)
        return result

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._conn.fetch(query, *args)
        await self._after(query)
        return rows
