"""Failed Slack Web API calls in /metrics: ``nanobanana_platform_api_errors_total`` by method and
status class, after the client's own retry, as the fake Slack answers the bot's post."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.observing.metrics import Metrics
from tests.auxil import fake_gemini as fg
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.slack_bot import Bot
from tests.auxil.slack_bot import bot as bot
from tests.bot.observing.test_metrics import samples


def api_errors(metrics: Metrics) -> dict[tuple[str, str, str], float]:
    return {
        (labels["platform"], labels["method"], labels["status"]): count
        for (name, pairs), count in samples(metrics.exposition().decode()).items()
        if name == "nanobanana_platform_api_errors_total" and (labels := dict(pairs))
    }


@pytest.mark.parametrize(
    ("refuse", "label"),
    [
        # Slack's own refusal comes with HTTP 200 and ``ok: false``.
        (lambda bot: bot.slack.fail("chat.postMessage", "channel_not_found"), "4xx"),
        # A proxy's 503, answered again when the client retries it once.
        (lambda bot: bot.slack.answer_raw("chat.postMessage", 503, b"Service Unavailable", times=2), "5xx"),
    ],
    ids=["ok-false", "proxy-503"],
)
async def test_a_refused_post_is_counted_by_method_and_status_class(
    bot: Bot, fake_gemini: FakeGemini, refuse: Callable[[Bot], None], label: str
) -> None:
    metrics = Metrics()
    assert bot.adapter is not None
    bot.adapter.observer = metrics  # as the runtime wires it
    fake_gemini.enqueue(fg.text_only("A castle is a fortified building."))
    refuse(bot)
    await bot.mention("what is a castle")
    assert await bot.core.service.drain(10)
    assert api_errors(metrics) == {("slack", "chat.postMessage", label): 1}
