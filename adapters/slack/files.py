"""Slack files as lazy ImageRefs: resolved with files.info, downloaded with the bot token safely."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.guarded_download import DownloadFailed, Failure, Redirects, fetch, host_allowed
from adapters.slack import words
from adapters.slack.errors import slack_error_code
from bot.entry.service import AttachmentUnavailable
from bot.text import messages
from bot.vocabulary import ImageRef

log = logging.getLogger(__name__)

# Where Slack serves private files (url_private / url_private_download); GovSlack has its own.
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})
UNNAMED = "The attachment"  # a file with neither name nor title, at the start of a sentence


def token_allowed(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent to ``url``: only Slack's file host over HTTPS, or the
    configured API origin (a proxy or, in tests, the fake). Anything else never sees the token."""
    return host_allowed(url, SLACK_FILE_HOSTS, api_url)


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
            raise AttachmentUnavailable(_deleted_message(name), reason="deleted")
        if mode == "hidden_by_limit":
            raise AttachmentUnavailable(words.hidden_by_plan(name), reason="hidden_by_plan")
        url = resolved.get("url_private_download") or resolved.get("url_private")
        if not url or mode == "external" or resolved.get("is_external"):
            raise AttachmentUnavailable(_external(name), reason="external")
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
            raise AttachmentUnavailable(_not_found(_mid(name)), reason="not_found")
        try:
            response = await self._client.files_info(file=str(file_id))
        except SlackApiError as exc:
            error = slack_error_code(exc)
            log.warning("files.info failed", extra={"file_id": file_id, "slack_error": error})
            if error == "file_deleted":
                raise AttachmentUnavailable(_deleted_message(name), reason="deleted") from exc
            # A Slack Connect file object has no name until files.info answers.
            shown = name if file.get("name") or file.get("title") else "the attached file"
            raise AttachmentUnavailable(words.shared_from_elsewhere(shown), reason="files_info") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttachmentUnavailable(words.unreachable(_mid(name)), reason="unreachable") from exc
        info = response.get("file")
        if not isinstance(info, Mapping):
            raise AttachmentUnavailable(_not_found(_mid(name)), reason="not_found")
        return info

    async def _download(self, url: str, name: str) -> bytes:
        try:
            fetched = await fetch(
                self._session,
                url,
                allowed=SLACK_FILE_HOSTS,
                api_url=self._api_url,
                max_bytes=self._max_bytes,
                # The token goes on the first request only; a missing scope redirects to sign-in.
                redirects=Redirects.ANY_HOST,
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except DownloadFailed as exc:
            raise AttachmentUnavailable(_refusal(exc, name), reason=_reason(exc)) from exc
        # A failed authorisation is not an error status: Slack answers 200 with its sign-in page.
        if _looks_like_html(fetched.content_type, fetched.data[:64]):
            raise AttachmentUnavailable(_sign_in_message(name), reason="sign_in_page")
        return fetched.data


def _refusal(exc: DownloadFailed, name: str) -> str:
    if exc.failure is Failure.OFF_HOST:
        return _external(name)
    if exc.status in (404, 410):
        return _deleted_message(name)
    if exc.status in (401, 403) or exc.failure is Failure.REDIRECTS:
        return _sign_in_message(name)
    log.warning("file download failed", extra={"file": name, **exc.log_fields})
    return messages.download_failed(_mid(name), "Slack")


def _external(name: str) -> str:
    return messages.stored_elsewhere(name, "Slack")


def _not_found(name: str) -> str:
    return words.not_found(name)


def _mid(name: str) -> str:
    """The name as it reads in the middle of a sentence."""
    return "the attachment" if name == UNNAMED else name


def _deleted_message(name: str) -> str:
    return words.deleted(name)


def _sign_in_message(name: str) -> str:
    return words.sign_in_page(name)


def _reason(exc: DownloadFailed) -> str:
    """The failure as the metrics' reason: ``off_host``, ``status``, ``redirects``, ``unreachable``."""
    return exc.failure.name.lower()
