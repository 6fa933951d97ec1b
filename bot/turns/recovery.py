"""After a restart: the turns a crash or a stop cut off, so each person can be told once."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.vocabulary import ConversationKey
from storage.protocol import Store

log = logging.getLogger(__name__)

# Turns cut off longer ago than this are not mentioned after a restart; nobody waits that long.
INTERRUPTED_WINDOW_S = 6 * 3600.0


Tell = Callable[[ConversationKey, str], Awaitable[None]]


async def announce_interrupted(
    store: Store, platform: str, tell: Tell, window_s: float = INTERRUPTED_WINDOW_S
) -> int:
    """Tell each person of ``platform`` whose turn a dead process cut off in the last
    ``window_s`` (``tell(conversation, message id)``), then mark the turn finished: a process
    that dies between the two leaves it for the next one to tell. Returns how many."""
    found = await store.take_interrupted(platform, time.time() - window_s)
    for key, message_id in found:
        await tell(key, message_id)
        await store.finish_message(key.platform, key.channel, message_id)
    if found:
        log.info("turns interrupted by a restart", extra={"platform": platform, "turns": len(found)})
    return len(found)
