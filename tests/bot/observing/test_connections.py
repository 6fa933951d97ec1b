"""Each platform's connection state, as a process tells its lease: checked all at once, each within
a limit, in fixed words; reported at once and then every third of the lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import pytest

from bot.observing.connections import platform_states, report_now_and_then
from tests.auxil.waiting import settled


class Platform:
    """An adapter as far as its connection check goes."""

    def __init__(self, name: str, up: bool = True, *, fails: bool = False, hangs: bool = False) -> None:
        self.name = name
        self.up = up
        self.fails = fails
        self.hangs = hangs

    async def connected(self) -> bool:
        if self.hangs:
            await asyncio.Event().wait()
        if self.fails:
            raise ConnectionResetError("the socket went away")
        return self.up


async def test_each_platform_is_connected_or_disconnected_whatever_its_check_does() -> None:
    adapters = [
        Platform("discord"),
        Platform("slack", up=False),
        Platform("console", fails=True),
        Platform("other", hangs=True),
    ]
    started = asyncio.get_running_loop().time()
    states = await platform_states(adapters, timeout_s=0.2)  # type: ignore[arg-type]
    assert states == {
        "discord": "connected",
        "slack": "disconnected",
        "console": "disconnected",
        "other": "disconnected",
    }
    assert asyncio.get_running_loop().time() - started < 1.0  # the hung check did not hold the rest


async def test_states_are_reported_at_once_then_now_and_then_and_a_change_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack = Platform("slack")
    reports: list[Mapping[str, str]] = []
    seen = asyncio.Event()

    def report(states: Mapping[str, str]) -> None:
        reports.append(dict(states))
        seen.set()

    caplog.set_level(logging.INFO, logger="bot.observing.connections")
    job = asyncio.create_task(report_now_and_then([slack], report, every_s=0.05))  # type: ignore[list-item]
    try:
        await asyncio.wait_for(seen.wait(), 1)
        assert reports == [{"slack": "connected"}]
        slack.up = False
        assert await settled(lambda: reports[-1] == {"slack": "disconnected"}, 2)
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    changes = [r for r in caplog.records if r.getMessage() == "platform connection changed"]
    assert [getattr(r, "platforms", None) for r in changes] == [{"slack": "disconnected"}]
