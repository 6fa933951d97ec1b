"""One guarded file download for every platform: allowed hosts only, a byte cap, no token leaks."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=15, sock_read=30)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lower-case host and port (the scheme's default when none is written)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def host_allowed(url: str, hosts: frozenset[str], api_url: str) -> bool:
    """Whether ``url`` is one of ``hosts`` over HTTPS on 443, or exactly the origin of the
    configured API (a proxy or, in tests, a fake)."""
    scheme, host, port = origin(url)
    if scheme == "https" and host in hosts and port == 443:
        return True
    return bool(host) and (scheme, host, port) == origin(api_url)


class Redirects(enum.Enum):
    """Where a redirect may lead. Under either, the headers are sent on the first request only."""

    ALLOWED_HOSTS_ONLY = "allowed hosts only"  # a redirect elsewhere fails as OFF_HOST
    ANY_HOST = "any host"


class Failure(enum.Enum):
    OFF_HOST = "off host"  # the URL, or a redirect it was allowed to follow, is not allowed
    STATUS = "status"  # an answer other than 200 (a redirect without Location included)
    REDIRECTS = "redirects"  # more than MAX_REDIRECTS in a row
    UNREACHABLE = "unreachable"  # a network error or a timeout, before or during the body


class DownloadFailed(Exception):
    """Why a download failed; the platform turns it into one sentence for the person."""

    def __init__(self, failure: Failure, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(failure.value)
        self.failure = failure
        self.status = status
        self.error = error

    @property
    def log_fields(self) -> dict[str, object]:
        """What an operator needs in the log line: the status, or the network error's type."""
        return {"status": self.status} if self.status is not None else {"error": self.error}


@dataclass(frozen=True, slots=True)
class Fetched:
    """The body, cut just past ``max_bytes`` when longer, and the answer's Content-Type."""

    data: bytes
    content_type: str


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    allowed: frozenset[str],
    api_url: str,
    max_bytes: int,
    redirects: Redirects,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET ``url`` only if it is on ``allowed`` hosts (or the API's origin), following at most
    MAX_REDIRECTS by hand and sending ``headers`` (a token) only on the first, allowed request.
    Reads no more than just past ``max_bytes``, whatever size the platform declared."""
    if not host_allowed(url, allowed, api_url):
        raise DownloadFailed(Failure.OFF_HOST)
    sent: Mapping[str, str] | None = headers
    try:
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, headers=sent, allow_redirects=False, timeout=TIMEOUT) as resp:
                location = resp.headers.get("Location")
                if resp.status in REDIRECT_STATUSES and location:
                    # Followed by hand: aiohttp would carry the headers to wherever Location points.
                    url, sent = urljoin(url, location), None
                    if redirects is Redirects.ALLOWED_HOSTS_ONLY and not host_allowed(url, allowed, api_url):
                        raise DownloadFailed(Failure.OFF_HOST)
                    continue
                if resp.status != 200:
                    raise DownloadFailed(Failure.STATUS, status=resp.status)
                return Fetched(await _capped(resp, max_bytes), resp.headers.get("Content-Type", ""))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadFailed(Failure.UNREACHABLE, error=type(exc).__name__) from exc
    raise DownloadFailed(Failure.REDIRECTS)


async def _capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    data = bytearray()
    # Stop just past the limit: the core refuses the file by its size, and a huge file is never
    # pulled in whole.
    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
        data.extend(chunk)
        if len(data) > max_bytes:
            break
    return bytes(data)
