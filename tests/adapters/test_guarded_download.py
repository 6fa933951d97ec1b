"""The one guarded download: allowed hosts only, headers on the first request only, a byte cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from adapters.guarded_download import (
    CHUNK_BYTES,
    MAX_REDIRECTS,
    DownloadFailed,
    Failure,
    Redirects,
    fetch,
    host_allowed,
    origin,
)
from tests.auxil.local_server import LocalServer

HOSTS = frozenset({"files.example.com"})
TOKEN = {"Authorization": "Bearer xoxb-secret"}


@dataclass(frozen=True, slots=True)
class Seen:
    path: str
    authorization: str | None


class FileHost(LocalServer):
    """Serves ``/file`` (``size`` bytes), ``/hop/{n}`` (n redirects, then the file),
    ``/away`` (a redirect to ``elsewhere``), ``/status/{code}`` and ``/cut`` (drops mid-body)."""

    def __init__(self, size: int = 1000, elsewhere: str = "") -> None:
        self.size = size
        self.elsewhere = elsewhere
        self.seen: list[Seen] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/file", self._file)
        app.router.add_get("/hop/{n}", self._hop)
        app.router.add_get("/away", self._away)
        app.router.add_get("/status/{code}", self._status)
        app.router.add_get("/cut", self._cut)
        return app

    def _note(self, request: web.Request) -> None:
        self.seen.append(Seen(request.path, request.headers.get("Authorization")))

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self._note(request)
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        await resp.prepare(request)
        left = self.size
        try:
            while left > 0:
                await resp.write(b"\1" * min(left, CHUNK_BYTES))
                left -= CHUNK_BYTES
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            return resp
        await resp.write_eof()
        return resp

    async def _hop(self, request: web.Request) -> web.Response:
        self._note(request)
        n = int(request.match_info["n"])
        return web.Response(status=302, headers={"Location": f"/hop/{n - 1}" if n > 1 else "/file"})

    async def _away(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.Response(status=307, headers={"Location": self.elsewhere})

    async def _status(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.Response(status=int(request.match_info["code"]))

    async def _cut(self, request: web.Request) -> web.StreamResponse:
        self._note(request)
        resp = web.StreamResponse(headers={"Content-Length": "100000"})
        await resp.prepare(request)
        await resp.write(b"\1" * 100)
        assert request.transport is not None
        request.transport.close()
        return resp


@pytest.fixture
async def foreign() -> AsyncIterator[FileHost]:
    async with FileHost() as server:
        yield server


@pytest.fixture
async def host(foreign: FileHost) -> AsyncIterator[FileHost]:
    async with FileHost(elsewhere=f"{foreign.base_url}/file") as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def get(
    session: aiohttp.ClientSession,
    host: FileHost,
    path: str,
    redirects: Redirects = Redirects.ANY_HOST,
    max_bytes: int = 10_000,
) -> bytes:
    fetched = await fetch(
        session,
        host.base_url + path,
        allowed=HOSTS,
        api_url=f"{host.base_url}/api/",
        max_bytes=max_bytes,
        redirects=redirects,
        headers=TOKEN,
    )
    return fetched.data


async def failure(
    session: aiohttp.ClientSession, host: FileHost, path: str, redirects: Redirects = Redirects.ANY_HOST
) -> DownloadFailed:
    with pytest.raises(DownloadFailed) as failed:
        await get(session, host, path, redirects)
    return failed.value


@pytest.mark.parametrize("redirects", list(Redirects))
async def test_the_headers_go_only_with_the_first_request(
    session: aiohttp.ClientSession, host: FileHost, redirects: Redirects
) -> None:
    assert await get(session, host, "/hop/2", redirects) == b"\1" * 1000
    assert host.seen == [
        Seen("/hop/2", TOKEN["Authorization"]),
        Seen("/hop/1", None),
        Seen("/file", None),
    ]


async def test_a_url_off_the_allowed_hosts_is_never_requested(
    session: aiohttp.ClientSession, host: FileHost, foreign: FileHost
) -> None:
    with pytest.raises(DownloadFailed) as failed:
        await fetch(
            session,
            f"{foreign.base_url}/file",
            allowed=HOSTS,
            api_url=f"{host.base_url}/api/",
            max_bytes=10,
            redirects=Redirects.ANY_HOST,
            headers=TOKEN,
        )
    assert failed.value.failure is Failure.OFF_HOST
    assert foreign.seen == []


async def test_a_redirect_off_the_hosts_is_refused_or_followed_bare_by_policy(
    session: aiohttp.ClientSession, host: FileHost, foreign: FileHost
) -> None:
    failed = await failure(session, host, "/away", Redirects.ALLOWED_HOSTS_ONLY)
    assert failed.failure is Failure.OFF_HOST
    assert foreign.seen == []
    assert await get(session, host, "/away", Redirects.ANY_HOST) == b"\1" * 1000
    assert foreign.seen == [Seen("/file", None)]


@pytest.mark.parametrize("redirects", list(Redirects))
async def test_three_redirects_are_followed_and_a_fourth_is_one_too_many(
    session: aiohttp.ClientSession, host: FileHost, redirects: Redirects
) -> None:
    assert MAX_REDIRECTS == 3
    assert await get(session, host, "/hop/3", redirects) == b"\1" * 1000
    host.seen.clear()
    failed = await failure(session, host, "/hop/4", redirects)
    assert (failed.failure, failed.log_fields) == (Failure.REDIRECTS, {"error": None})
    assert [s.path for s in host.seen] == ["/hop/4", "/hop/3", "/hop/2", "/hop/1"]


@pytest.mark.parametrize("code", [302, 404, 500])
async def test_any_answer_but_200_is_a_status_failure(
    session: aiohttp.ClientSession, host: FileHost, code: int
) -> None:
    failed = await failure(session, host, f"/status/{code}")  # a 302 without Location included
    assert (failed.failure, failed.status, failed.log_fields) == (Failure.STATUS, code, {"status": code})


async def test_a_dropped_connection_is_unreachable(session: aiohttp.ClientSession, host: FileHost) -> None:
    failed = await failure(session, host, "/cut")
    assert (failed.failure, failed.log_fields) == (Failure.UNREACHABLE, {"error": "ClientPayloadError"})
    assert isinstance(failed.__cause__, aiohttp.ClientError)


async def test_nothing_listening_is_unreachable(session: aiohttp.ClientSession) -> None:
    gone = FileHost()
    await gone.start()
    await gone.close()
    failed = await failure(session, gone, "/file")
    assert failed.failure is Failure.UNREACHABLE
    assert failed.status is None and failed.error


async def test_the_body_is_read_only_just_past_the_cap(session: aiohttp.ClientSession) -> None:
    async with FileHost(size=50 * CHUNK_BYTES) as big:
        data = await get(session, big, "/file", max_bytes=2 * CHUNK_BYTES)
        assert 2 * CHUNK_BYTES < len(data) <= 3 * CHUNK_BYTES
    async with FileHost(size=2 * CHUNK_BYTES) as exact:
        assert len(await get(session, exact, "/file", max_bytes=2 * CHUNK_BYTES)) == 2 * CHUNK_BYTES
    async with FileHost(size=2 * CHUNK_BYTES + 1) as over:
        assert len(await get(session, over, "/file", max_bytes=2 * CHUNK_BYTES)) == 2 * CHUNK_BYTES + 1


async def test_the_content_type_is_handed_back(session: aiohttp.ClientSession, host: FileHost) -> None:
    fetched = await fetch(
        session,
        f"{host.base_url}/file",
        allowed=HOSTS,
        api_url=host.base_url,
        max_bytes=10,
        redirects=Redirects.ANY_HOST,
    )
    # One chunk arrived whole, so the cut comes after it.
    assert (fetched.content_type, fetched.data) == ("image/png", b"\1" * 1000)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.example.com/a.png", True),
        ("https://FILES.example.COM:443/a.png", True),
        ("http://files.example.com/a.png", False),
        ("https://files.example.com:8443/a.png", False),
        ("https://files.example.com.evil.test/a.png", False),
        ("https://files.example.com@evil.test/a.png", False),
        ("http://127.0.0.1:8999/x.png", True),  # the configured API's origin
        ("http://127.0.0.1:80/x.png", False),
        ("https://127.0.0.1:8999/x.png", False),
        ("", False),
    ],
)
def test_hosts_are_compared_by_scheme_host_and_port(url: str, allowed: bool) -> None:
    assert host_allowed(url, HOSTS, "http://127.0.0.1:8999/api/") is allowed


def test_an_origin_fills_in_the_default_port() -> None:
    assert origin("HTTPS://Files.Example.com/a") == ("https", "files.example.com", 443)
    assert origin("http://h/a") == ("http", "h", 80)
    assert origin("http://h:99999/a") == ("http", "h", None)
    assert origin("ftp://h/a") == ("ftp", "h", None)
