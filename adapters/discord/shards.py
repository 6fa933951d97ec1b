"""Discord sharding: which shards this process runs and how fast their sessions may start."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable

# Discord allows ``max_concurrency`` IDENTIFYs per 5 seconds: one per bucket, a shard's bucket
# being ``shard_id % max_concurrency`` (GET /gateway/bot says how many buckets there are).
IDENTIFY_INTERVAL_S = 5.0


class IdentifyGate:
    """Spaces this process's IDENTIFYs as Discord's session start limit asks, bucket by bucket.

    discord.py's own hook sleeps 5 s before every IDENTIFY but the first, whatever the bucket;
    this waits only when the shard's bucket identified less than 5 s ago.
    """

    def __init__(self, max_concurrency: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self._clock = clock
        self._last: dict[int, float] = {}
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    def delay(self, shard_id: int) -> float:
        """Seconds the shard would wait now before it may IDENTIFY."""
        last = self._last.get(shard_id % self.max_concurrency)
        return 0.0 if last is None else max(0.0, last + IDENTIFY_INTERVAL_S - self._clock())

    async def wait(self, shard_id: int | None) -> None:
        shard = shard_id or 0
        bucket = shard % self.max_concurrency
        async with self._locks[bucket]:
            wait_s = self.delay(shard)
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            self._last[bucket] = self._clock()


def shard_list(count: int, ids: tuple[int, ...] | None) -> list[int]:
    """The shards this process runs: the configured ids, else all of ``count``."""
    return list(ids) if ids is not None else list(range(count))
