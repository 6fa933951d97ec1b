"""The "Edit with Nano Banana" message shortcut: on a message with an image, a modal asks what
should change, and the answer is a turn in that message's thread seeded with its images."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError, SlackRequestError

from adapters.slack import words
from adapters.slack.files import SlackFiles, display_name
from adapters.slack.surface import ACTION_PREFIX, Surface
from adapters.slack.text import escape
from bot.entry.routing import Inbound
from bot.vocabulary import Author, Trigger, Turn

log = logging.getLogger(__name__)

EDIT_CALLBACK = "edit_with_nano_banana"  # the shortcut's callback id (both manifests) and the modal's
PROMPT_BLOCK = "change"
PROMPT_ACTION = "prompt"
PROMPT_MAX_CHARS = 3000  # what a plain_text_input takes
# Slack allows 3,000 characters of private_metadata; a message has at most 10 files.
_MAX_FILES = 10
_IMAGE_TYPES = frozenset({"png", "jpg", "jpeg", "gif", "webp", "heic", "heif", "bmp", "tiff"})
_SLACK_ERRORS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError, AttributeError)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def image_files(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The message's files that are images (by MIME type, or by file type when Slack gives none)."""
    files = message.get("files")
    if not isinstance(files, Sequence) or isinstance(files, str):
        return []
    return [
        file
        for file in files
        if isinstance(file, Mapping)
        and isinstance(file.get("id"), str)
        and (
            _text(file.get("mimetype")).startswith("image/")
            or _text(file.get("filetype")).lower() in _IMAGE_TYPES
        )
    ][:_MAX_FILES]


def edit_modal(metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK,
        "title": {"type": "plain_text", "text": words.EDIT_SHORTCUT_NAME},
        "submit": {"type": "plain_text", "text": words.EDIT_MODAL_SUBMIT},
        "close": {"type": "plain_text", "text": words.EDIT_MODAL_CANCEL},
        "private_metadata": metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": PROMPT_BLOCK,
                "label": {"type": "plain_text", "text": words.EDIT_MODAL_LABEL},
                "hint": {"type": "plain_text", "text": words.EDIT_MODAL_HINT},
                "element": {
                    "type": "plain_text_input",
                    "action_id": PROMPT_ACTION,
                    "multiline": True,
                    "max_length": PROMPT_MAX_CHARS,
                },
            }
        ],
    }


def _metadata(channel: str, message: Mapping[str, Any], files: list[Mapping[str, Any]]) -> str:
    """Where the edit goes and which files it starts from, carried by the modal to its submission
    (the file objects are fetched again with files.info when the turn runs)."""
    kept = [[file["id"], display_name(file), _text(file.get("mimetype"))] for file in files]
    ts = _text(message.get("ts"))
    return json.dumps({"c": channel, "t": _text(message.get("thread_ts")) or ts, "m": ts, "f": kept})


def _where(raw: object) -> tuple[str, str, str, list[dict[str, Any]]] | None:
    """The channel, thread, message ts and files the modal was opened for; None if unreadable."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    channel, thread, message = _text(data.get("c")), _text(data.get("t")), _text(data.get("m"))
    files = [
        {"id": f[0], "name": f[1], "mimetype": f[2] or None, "file_access": "check_file_info"}
        for f in data.get("f") or []
        if isinstance(f, list) and len(f) == 3 and all(isinstance(x, str) for x in f) and f[0]
    ]
    if not (channel and thread and message and files):
        return None
    return channel, thread, message, files


def _typed(view: Mapping[str, Any]) -> str:
    values = _mapping(_mapping(view.get("state")).get("values"))
    return _text(_mapping(_mapping(values.get(PROMPT_BLOCK)).get(PROMPT_ACTION)).get("value")).strip()


class EditShortcut:
    """The shortcut's and the modal's listeners."""

    def __init__(self, surface: Surface, files: SlackFiles) -> None:
        self._s = surface
        self._files = files

    def register(self, app: AsyncApp) -> None:
        app.message_shortcut(EDIT_CALLBACK)(self._on_shortcut)
        app.view_submission(EDIT_CALLBACK)(self._on_submit)

    async def _on_shortcut(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        await ack()
        message = _mapping(body.get("message"))
        channel = _text(_mapping(body.get("channel")).get("id"))
        user = _text(_mapping(body.get("user")).get("id"))
        files = image_files(message)
        if not files or not channel or not _text(message.get("ts")):
            log.info("edit shortcut on a message without an image", extra={"files": len(files)})
            await self._tell(respond, channel, user, words.NO_IMAGE_TO_EDIT)
            return
        try:
            await self._s.client.views_open(
                trigger_id=_text(body.get("trigger_id")), view=edit_modal(_metadata(channel, message, files))
            )
        except _SLACK_ERRORS as exc:
            log.warning("could not open the edit modal", extra={"error": type(exc).__name__})

    async def _tell(self, respond: AsyncRespond | None, channel: str, user: str, text: str) -> None:
        """One private sentence: through the shortcut's response_url (it works wherever the
        shortcut was used), else as an ephemeral in the channel."""
        try:
            if respond is not None and respond.response_url:
                await respond(text=escape(text), response_type="ephemeral", replace_original=False)
                return
            await self._s.client.chat_postEphemeral(channel=channel, user=user, text=escape(text))
        except (*_SLACK_ERRORS, ValueError) as exc:
            log.warning("could not answer the edit shortcut", extra={"error": type(exc).__name__})

    async def _on_submit(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        prompt = _typed(view)
        if not prompt:
            await ack(response_action="errors", errors={PROMPT_BLOCK: words.EDIT_EMPTY})
            return
        await ack()
        with self._s.listening():
            where = _where(view.get("private_metadata"))
            user = _text(_mapping(body.get("user")).get("id"))
            if where is None or not user or self._s.closing:
                log.warning("ignored an edit without its message", extra={"view": _text(view.get("id"))})
                return
            channel, thread, message_ts, files = where
            key = self._s.key(channel, thread)
            turn = Turn(
                key=key,
                # One turn per submitted modal, however often Slack delivers it.
                message_id=f"{ACTION_PREFIX}{_text(view.get('id')) or message_ts}",
                author=Author(user),
                text=prompt,
                images=self._files.refs(files),
                trigger=Trigger.MENTION,
            )
            sink = self._s.sink(key, user, react_ts=message_ts)
            try:
                await self._s.service.receive(
                    Inbound(turn, addressed=True), sink, on_turn=lambda: self._s.answered.add(key)
                )
            except Exception:
                log.exception("slack edit crashed", extra={"conversation": str(key)})
