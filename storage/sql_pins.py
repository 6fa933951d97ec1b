"""The queries behind the reference board (``storage.protocol.PinBoard``), shared by both drivers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from storage.blob_cache import BlobCache
from storage.content import Blob
from storage.records import Pin
from storage.sql_session import Row, Session
from storage.sql_turns import release_blobs, stored_blobs

_COLUMNS = "p.platform, p.workspace, p.name, p.sha256, b.mime_type, p.pinned_by, p.created_at"
_FROM = "FROM pins AS p JOIN blobs AS b ON b.sha256 = p.sha256"


def _pin(row: Row) -> Pin:
    return Pin(row[0], row[1], row[2], row[3], row[4], row[5], float(row[6]))


async def _named(session: Session, platform: str, workspace: str, name: str) -> Pin | None:
    row = await session.fetchrow(
        f"SELECT {_COLUMNS} {_FROM} WHERE p.platform = $1 AND p.workspace = $2 AND p.name = $3",
        platform,
        workspace,
        name,
    )
    return _pin(row) if row is not None else None


class PinQueries:
    """A mixin for ``storage.sql_store.SqlStore``: pins, and their images kept while pinned."""

    _clock: Callable[[], float]
    blob_cache: BlobCache

    def _read(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    def _transaction(self) -> AbstractAsyncContextManager[Session]:
        raise NotImplementedError

    async def add_pin(
        self, platform: str, workspace: str, name: str, image: Blob | str, pinned_by: str
    ) -> Pin:
        sha256 = image if isinstance(image, str) else image.sha256
        place = (platform, workspace, name)
        async with self._transaction() as session:
            found = await _named(session, *place)
            if found is not None:
                return found
            if isinstance(image, Blob):
                await session.execute(
                    "INSERT INTO blobs (sha256, mime_type, size, data) VALUES ($1, $2, $3, $4) "
                    f"ON CONFLICT (sha256) {session.dialect.blob_conflict}",
                    image.sha256,
                    image.mime_type,
                    len(image.data),
                    image.data,
                )
            # Locked (where rows lock) so a concurrent forget cannot delete it under the pin.
            if not await stored_blobs(session, [sha256]):
                raise ValueError(f"No stored image {sha256} to pin.")
            await session.execute(
                "INSERT INTO pins (platform, workspace, name, sha256, pinned_by, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform, workspace, name) DO NOTHING",
                *place,
                sha256,
                pinned_by,
                self._clock(),
            )
            pin = await _named(session, *place)
            assert pin is not None  # inserted or pinned meanwhile, seen in this transaction
            if pin.sha256 != sha256:  # someone else took the name meanwhile: keep nothing
                await release_blobs(session, [sha256])
        return pin

    async def pins(self, platform: str, workspace: str, names: Sequence[str] | None = None) -> list[Pin]:
        async with self._read() as session:
            rows = await session.fetch(
                f"SELECT {_COLUMNS} {_FROM} WHERE p.platform = $1 AND p.workspace = $2 ORDER BY p.name",
                platform,
                workspace,
            )
        found = [_pin(row) for row in rows]
        return found if names is None else [pin for pin in found if pin.name in set(names)]

    async def remove_pin(self, platform: str, workspace: str, name: str) -> bool:
        return bool(await self._unpin(platform, workspace, (name,)))

    async def forget_pins(self, platform: str, workspace: str) -> int:
        return await self._unpin(platform, workspace, None)

    async def _unpin(self, platform: str, workspace: str, names: tuple[str, ...] | None) -> int:
        which = "" if names is None else " AND name = $3"
        async with self._transaction() as session:
            rows = await session.fetch(
                f"DELETE FROM pins WHERE platform = $1 AND workspace = $2{which} RETURNING sha256",
                platform,
                workspace,
                *(names or ()),
            )
            await release_blobs(session, sorted({row[0] for row in rows}))
        if rows:  # an unpinned image nothing else holds leaves this process's memory too
            self.blob_cache.clear()
        return len(rows)
