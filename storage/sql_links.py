"""The queries behind signed links (``storage.protocol.SignedLinks``), shared by both drivers."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from storage.records import LinkOutcome
from storage.sql_session import Session

SECRET_BYTES = 32


class SignedLinkQueries:
    """A mixin for ``storage.sql_store.SqlStore``: the signing key made once, and used links."""

    _clock: Callable[[], float]

    def _read(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    def _write(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    async def secret(self, name: str) -> bytes:
        async with self._write() as session:
            # The first writer's value wins; everyone else (now or later) reads it back.
            await session.execute(
                "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO NOTHING",
                name,
                secrets.token_bytes(SECRET_BYTES),
                self._clock(),
            )
            value = await session.fetchval("SELECT value FROM secrets WHERE name = $1", name)
        return bytes(value)

    async def use_link(self, link_id: str, expires_at: float) -> bool:
        async with self._write() as session:
            await session.execute("DELETE FROM used_links WHERE expires_at < $1", self._clock())
            taken = await session.fetchval(
                "INSERT INTO used_links (link_id, expires_at) VALUES ($1, $2) "
                "ON CONFLICT (link_id) DO NOTHING RETURNING 1",
                link_id,
                expires_at,
            )
        return taken is not None

    async def link_used(self, link_id: str) -> bool:
        async with self._read() as session:
            found = await session.fetchval("SELECT 1 FROM used_links WHERE link_id = $1", link_id)
        return found is not None

    async def note_link_outcome(self, link_id: str, outcome: LinkOutcome) -> None:
        async with self._write() as session:
            await session.execute(
                "UPDATE used_links SET outcome = $2, message = $3, result_sha256 = $4, result_mime = $5 "
                "WHERE link_id = $1",
                link_id,
                outcome.outcome,
                outcome.message,
                outcome.result_sha256,
                outcome.result_mime,
            )

    async def link_outcome(self, link_id: str) -> LinkOutcome | None:
        async with self._read() as session:
            row = await session.fetchrow(
                "SELECT outcome, message, result_sha256, result_mime FROM used_links "
                "WHERE link_id = $1 AND outcome IS NOT NULL",
                link_id,
            )
        return LinkOutcome(row[0], row[1], row[2], row[3]) if row is not None else None
