"""Each platform's connection state, told to the process lease now and then, so the dashboard of
any process sharing the database shows every process's platforms (``storage.pg_processes``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from bot.ports import PlatformAdapter

log = logging.getLogger(__name__)

# The words a lease carries for a platform: fixed, never a message or an address.
CONNECTED, DISCONNECTED = "connected", "disconnected"
STATES = frozenset({CONNECTED, DISCONNECTED})
# A platform whose check has not answered by then is disconnected (as GET /readyz says it).
CHECK_TIMEOUT_S = 2.0


async def platform_states(
    adapters: Sequence[PlatformAdapter], timeout_s: float = CHECK_TIMEOUT_S
) -> dict[str, str]:
    """Each platform's name and state, checked all at once, each within ``timeout_s``."""

    async def state(adapter: PlatformAdapter) -> str:
        try:
            up = await asyncio.wait_for(adapter.connected(), timeout_s)
        except Exception as exc:  # a check that fails says the platform is not connected
            log.debug("platform check failed", extra={"platform": adapter.name, "error": type(exc).__name__})
            return DISCONNECTED
        return CONNECTED if up else DISCONNECTED

    states = await asyncio.gather(*(state(a) for a in adapters))
    return {a.name: s for a, s in zip(adapters, states, strict=True)}


async def report_now_and_then(
    adapters: Sequence[PlatformAdapter],
    report: Callable[[Mapping[str, str]], None],
    every_s: float,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> None:
    """Tell ``report`` (the store's ``report_platforms``) the platforms' states every ``every_s``,
    from now until cancelled; a change is logged once."""
    told: Mapping[str, str] | None = None
    while True:
        states = await platform_states(adapters, min(timeout_s, every_s))
        if told is not None and states != told:
            log.info("platform connection changed", extra={"platforms": states})
        report(states)
        told = states
        await asyncio.sleep(every_s)
