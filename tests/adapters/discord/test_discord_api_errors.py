"""Failed Discord REST calls in /metrics: ``nanobanana_platform_api_errors_total`` by route template
(no id in any label) and status class, as the fake Discord answers the bot's post."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.observing.metrics import Metrics
from tests.adapters.discord.test_discord import Bot, start_bot
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini
from tests.bot.observing.test_metrics import samples, value

POST = "POST /channels/{channel_id}/messages"


@pytest.fixture
async def bot(fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    async with FakeDiscord() as fake:
        running = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3")
        yield running
        await running.stop()


@pytest.mark.parametrize(
    ("status", "body", "content_type", "label"),
    [
        (403, b'{"message": "Missing Permissions", "code": 50013}', "application/json", "4xx"),
        # discord.py retries a 500 five times over 25 s before it gives up; a proxy's 503 it does not.
        (503, b"Service Unavailable", "text/plain", "5xx"),
    ],
    ids=["forbidden-403", "unavailable-503"],
)
async def test_a_refused_post_is_counted_by_route_and_status_class(
    bot: Bot, status: int, body: bytes, content_type: str, label: str
) -> None:
    metrics = Metrics()
    bot.adapter.observer = metrics  # as the runtime wires it
    fake = bot.fake
    fake.answer_raw("POST", r"/channels/\d+/messages", status, body, content_type)
    asked = await fake.post(fake.general_id, f"{fake.mention()} a red bicycle")
    await fake.wait_until(lambda: fake.thread_on(asked.id))
    [said] = await bot.replies(asked.id)  # the image was refused; one sentence got through
    assert said.content and not said.files
    assert fake.raw_answered == [("POST", f"/channels/{asked.id}/messages")]
    text = metrics.exposition().decode()
    got = samples(text)
    errors = {
        (dict(labels)["method"], dict(labels)["status"]): count
        for (name, labels), count in got.items()
        if name == "nanobanana_platform_api_errors_total"
    }
    assert errors == {(POST, label): 1}
    assert (
        value(got, "nanobanana_platform_api_errors_total", platform="discord", method=POST, status=label) == 1
    )
    for private in (str(asked.id), str(fake.general_id), str(fake.guild_id)):
        assert private not in text
