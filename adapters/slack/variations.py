"""Slack controls for takes and sizes (Variations, Continue from this one, Redo at 2K/4K), the
button naming the model, and /model: Block Kit elements whose values carry the stored turn id,
and their listeners."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import CONTINUE_ACTION, MODEL_ACTION, REDO_ACTION_PREFIX, VARIATIONS_ACTION
from adapters.slack.respond import respond_privately
from adapters.slack.sink import SlackSink
from adapters.slack.text import escape, prompt_from_slack
from bot.entry.service import ConversationService
from bot.text.messages import SLACK_MODEL_HINT as MODEL_HINT
from bot.text.settings import SettingError
from bot.turns.request import VARIATIONS_TAKES, TurnKind, TurnRequest
from bot.vocabulary import Author, ConversationKey, Position, SettingName, SettingScope

log = logging.getLogger(__name__)

REDO_ACTIONS = re.compile(REDO_ACTION_PREFIX + r"[0-9A-Z]{1,4}")
VARIATION_ACTIONS = (VARIATIONS_ACTION, CONTINUE_ACTION, MODEL_ACTION, REDO_ACTIONS.pattern)
MODEL_COMMAND = "/model"

Clicked = Callable[[Mapping[str, Any]], tuple[ConversationKey, str, str | None]]
SinkFor = Callable[[ConversationKey, str, str | None], SlackSink]


def _turn_and_size(value: object) -> tuple[int, str | None] | None:
    turn, _, size = str(value or "").partition("|")
    return (int(turn), size or None) if turn.isdigit() else None


class SlackVariations:
    """The listeners; the conversation, sink and bookkeeping come from ``SlackHandlers``."""

    def __init__(
        self,
        *,
        service: ConversationService,
        client: AsyncWebClient,
        clicked: Clicked,
        sink: SinkFor,
        listening: Callable[[], AbstractContextManager[None]],
        closing: Callable[[], bool],
        key: Callable[[str, str], ConversationKey],
        bot_user_id: str,
        action_prefix: str,
    ) -> None:
        self._service = service
        self._client = client
        self._clicked = clicked
        self._sink = sink
        self._listening = listening
        self._closing = closing
        self._key = key
        self._bot_user_id = bot_user_id
        self._prefix = action_prefix

    def register(self, app: AsyncApp) -> None:
        app.action(VARIATIONS_ACTION)(self._on_variations)
        app.action(CONTINUE_ACTION)(self._on_continue)
        app.action(REDO_ACTIONS)(self._on_redo)
        app.action(MODEL_ACTION)(self._on_model_button)
        app.command(MODEL_COMMAND)(self._on_model_command)

    async def _on_variations(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._run(TurnKind.VARIATIONS, body, action)

    async def _on_continue(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._run(TurnKind.CONTINUE, body, action)

    async def _on_redo(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        await self._run(TurnKind.REDO_SIZE, body, action)

    async def _run(self, kind: TurnKind, body: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        with self._listening():
            key, user, message_ts = self._clicked(body)
            chosen = _turn_and_size(action.get("value"))
            if chosen is None or not key.channel or not key.thread or self._closing():
                log.warning("ignored a control without a turn", extra={"action": action.get("action_id")})
                return
            # Each click has its own action_ts: a redelivered click is claimed once.
            action_ts = str(action.get("action_ts") or "")
            request = TurnRequest.on_turn(
                kind,
                key,
                chosen[0],
                Author(user),
                f"{self._prefix}{action_ts or body.get('trigger_id')}",
                takes=VARIATIONS_TAKES if kind is TurnKind.VARIATIONS else 1,
                image_size=chosen[1],
                position=Position.from_slack_ts(action_ts),
            )
            try:
                await self._service.run(request, self._sink(key, user, message_ts))
            except Exception:
                log.exception("slack control crashed", extra={"conversation": str(key)})

    async def _on_model_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """The button naming the model: say privately what it is and how to change it."""
        await ack()
        key, user, _ts = self._clicked(body)
        text = (await self._describe(key, "this thread")) + " " + MODEL_HINT
        try:
            await self._client.chat_postEphemeral(
                channel=key.channel, user=user, thread_ts=key.thread, text=escape(text)
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("telling the model failed", extra={"error": type(exc).__name__})

    async def _describe(self, key: ConversationKey, where: str) -> str:
        model = (await self._service.effective_settings(key)).model
        choices = ", ".join(self._service.allowed_models)
        return f"Images in {where} are drawn with {model} (choices: {choices})."

    async def _on_model_command(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        """Slack does not run slash commands in threads: this sets the channel's default."""
        await ack()  # within Slack's 3 s, before any database work; the answer goes to respond
        value = prompt_from_slack(str(command.get("text") or ""), self._bot_user_id)
        key = self._key(str(command.get("channel_id") or ""), "")
        if not value:
            text = f"{await self._describe(key, 'new conversations in this channel')} {MODEL_HINT}"
        else:
            try:
                scope = SettingScope.for_channel(key)
                said = await self._service.change_setting(scope, SettingName.MODEL, value)
                text = f"{said} {MODEL_HINT}"
            except SettingError as exc:
                text = exc.user_message
        await respond_privately(respond, text)
