"""Posts a neutral Reply into a Slack thread: text, uploaded images and controls, in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import controls_block, section_block
from adapters.slack.errors import slack_error_code
from adapters.slack.status import ThreadStatus
from adapters.slack.text import SECTION_LIMIT, chunks, escape
from adapters.slack.words import ALT_TEXT_FALLBACK, CONTROLS_FALLBACK
from adapters.slack.words import POST_FAILED as POST_FAILED_MESSAGE
from adapters.slack.words import UPLOAD_FAILED as UPLOAD_FAILED_MESSAGE
from adapters.slack.words import UPLOAD_RATE_LIMITED as UPLOAD_RATE_LIMITED_MESSAGE
from bot.vocabulary import ImagePart, Reply, ReplyPart, TextPart

log = logging.getLogger(__name__)

WORKING_REACTION = "hourglass_flowing_sand"
# Slack refuses alt text longer than this (files.getUploadURLExternal: alt_txt_too_large).
ALT_TEXT_LIMIT = 1000
# slack_sdk raises AttributeError when a 200 answer is not JSON (a proxy's "OK" page): it calls
# .get on the text. Each try below wraps one client call, so nothing of ours is hidden by it.
_SLACK_ERRORS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError, AttributeError)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a turn's reply goes and who asked."""

    channel: str
    thread_ts: str
    user: str
    # The message that wears the "working" reaction: the user's message, or the clicked controls.
    react_ts: str | None = None


@dataclass(slots=True)
class Segment:
    """Text followed by the images that come right after it in the model's answer."""

    text: str = ""
    images: list[ImagePart] = field(default_factory=list)


def segments(parts: Sequence[ReplyPart]) -> list[Segment]:
    """Group parts for posting: each run of images becomes one upload carrying the text before it
    as its comment, so text and images keep the model's order; trailing text stands alone."""
    out: list[Segment] = []
    pending: list[str] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text.strip():
                pending.append(part.text.strip())
        elif out and out[-1].images and not pending:
            out[-1].images.append(part)
        else:
            out.append(Segment("\n\n".join(pending), [part]))
            pending = []
    if pending:
        out.append(Segment("\n\n".join(pending)))
    return out


def alt_text(image: ImagePart) -> str:
    """What screen readers say for an image: the prompt that made it, within Slack's limit."""
    text = " ".join(image.alt.split()) or ALT_TEXT_FALLBACK
    return text if len(text) <= ALT_TEXT_LIMIT else text[: ALT_TEXT_LIMIT - 1] + "…"


