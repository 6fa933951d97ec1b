"""Failed Discord REST calls in /metrics: ``nanobanana_platform_api_errors_total`` by route template
(no id or token in any label) and status class, as the fake Discord answers the bot's post, an
interaction's follow-up or its response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.observing.metrics import Metrics
from bot.text.messages import FAILED
from tests.auxil.discord_bot import Bot, ephemeral_answer, start_bot
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


def api_errors(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["method"], dict(labels)["status"]): count
        for (name, labels), count in samples(metrics.exposition().decode()).items()
        if name == "nanobanana_platform_api_errors_total"
    }


@pytest.mark.parametrize(
    ("command", "options", "answered", "route"),
    [
        # The follow-up after /aspect's deferred answer: an expired interaction token's webhook.
        ("aspect", {"ratio": "21:9"}, r"/webhooks/\d+/[^/]+", "POST /webhooks/{webhook_id}/{webhook_token}"),
        # /help's interaction response itself.
        (
            "help",
            {},
            r"/interactions/\d+/[^/]+/callback",
            "POST /interactions/{webhook_id}/{webhook_token}/callback",
        ),
    ],
    ids=["follow-up", "interaction-response"],
)
async def test_a_refused_interaction_answer_is_counted_without_its_token(
    bot: Bot, command: str, options: dict[str, str], answered: str, route: str
) -> None:
    metrics = Metrics()
    bot.adapter.observer = metrics  # as the runtime wires it
    fake = bot.fake
    fake.answer_raw(
        "POST", answered, 404, b'{"message": "Unknown Webhook", "code": 10015}', "application/json"
    )
    record = await fake.command(command, **options)
    # The answer was refused once; the person is told in one sentence by the next try.
    answer = await ephemeral_answer(fake, record.token)
    assert answer.content == FAILED
    assert len(fake.raw_answered) == 1 and record.token in fake.raw_answered[0][1]
    assert api_errors(metrics) == {(route, "4xx"): 1}
    text = metrics.exposition().decode()
    for private in (record.token, str(record.payload["id"]), str(fake.application_id)):
        assert private not in text
