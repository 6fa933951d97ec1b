"""Discord attachment downloads: only from Discord's hosts, never read past the size limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from adapters.discord.files import CHUNK_BYTES, download_allowed
from tests.auxil import image_factory as img
from tests.auxil.discord_bot import Bot, start_bot
from tests.auxil.discord_bot import fake as fake
from tests.auxil.fake_discord import FakeDiscord, FakeFile
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.local_server import LocalServer

MIB = 1024 * 1024
FOREIGN_SENTENCE = (
    "{name} is a link to a file stored outside Discord, so I can't open it; "
    "upload the image itself and try again."
)


class ForeignHost(LocalServer):
    """Somebody else's web server: serves a real PNG to anyone and remembers who asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        return web.Response(body=img.png(), content_type="image/png")


@pytest.fixture
async def foreign() -> AsyncIterator[ForeignHost]:
    async with ForeignHost() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord, fake_gemini: FakeGemini, tmp_path: Path) -> AsyncIterator[Bot]:
    running = await start_bot(fake, fake_gemini, tmp_path / "bot.sqlite3", env={"MAX_ATTACHMENT_MB": "1"})
    yield running
    await running.stop()


async def test_a_file_far_larger_than_it_declared_is_read_only_to_the_limit(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    # Declares 1,000 bytes (so passes the check before download), then serves 100 MiB.
    liar = FakeFile("huge.png", b"", "image/png", declared_size=1000, stream_bytes=100 * MIB)
    caplog.set_level(logging.INFO, logger="adapters.discord.files")
    _, thread = await bot.mention("make it brighter", files=[liar])
    [answer] = await bot.replies(thread)
    assert answer.content == "huge.png is larger than 1 MB; attach a smaller image."
    [stopped] = [r for r in caplog.records if r.getMessage().startswith("discord attachment over the size")]
    read = getattr(stopped, "read_bytes")  # noqa: B009 (a field the log record carries)
    assert MIB < read <= MIB + CHUNK_BYTES
    # The server got to write no more than loopback's socket buffers hold beyond that.
    [sent] = bot.fake.cdn_sent.values()
    assert sent < 100 * MIB // 4
    assert not bot.gemini.requests


async def test_a_file_larger_than_declared_but_under_the_limit_is_not_used(bot: Bot) -> None:
    # The turn reserved memory for the 1,000 bytes Discord reported; the file is 30 times that.
    photo = img.noise_jpeg(200, 200)
    assert len(photo) > 30_000
    odd = FakeFile("odd.jpg", photo, "image/jpeg", declared_size=1000)
    _, thread = await bot.mention("make it blue", files=[odd])
    [answer] = await bot.replies(thread)
    assert answer.content == (
        "odd.jpg arrived larger than Discord said it was, so I didn't use it; attach it again."
    )
    assert not bot.gemini.requests


async def test_a_file_on_a_foreign_host_is_never_fetched(bot: Bot, foreign: ForeignHost) -> None:
    elsewhere = FakeFile("cat.png", img.png(), "image/png", url=f"{foreign.base_url}/cat.png")
    _, thread = await bot.mention("put a hat on it", files=[elsewhere])
    [answer] = await bot.replies(thread)
    assert answer.content == FOREIGN_SENTENCE.format(name="cat.png")
    assert foreign.requests == []
    assert not bot.gemini.requests


async def test_a_redirect_off_discord_is_not_followed(bot: Bot, foreign: ForeignHost) -> None:
    bounced = FakeFile("dog.png", img.png(), "image/png", redirect_to=f"{foreign.base_url}/dog.png")
    _, thread = await bot.mention("give it sunglasses", files=[bounced])
    [answer] = await bot.replies(thread)
    assert answer.content == FOREIGN_SENTENCE.format(name="dog.png")
    assert foreign.requests == []
    assert not bot.gemini.requests


async def test_a_file_within_the_limit_still_reaches_the_model(bot: Bot) -> None:
    photo = img.png(300, 200)
    _, thread = await bot.mention("add a moon", files=[FakeFile("night.png", photo, "image/png")])
    [answer] = await bot.replies(thread)
    assert answer.files
    [request] = bot.gemini.requests
    assert [i.data for i in request.images[-1]] == [photo]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1", True),
        ("https://media.discordapp.net/attachments/1/2/a.png", True),
        ("https://CDN.DiscordApp.com:443/attachments/1/2/a.png", True),
        ("http://cdn.discordapp.com/attachments/1/2/a.png", False),  # not over HTTPS
        ("https://cdn.discordapp.com:8443/attachments/a.png", False),
        ("https://cdn.discordapp.com.evil.example/a.png", False),
        ("https://cdn.discordapp.com@evil.example/a.png", False),  # the host is evil.example
        ("https://evil.example/a.png", False),
        ("http://127.0.0.1:9999/attachments/a.png", True),  # the configured API's origin
        ("http://127.0.0.1:9998/attachments/a.png", False),  # same host, another port
        ("not a url", False),
    ],
)
def test_only_discords_hosts_are_downloaded_from(url: str, allowed: bool) -> None:
    assert download_allowed(url, "http://127.0.0.1:9999/api/v10") is allowed
