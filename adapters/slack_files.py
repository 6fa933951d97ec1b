"""Slack files as lazy ImageRefs: resolved with files.info, downloaded with the bot token safely."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_errors import slack_error_code
from bot import messages
from bot.service import AttachmentUnavailable
from bot.vocabulary import ImageRef

log = logging.getLogger(__name__)

# Where Slack serves private files (url_private / url_private_download); GovSlack has its own.
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})
_MAX_REDIRECTS = 3
UNNAMED = "The attachment"  # a file with neither name nor title, at the start of a sentence
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def token_allowed(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent to ``url``: only Slack's file host over HTTPS, or the
    configured API origin (a proxy or, in tests, the fake). Anything else never sees the token."""
    scheme, host, port = _origin(url)
    if scheme == "https" and host in SLACK_FILE_HOSTS and port == 443:
        return True
    api = _origin(api_url)
    return bool(host) and (scheme, host, port) == api


def display_name(file: Mapping[str, Any]) -> str:
    """The name people saw on the file, safe to put in a sentence."""
    raw = str(file.get("name") or file.get("title") or UNNAMED)
    name = "".join(ch for ch in raw.replace("\\", "/").rsplit("/", 1)[-1] if ch.isprintable()).strip()
    return (name[:79] + "…" if len(name) > 80 else name) or UNNAMED


def _looks_like_html(content_type: str, head: bytes) -> bool:
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    start = head.lstrip()[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


class SlackFiles:
    """Turns the ``files`` of a message event into ImageRefs whose ``load`` downloads on demand."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        client: AsyncWebClient,
        token: str,
        api_url: str,
        max_bytes: int,
    ) -> None:
        self._session = session
        self._client = client
        self._token = token
        self._api_url = api_url
        self._max_bytes = max_bytes

    def refs(self, files: object) -> tuple[ImageRef, ...]:
        # Only a list of file objects is attachments; a malformed event may carry anything here.
        if not isinstance(files, Sequence) or isinstance(files, str | bytes):
            return ()
        return tuple(self._ref(file) for file in files if isinstance(file, Mapping))

    def _ref(self, file: Mapping[str, Any]) -> ImageRef:
        async def load() -> bytes:
            return await self._load(file)

        size = file.get("size")
        return ImageRef(
            filename=display_name(file),
            mime_type=file.get("mimetype") or None,
            size=size if isinstance(size, int) else None,
            load=load,
        )

    async def _load(self, file: Mapping[str, Any]) -> bytes:
        name = display_name(file)
        # A deleted or plan-hidden file comes without URLs; files.info would only say "not found".
        gone = file.get("mode") in ("tombstone", "hidden_by_limit") or file.get("is_deleted")
        resolved = file if gone else await self._resolve(file, name)
        name = display_name(resolved)  # a Slack Connect file has its name only in files.info
        mode = resolved.get("mode")
        if mode == "tombstone" or resolved.get("is_deleted"):
            raise AttachmentUnavailable(_deleted_message(name))
        if mode == "hidden_by_limit":
            raise AttachmentUnavailable(
                f"{name} is hidden by this workspace's plan limits, so I can't read it; attach it again."
            )
        url = resolved.get("url_private_download") or resolved.get("url_private")
        if not url or mode == "external" or resolved.get("is_external"):
            raise AttachmentUnavailable(_external(name))
        return await self._download(str(url), name)

    async def _resolve(self, file: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        # Slack Connect (files shared from another organization) and some partial payloads
        # carry only the id and "file_access": "check_file_info"; files.info gives the URLs.
        if file.get("file_access") != "check_file_info" and (
            file.get("url_private") or file.get("url_private_download")
        ):
            return file
        file_id = file.get("id")
        if not file_id:
            raise AttachmentUnavailable(_not_found(_mid(name)))
        try:
            response = await self._client.files_info(file=str(file_id))
        except SlackApiError as exc:
            error = slack_error_code(exc)
            log.warning("files.info failed", extra={"file_id": file_id, "slack_error": error})
            if error == "file_deleted":
                raise AttachmentUnavailable(_deleted_message(name)) from exc
            # A Slack Connect file object has no name until files.info answers.
            shown = name if file.get("name") or file.get("title") else "the attached file"
            raise AttachmentUnavailable(
                f"Slack wouldn't let me read {shown} (it may be shared from another organization); "
                "download it and attach it here again."
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttachmentUnavailable(
                f"I couldn't reach Slack to fetch {_mid(name)}; attach it again."
            ) from exc
        info = response.get("file")
        if not isinstance(info, Mapping):
            raise AttachmentUnavailable(_not_found(_mid(name)))
        return info

    async def _download(self, url: str, name: str) -> bytes:
        if not token_allowed(url, self._api_url):
            raise AttachmentUnavailable(_external(name))
        headers: dict[str, str] | None = {"Authorization": f"Bearer {self._token}"}
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in (301, 302, 303, 307, 308) and location:
                        # Never follow a redirect with the token: aiohttp would carry the header
                        # to wherever Location points. A missing scope redirects to sign-in.
                        url, headers = urljoin(url, location), None
                        continue
                    return await self._body(resp, name)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("file download failed", extra={"file": name, "error": type(exc).__name__})
            raise AttachmentUnavailable(messages.download_failed(_mid(name), "Slack")) from exc
        raise AttachmentUnavailable(_sign_in_message(name))

    async def _body(self, resp: aiohttp.ClientResponse, name: str) -> bytes:
        if resp.status in (404, 410):
            raise AttachmentUnavailable(_deleted_message(name))
        if resp.status in (401, 403):
            raise AttachmentUnavailable(_sign_in_message(name))
        if resp.status != 200:
            log.warning("file download failed", extra={"file": name, "status": resp.status})
            raise AttachmentUnavailable(messages.download_failed(_mid(name), "Slack"))
        data = bytearray()
        # Stop just past the limit: the core refuses the file by its size, and a huge file is
        # never pulled in whole.
        async for chunk in resp.content.iter_chunked(64 * 1024):
            data.extend(chunk)
            if len(data) > self._max_bytes:
                break
        # A failed authorisation is not an error status: Slack answers 200 with its sign-in page.
        if _looks_like_html(resp.headers.get("Content-Type", ""), bytes(data[:64])):
            raise AttachmentUnavailable(_sign_in_message(name))
        return bytes(data)


def _external(name: str) -> str:
    return (
        f"{name} is a link to a file stored outside Slack, so I can't open it; "
        "upload the image itself and try again."
    )


def _not_found(name: str) -> str:
    return f"I couldn't find {name} on Slack; attach it again."


def _mid(name: str) -> str:
    """The name as it reads in the middle of a sentence."""
    return "the attachment" if name == UNNAMED else name


def _deleted_message(name: str) -> str:
    return f"{name} is no longer on Slack (it was deleted); attach it again."


def _sign_in_message(name: str) -> str:
    return (
        f"{name} could not be downloaded from Slack (got a sign-in page instead of the file); "
        "check the app has the files:read scope and try again."
    )