class SlackSink:
    """Implements bot.vocabulary.ReplySink for one Slack thread."""

    def __init__(
        self,
        client: AsyncWebClient,
        place: Place,
        share_wait_s: float = 4.0,
        status: ThreadStatus | None = None,
    ) -> None:
        self._client = client
        self._place = place
        self._status = status
        self._share_wait_s = share_wait_s
        self._post_failed = False
        # Slack shows an ephemeral in a thread only once the thread has a reply. The person's own
        # message is a reply when it is not the thread's root (so is a clicked bot message); on a
        # first mention or a DM the thread is empty until the bot posts in it.
        self._thread_open = place.react_ts != place.thread_ts

    # -- working indicator ---------------------------------------------------------------------
    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """The reaction on the person's message and the loading status under the thread, from
        before the turn's work until its reply is posted (or has failed)."""
        added = await self._reaction("add")
        shown = self._status is not None and await self._status.show()
        try:
            yield
        finally:
            if shown and self._status is not None:
                await self._status.clear()
            if added:
                await self._reaction("remove")

    async def _reaction(self, verb: str) -> bool:
        place = self._place
        if not place.react_ts:
            return False
        method = self._client.reactions_add if verb == "add" else self._client.reactions_remove
        try:
            await method(channel=place.channel, timestamp=place.react_ts, name=WORKING_REACTION)
        except _SLACK_ERRORS as exc:
            # already_reacted / no_reaction / message_not_found are harmless: feedback only.
            log.info("reaction not changed", extra={"verb": verb, "slack_error": slack_error_code(exc)})
            return False
        return True

    # -- replies -------------------------------------------------------------------------------
    async def notice(self, text: str) -> None:
        """Tell the author privately: an ephemeral message in the thread, or in the channel while
        the thread has no reply yet (Slack would show it to no one)."""
        place = self._place
        thread_ts = place.thread_ts if self._thread_open else None
        try:
            await self._client.chat_postEphemeral(
                channel=place.channel, user=place.user, text=escape(text), thread_ts=thread_ts
            )
        except _SLACK_ERRORS as exc:
            log.warning("ephemeral notice failed", extra={"slack_error": slack_error_code(exc)})

    async def send(self, reply: Reply) -> list[str]:
        """Posts the reply; returns the ts of every message that shows it."""
        if reply.is_error:
            posted = await self._post_text(":warning: " + escape(reply.text))
        else:
            posted = await self._post_reply(reply)
        if self._post_failed and not posted:
            # Nothing reached the thread: tell the author privately rather than leave silence.
            await self.notice(POST_FAILED_MESSAGE)
        return posted

    async def _post_reply(self, reply: Reply) -> list[str]:
        posted: list[str] = []
        groups = segments(reply.parts)
        block = controls_block(reply.actions) if reply.actions else None
        for index, segment in enumerate(groups):
            last = index == len(groups) - 1
            if not segment.images:
                text = escape(segment.text)
                if last and block is not None and len(text) <= SECTION_LIMIT:
                    # The controls ride on the final text message instead of a message of their own.
                    posted += await self._post_text(text, blocks=[section_block(text), block])
                    block = None
                else:
                    posted += await self._post_text(text)
                continue
            comment: str | None = escape(segment.text) if segment.text else None
            if comment is not None and len(comment) > SECTION_LIMIT:
                posted += await self._post_text(comment)
                comment = None
            more_follows = not last or block is not None
            posted += await self._upload(segment.images, comment, wait_for_share=more_follows)
        if block is not None:
            posted += await self._post_text(CONTROLS_FALLBACK, blocks=[block])
        return posted

    async def _post_text(self, text: str, blocks: list[dict[str, Any]] | None = None) -> list[str]:
        place = self._place
        posted: list[str] = []
        pieces = [text] if blocks is not None else chunks(text)
        for piece in pieces:
            try:
                response = await self._client.chat_postMessage(
                    channel=place.channel,
                    thread_ts=place.thread_ts,
                    text=piece,
                    blocks=blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except _SLACK_ERRORS as exc:
                log.warning("posting a reply failed", extra={"slack_error": slack_error_code(exc)})
                self._post_failed = True
                continue
            if response.get("ts"):
                self._thread_open = True
                posted.append(str(response["ts"]))
        return posted

    async def _upload(
        self, images: Sequence[ImagePart], comment: str | None, wait_for_share: bool
    ) -> list[str]:
        place = self._place
        try:
            response = await self._client.files_upload_v2(
                channel=place.channel,
                thread_ts=place.thread_ts,
                initial_comment=comment,
                file_uploads=[
                    {
                        "content": image.data,
                        "filename": image.filename,
                        "title": image.filename,
                        "alt_txt": alt_text(image),
                    }
                    for image in images
                ],
            )
        except _SLACK_ERRORS as exc:
            code = slack_error_code(exc)
            log.warning("image upload failed", extra={"slack_error": code})
            # A rate limit is not a missing scope: say what happened, not what to reconfigure.
            message = UPLOAD_RATE_LIMITED_MESSAGE if code == "ratelimited" else UPLOAD_FAILED_MESSAGE
            return await self._post_text(escape(message))
        files = [f for f in response.get("files") or [] if isinstance(f, Mapping)]
        # The upload's message is a reply once Slack shares it, whether or not we wait to see it.
        self._thread_open = self._thread_open or bool(files)
        shared = [ts for f in files if (ts := self._share_ts(f))]
        if shared or not files:
            return shared
        if not wait_for_share:
            return []
        return await self._wait_for_share(str(files[-1].get("id", "")))

    async def _wait_for_share(self, file_id: str) -> list[str]:
        # files.completeUploadExternal returns before the file is shared into the channel (Slack
        # shares asynchronously), so a message posted straight away can land above the image.
        # Poll files.info, bounded, until the share shows up; then the next post comes after it.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._share_wait_s
        delay = 0.1
        while file_id:
            try:
                info = await self._client.files_info(file=file_id)
            except _SLACK_ERRORS as exc:
                log.info(
                    "files.info while waiting for a share failed",
                    extra={"slack_error": slack_error_code(exc)},
                )
                return []
            file = info.get("file")
            ts = self._share_ts(file) if isinstance(file, Mapping) else None
            if ts:
                return [ts]
            if loop.time() + delay > deadline:
                log.info("file share not visible yet; posting on", extra={"file_id": file_id})
                return []
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return []

    def _share_ts(self, file: Mapping[str, Any]) -> str | None:
        """The ts of the message that shows ``file`` in our thread, once Slack has shared it."""
        shares = file.get("shares")
        if not isinstance(shares, Mapping):
            return None
        for visibility in ("public", "private"):
            entries = (shares.get(visibility) or {}).get(self._place.channel) or []
            for entry in entries:
                if isinstance(entry, Mapping) and entry.get("ts"):
                    return str(entry["ts"])
        return None
