"""Discord attachments as lazy ImageRefs: streamed from Discord's CDN only, never past the limit."""

from __future__ import annotations

import logging

import aiohttp
import discord

from adapters.discord.words import grew_in_transit
from adapters.guarded_download import (
    CHUNK_BYTES,
    TIMEOUT,
    DownloadFailed,
    Failure,
    Redirects,
    fetch,
    host_allowed,
)
from bot.entry.service import AttachmentUnavailable
from bot.text import messages
from bot.vocabulary import ImageRef

__all__ = ["CHUNK_BYTES", "DISCORD_CDN_HOSTS", "DiscordFiles", "download_allowed"]

log = logging.getLogger(__name__)

# Where Discord serves attachments (``url`` and ``proxy_url``).
DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})


def download_allowed(url: str, api_url: str) -> bool:
    """Whether ``url`` is Discord's: its CDN over HTTPS, or the origin of the configured API
    (a proxy or, in tests, the fake). Nothing else is ever fetched."""
    return host_allowed(url, DISCORD_CDN_HOSTS, api_url)


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
        """The file's bytes, or just past ``max_bytes`` of them when it is larger (the core then
        refuses it by its size, as it does a file that declared that size). A file larger than
        ``declared`` is refused: the core reserved memory for the size Discord reported."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        try:
            fetched = await fetch(
                self._session,
                url,
                allowed=DISCORD_CDN_HOSTS,
                api_url=self._api_url,
                max_bytes=self._max_bytes,
                redirects=Redirects.ALLOWED_HOSTS_ONLY,
            )
        except DownloadFailed as exc:
            raise _unavailable(exc, name) from exc
        data = fetched.data
        if len(data) > self._max_bytes:
            log.info(
                "discord attachment over the size limit; stopped reading",
                extra={"file": name, "read_bytes": len(data)},
            )
        elif declared is not None and declared < len(data):
            log.warning(
                "discord attachment larger than declared",
                extra={"file": name, "declared": declared, "read_bytes": len(data)},
            )
            raise AttachmentUnavailable(grew_in_transit(name), reason="grew_in_transit")
        return data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _unavailable(exc: DownloadFailed, name: str) -> AttachmentUnavailable:
    if exc.failure is Failure.OFF_HOST:
        log.warning("discord attachment on a foreign host refused", extra={"file": name})
        return AttachmentUnavailable(messages.stored_elsewhere(name, "Discord"), reason="off_host")
    if exc.failure is not Failure.REDIRECTS:
        log.warning("discord attachment download failed", extra={"file": name, **exc.log_fields})
    return AttachmentUnavailable(messages.download_failed(name, "Discord"), reason=exc.failure.name.lower())
