"""After a restart: the turns a crash or a stop cut off, so each person can be told once."""

from __future__ import annotations

import logging
import time

from bot.vocabulary import ConversationKey
from storage.protocol import Store

log = logging.getLogger(__name__)

# Turns cut off longer ago than this are not mentioned after a restart; nobody waits that long.
INTERRUPTED_WINDOW_S = 6 * 3600.0


async def interrupted_turns(
    store: Store, platform: str, window_s: float = INTERRUPTED_WINDOW_S
) -> list[tuple[ConversationKey, str]]:
    """Turns of ``platform`` cut off in the last ``window_s`` as (conversation, message id),
    each returned once: an adapter calls this when it starts and tells each person."""
    found = await store.take_interrupted(platform, time.time() - window_s)
    if found:
        log.info("turns interrupted by a restart", extra={"platform": platform, "turns": len(found)})
    return found
