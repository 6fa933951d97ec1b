"""Stored images this process read or wrote lately, in memory by digest, within a byte budget."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cachetools import LRUCache


class BlobCache:
    """A later turn sends its history's images again; keeping the ones just written or read
    saves reading megabytes back from the database each turn. Blobs are named by the SHA-256
    of their bytes, so a cached entry can never be stale: whatever process stored a digest,
    its bytes are these. ``max_bytes`` 0 keeps nothing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: LRUCache[str, bytes] = LRUCache(maxsize=max(1, max_bytes), getsizeof=len)

    def split(self, hashes: Iterable[str]) -> tuple[dict[str, bytes], list[str]]:
        """The wanted blobs held here, and the digests to read from the database."""
        held: dict[str, bytes] = {}
        missing: list[str] = []
        for digest in hashes:
            data = self._entries.get(digest)
            if data is None:
                missing.append(digest)
            else:
                held[digest] = data
        return held, missing

    def keep(self, blobs: Mapping[str, bytes]) -> None:
        for digest, data in blobs.items():
            # An image larger than the whole budget is not kept (LRUCache would refuse it).
            if 0 < len(data) <= self.max_bytes:
                self._entries[digest] = data

    def clear(self) -> None:
        """Once a conversation is forgotten, its images leave this process's memory too."""
        self._entries.clear()

    @property
    def held_bytes(self) -> int:
        return int(self._entries.currsize)
