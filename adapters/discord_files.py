"""Discord attachments as lazy ImageRefs: streamed from Discord's CDN only, never past the limit."""

from __future__ import annotations

import logging
from urllib.parse import urljoin, urlsplit

import aiohttp
import discord

from bot import messages
from bot.service import AttachmentUnavailable
from bot.vocabulary import ImageRef

log = logging.getLogger(__name__)

# Where Discord serves attachments (``url`` and ``proxy_url``).
DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
CHUNK_BYTES = 64 * 1024
_MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=15, sock_read=30)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def download_allowed(url: str, api_url: str) -> bool:
    """Whether ``url`` is Discord's: its CDN over HTTPS, or the origin of the configured API
    (a proxy or, in tests, the fake). Nothing else is ever fetched."""
    scheme, host, port = _origin(url)
    if scheme == "https" and host in DISCORD_CDN_HOSTS and port == 443:
        return True
    return bool(host) and (scheme, host, port) == _origin(api_url)


def _foreign(name: str) -> AttachmentUnavailable:
    return AttachmentUnavailable(
        f"{name} is a link to a file stored outside Discord, so I can't open it; "
        "upload the image itself and try again."
    )


def _failed(name: str) -> AttachmentUnavailable:
    return AttachmentUnavailable(messages.download_failed(name, "Discord"))


class DiscordFiles:
    """Downloads attachments with one session of its own (discord.py's reads whole files)."""

    def __init__(self, *, api_url: str, max_bytes: int) -> None:
        self._api_url = api_url
        self._max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    def ref(self, attachment: discord.Attachment) -> ImageRef:
        """An ImageRef that downloads the attachment when the core asks."""

        async def load() -> bytes:
            return await self.download(attachment.url, attachment.filename, attachment.size)

        return ImageRef(
            filename=attachment.filename,
            mime_type=attachment.content_type,
            size=attachment.size,
            load=load,
        )

    async def download(self, url: str, name: str, declared: int | None = None) -> bytes:
        """The file's bytes, or ``max_bytes + 1`` of them when it is larger (the core then
        refuses it by its size, as it does a file that declared that size). A file larger than
        ``declared`` is refused: the core reserved memory for the size Discord reported."""
        if not download_allowed(url, self._api_url):
            log.warning("discord attachment on a foreign host refused", extra={"file": name})
            raise _foreign(name)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                async with self._session.get(url, allow_redirects=False) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in (301, 302, 303, 307, 308) and location:
                        # Follow by hand, so a redirect cannot lead off Discord's hosts either.
                        url = urljoin(url, location)
                        if not download_allowed(url, self._api_url):
                            raise _foreign(name)
                        continue
                    return await self._body(resp, name, declared)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "discord attachment download failed", extra={"file": name, "error": type(exc).__name__}
            )
            raise _failed(name) from exc
        raise _failed(name)

    async def _body(self, resp: aiohttp.ClientResponse, name: str, declared: int | None) -> bytes:
        if resp.status != 200:
            log.warning("discord attachment download failed", extra={"file": name, "status": resp.status})
            raise _failed(name)
        data = bytearray()
        # Stop just past the limit, whatever the attachment declared: a huge file is never
        # pulled in whole.
        async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
            data.extend(chunk)
            if len(data) > self._max_bytes:
                log.info(
                    "discord attachment over the size limit; stopped reading",
                    extra={"file": name, "read_bytes": len(data)},
                )
                break
        if declared is not None and declared < len(data) <= self._max_bytes:
            log.warning(
                "discord attachment larger than declared",
                extra={"file": name, "declared": declared, "read_bytes": len(data)},
            )
            raise AttachmentUnavailable(
                f"{name} arrived larger than Discord said it was, so I didn't use it; attach it again."
            )
        return bytes(data)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
