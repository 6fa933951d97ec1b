"""Clicks on the controls under an image on Slack (Regenerate, another ratio, Variations, Continue,
Redo at a size, the model's name, Forget thread): turns and commands of the core, in the thread."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from adapters.slack import words
from adapters.slack.blocks import (
    ASPECT_ACTION,
    CONTINUE_ACTION,
    FORGET_ACTION,
    FRAME_ACTION_PREFIX,
    MODEL_ACTION,
    REDO_ACTION_PREFIX,
    REGENERATE_ACTION,
    VARIATIONS_ACTION,
    turn_and_ratio_from_value,
    turn_from_value,
    without_controls,
)
from adapters.slack.surface import ACTION_PREFIX, Surface
from adapters.slack.text import escape
from bot.entry.commands import Command, CommandName
from bot.entry.service import UNKNOWN_TURN_MESSAGE
from bot.text import messages
from bot.turns.request import TurnRequest
from bot.vocabulary import Author, ConversationKey, Position

log = logging.getLogger(__name__)

REDO_ACTIONS = re.compile(REDO_ACTION_PREFIX + r"[0-9A-Z]{1,4}")
FRAME_ACTIONS = re.compile(FRAME_ACTION_PREFIX + r"(zoom|pan|edit)_[a-z0-9.]{0,5}")
# Zoom out and Pan run a turn in the thread; Edit region answers the clicker alone with a link.
_FRAME_COMMANDS = {"zoom": CommandName.ZOOM, "pan": CommandName.PAN, "edit": CommandName.EDIT}
_SLACK_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


def _turn_and_size(value: object) -> tuple[int, str | None] | None:
    turn, _, size = str(value or "").partition("|")
    return (int(turn), size or None) if turn.isdigit() else None


def _request_id(body: Mapping[str, Any], action: Mapping[str, Any]) -> tuple[str, Position]:
    """Each click has its own action_ts: a redelivered click is claimed once, a new one runs."""
    action_ts = str(action.get("action_ts") or "")
    return f"{ACTION_PREFIX}{action_ts or body.get('trigger_id')}", Position.from_slack_ts(action_ts)


class Controls:
    """The action listeners."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface

    def register(self, app: AsyncApp) -> None:
        app.action(REGENERATE_ACTION)(self._on_regenerate)
        app.action(ASPECT_ACTION)(self._on_aspect_choice)
        app.action(FORGET_ACTION)(self._on_forget)
        app.action(VARIATIONS_ACTION)(self._on_variations)
        app.action(CONTINUE_ACTION)(self._on_continue)
        app.action(REDO_ACTIONS)(self._on_redo)
        app.action(MODEL_ACTION)(self._on_model_button)
        app.action(FRAME_ACTIONS)(self._on_frame)

    # -- Regenerate and another ratio ------------------------------------------------------------
    async def _on_regenerate(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._s.listening():
            await self._regenerate(body, action, turn_from_value(action.get("value")), None)

    async def _on_aspect_choice(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._s.listening():
            chosen = turn_and_ratio_from_value((action.get("selected_option") or {}).get("value"))
            turn_id, ratio = chosen if chosen is not None else (None, None)
            await self._regenerate(body, action, turn_id, ratio)

    async def _regenerate(
        self, body: Mapping[str, Any], action: Mapping[str, Any], turn_id: int | None, ratio: str | None
    ) -> None:
        key, user, message_ts = self._s.clicked(body)
        if not key.channel or not key.thread or self._s.closing:
            log.warning("ignored a control without a thread", extra={"action": action.get("action_id")})
            return
        if turn_id is None:
            # Signed by Slack but not a value we wrote (a modified client): say so, privately.
            log.warning("a control without a valid turn id", extra={"action": action.get("action_id")})
            await self._s.sink(key, user, react_ts=None).notice(UNKNOWN_TURN_MESSAGE)
            return
        request_id, position = _request_id(body, action)
        sink = self._s.sink(key, user, react_ts=message_ts)
        try:
            request = TurnRequest.regenerate(key, turn_id, Author(user), request_id, position, ratio)
            await self._s.service.run(request, sink)
        except Exception:
            log.exception("slack regenerate crashed", extra={"conversation": str(key)})

    # -- Variations, Continue from this one, Redo at a size --------------------------------------
    async def _on_variations(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._on_turn(CommandName.VARIATIONS, body, action)

    async def _on_continue(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._on_turn(CommandName.CONTINUE, body, action)

    async def _on_redo(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._on_turn(CommandName.REDO, body, action)

    async def _on_frame(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        op = str(action.get("action_id", ""))[len(FRAME_ACTION_PREFIX) :].partition("_")[0]
        await self._on_turn(_FRAME_COMMANDS[op], body, action)

    async def _on_turn(self, name: CommandName, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        with self._s.listening():
            key, user, message_ts = self._s.clicked(body)
            chosen = _turn_and_size(action.get("value"))
            if chosen is None or not key.channel or not key.thread or self._s.closing:
                log.warning("ignored a control without a turn", extra={"action": action.get("action_id")})
                return
            request_id, position = _request_id(body, action)
            command = Command(
                name,
                key,
                Author(user),
                chosen[1] or "",
                turn_id=chosen[0],
                request_id=request_id,
                position=position,
            )
            sink = self._s.sink(key, user, message_ts)
            try:
                reply = await self._s.service.dialogue.run(command)
                if reply.turn is None:
                    await sink.notice(reply.text)
                    return
                await self._s.service.run(reply.turn, sink)
            except Exception:
                log.exception("slack control crashed", extra={"conversation": str(key)})

    # -- the model's name ------------------------------------------------------------------------
    async def _on_model_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """The button naming the model: say privately what it is and how to change it."""
        await ack()
        key, user, _ts = self._s.clicked(body)
        command = Command(CommandName.MODEL, key, Author(user), changed_with=words.MODEL_IN_THREAD)
        reply = await self._s.service.dialogue.run(command)
        try:
            await self._s.client.chat_postEphemeral(
                channel=key.channel, user=user, thread_ts=key.thread, text=escape(reply.text)
            )
        except _SLACK_ERRORS as exc:
            log.warning("telling the model failed", extra={"error": type(exc).__name__})

    # -- Forget thread ---------------------------------------------------------------------------
    async def _on_forget(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._s.listening():
            key, user, message_ts = self._s.clicked(body)
            if not key.channel or not key.thread:
                return
            command = Command(CommandName.FORGET, key, Author(user), next_message_is_turn=False)
            reply = await self._s.service.dialogue.run(command)
            if reply.refused:
                await self._s.sink(key, user, react_ts=None).notice(reply.text)
                return
            self._s.answered.discard(key)
            log.info("slack thread forgotten", extra={"conversation": str(key)})
            await self._post_in_thread(key, reply.text)
            message = body.get("message") or {}
            if message_ts and message.get("blocks"):
                await self._drop_controls(key.channel, message_ts, message)

    async def _post_in_thread(self, key: ConversationKey, text: str) -> None:
        try:
            await self._s.client.chat_postMessage(
                channel=key.channel, thread_ts=key.thread, text=escape(text)
            )
        except _SLACK_ERRORS as exc:
            log.warning("posting in a thread failed", extra={"error": type(exc).__name__})

    async def _drop_controls(self, channel: str, ts: str, message: Mapping[str, Any]) -> None:
        blocks = without_controls(message.get("blocks") or [])
        try:
            await self._s.client.chat_update(
                channel=channel,
                ts=ts,
                text=str(message.get("text") or messages.FORGOTTEN),
                blocks=blocks
                or [{"type": "context", "elements": [{"type": "mrkdwn", "text": messages.FORGOTTEN}]}],
            )
        except _SLACK_ERRORS as exc:
            log.info("could not remove the controls", extra={"error": type(exc).__name__})
