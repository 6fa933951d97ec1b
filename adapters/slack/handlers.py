"""Slack events, slash commands and control clicks translated into turns for the service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import (
    ASPECT_ACTION,
    FORGET_ACTION,
    REGENERATE_ACTION,
    turn_and_ratio_from_value,
    turn_from_value,
    without_controls,
)
from adapters.slack.delivery import MentionPairing, RecentSet
from adapters.slack.files import SlackFiles
from adapters.slack.respond import respond_privately
from adapters.slack.sink import WORKING_REACTION, Place, SlackSink
from adapters.slack.text import escape, mentions, prompt_from_slack
from adapters.slack.variations import MODEL_COMMAND, SlackVariations
from bot.entry.routing import Inbound
from bot.entry.service import INTERRUPTED_MESSAGE, UNKNOWN_TURN_MESSAGE, ConversationService
from bot.text import messages
from bot.text.messages import SLACK_FORGET_COMMAND_REPLY as FORGET_COMMAND_REPLY
from bot.text.messages import SLACK_SIZE_HINT as SIZE_HINT
from bot.text.messages import SLACK_THREAD_HINT as THREAD_HINT
from bot.text.settings import SettingError
from bot.turns.request import TurnRequest
from bot.vocabulary import Author, ConversationKey, Position, SettingName, SettingScope, Trigger, Turn

log = logging.getLogger(__name__)

PLATFORM = "slack"
# Every bot event the manifest subscribes to has a listener here (message.channels/.groups/.im/
# .mpim all arrive as "message"); an event without one is answered 404 and Slack retries it.
EVENT_TYPES = ("app_mention", "message")
COMMANDS = ("/aspect", "/size", "/forget", "/usage", MODEL_COMMAND)
# Regenerations are claimed under the click's id, not a message ts.
ACTION_PREFIX = "action:"
ACTIONS = (REGENERATE_ACTION, ASPECT_ACTION, FORGET_ACTION)
# Message subtypes that are a person writing: plain, with files, and "also send to channel".
_USER_SUBTYPES = (None, "file_share", "thread_broadcast")


class SlackHandlers:
    """The Bolt listeners. Keys use the installation's team (from auth.test), not the event's: in
    Slack Connect channels an event's team is the author's organization, and every event of one
    thread must map to one conversation key."""

    def __init__(
        self,
        *,
        service: ConversationService,
        client: AsyncWebClient,
        files: SlackFiles,
        team_id: str,
        bot_user_id: str,
        mention_grace_s: float,
        share_wait_s: float,
    ) -> None:
        self._service = service
        self._client = client
        self._files = files
        self._team_id = team_id
        self._bot_user_id = bot_user_id
        self._share_wait_s = share_wait_s
        self._pairing = MentionPairing(mention_grace_s)
        # Threads the bot answered in this process without a stored conversation yet (the first
        # turn failed or was only a settings change): plain replies there still reach the bot.
        self._answered = RecentSet()
        self._listeners: set[asyncio.Task[Any]] = set()
        self._closing = False

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self._on_app_mention)
        app.event("message")(self._on_message)
        app.command("/aspect")(self._on_aspect_command)
        app.command("/size")(self._on_size_command)
        app.command("/forget")(self._on_forget_command)
        app.command("/usage")(self._on_usage_command)
        app.action(REGENERATE_ACTION)(self._on_regenerate)
        app.action(ASPECT_ACTION)(self._on_aspect_choice)
        app.action(FORGET_ACTION)(self._on_forget)
        SlackVariations(
            service=self._service,
            client=self._client,
            clicked=self._clicked,
            sink=self._sink,
            listening=self._listening,
            closing=lambda: self._closing,
            key=self._key,
            bot_user_id=self._bot_user_id,
            action_prefix=ACTION_PREFIX,
        ).register(app)

    def stop_taking_turns(self) -> None:
        self._closing = True

    async def finish(self) -> None:
        """Wait for the listeners already working (their turns post their replies)."""
        await asyncio.gather(*list(self._listeners), return_exceptions=True)

    @contextmanager
    def _listening(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._listeners.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._listeners.discard(task)

    def _key(self, channel: str, thread_ts: str) -> ConversationKey:
        return ConversationKey(PLATFORM, self._team_id, channel, thread_ts)

    def _sink(self, key: ConversationKey, user: str, react_ts: str | None) -> SlackSink:
        place = Place(channel=key.channel, thread_ts=key.thread, user=user, react_ts=react_ts)
        return SlackSink(self._client, place, share_wait_s=self._share_wait_s)

    async def announce_interrupted(self) -> None:
        """Tell each person whose turn a crash or restart cut off, in their thread, and take the
        working reaction off their message (nothing else would ever remove it)."""
        await self._service.announce_interrupted(PLATFORM, self._tell_interrupted)

    async def _tell_interrupted(self, key: ConversationKey, message_id: str) -> None:
        try:
            await self._client.chat_postMessage(
                channel=key.channel, thread_ts=key.thread, text=escape(INTERRUPTED_MESSAGE)
            )
            if not message_id.startswith(ACTION_PREFIX):
                await self._client.reactions_remove(
                    channel=key.channel, timestamp=message_id, name=WORKING_REACTION
                )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not announce an interrupted turn", extra={"error": type(exc).__name__})

    # -- messages ------------------------------------------------------------------------------
    async def _on_message(self, event: dict[str, Any]) -> None:
        with self._listening():
            if self._from_a_person(event):
                mentioned = mentions(str(event.get("text") or ""), self._bot_user_id)
                await self._ingest(event, mentioned=mentioned, message_copy=True)

    async def _on_app_mention(self, event: dict[str, Any]) -> None:
        with self._listening():
            if not self._from_a_person(event) or event.get("edited"):
                # Editing a message re-sends app_mention with the original ts; edits are not turns.
                return
            if not event.get("files"):
                # The app_mention copy may lack the files; the message copy has them.
                if await self._pairing.wait_for_message(str(event["channel"]), str(event["ts"])):
                    return
                event = await self._with_files(event)
            await self._ingest(event, mentioned=True, message_copy=False)

    def _from_a_person(self, event: Mapping[str, Any]) -> bool:
        return (
            event.get("subtype") in _USER_SUBTYPES
            and bool(event.get("user"))
            and not event.get("bot_id")
            and event.get("user") != self._bot_user_id
            and bool(event.get("channel"))
            and bool(event.get("ts"))
        )

    async def _with_files(self, event: dict[str, Any]) -> dict[str, Any]:
        """The mentioned message as stored by Slack, for its files (conversations.replies finds a
        top-level message and a thread reply alike)."""
        ts = str(event["ts"])
        try:
            response = await self._client.conversations_replies(
                channel=str(event["channel"]),
                ts=str(event.get("thread_ts") or ts),
                oldest=ts,
                latest=ts,
                inclusive=True,
                limit=2,
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not look up a mention's files", extra={"error": type(exc).__name__})
            return event
        for message in response.get("messages") or []:
            if isinstance(message, Mapping) and message.get("ts") == ts and message.get("files"):
                return {**event, "files": message["files"]}
        return event

    async def _ingest(self, event: Mapping[str, Any], *, mentioned: bool, message_copy: bool) -> None:
        if self._closing:
            return
        channel, ts = str(event["channel"]), str(event["ts"])
        thread_ts = str(event.get("thread_ts") or "")
        in_thread = bool(thread_ts) and thread_ts != ts
        if not in_thread and not mentioned and event.get("channel_type") != "im":
            return  # a top-level message starts a conversation when it mentions the bot, or in a DM
        key = self._key(channel, thread_ts if in_thread else ts)
        # A plain reply in a thread is a turn where the bot has history, or answered already.
        addressed = mentioned or not in_thread or key in self._answered
        turn = self._turn_of(event, key, mentioned, message_copy)
        try:
            await self._service.receive(
                Inbound(turn, addressed),
                self._sink(key, turn.author.id, react_ts=ts),
                on_turn=partial(self._becoming_a_turn, key, ts, message_copy),
            )
        except Exception:
            log.exception("slack turn crashed", extra={"conversation": str(key), "message_id": ts})

    def _turn_of(
        self, event: Mapping[str, Any], key: ConversationKey, mentioned: bool, message_copy: bool
    ) -> Turn:
        ts = str(event["ts"])
        return Turn(
            key=key,
            message_id=ts,
            author=Author(str(event["user"])),
            text=prompt_from_slack(str(event.get("text") or ""), self._bot_user_id),
            images=self._files.refs(event.get("files") or []),
            trigger=Trigger.MENTION if mentioned else Trigger.MESSAGE,
            position=Position.from_slack_ts(ts),
            # Every mention also arrives as a message event (the manifest subscribes to both).
            echo=not message_copy,
        )

    def _becoming_a_turn(self, key: ConversationKey, ts: str, message_copy: bool) -> None:
        """Called by the core once a message is a turn, before the turn runs."""
        if message_copy:
            # Only now that this copy is becoming a turn does a waiting app_mention stand down.
            self._pairing.message_arrived(key.channel, ts)
        # Plain replies in this thread reach the bot from now on, even before it stores history
        # (the first turn may fail or only change a setting).
        self._answered.add(key)

    # -- controls on replies -------------------------------------------------------------------
    def _clicked(self, body: Mapping[str, Any]) -> tuple[ConversationKey, str, str | None]:
        """The conversation a clicked control belongs to, the user, and the clicked message ts."""
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        thread = str(container.get("thread_ts") or message.get("thread_ts") or message.get("ts") or "")
        user = str((body.get("user") or {}).get("id") or "")
        message_ts = container.get("message_ts") or message.get("ts")
        return self._key(channel, thread), user, str(message_ts) if message_ts else None

    async def _on_regenerate(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._listening():
            await self._regenerate(body, action, turn_from_value(action.get("value")), None)

    async def _on_aspect_choice(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._listening():
            chosen = turn_and_ratio_from_value((action.get("selected_option") or {}).get("value"))
            turn_id, ratio = chosen if chosen is not None else (None, None)
            await self._regenerate(body, action, turn_id, ratio)

    async def _regenerate(
        self, body: Mapping[str, Any], action: Mapping[str, Any], turn_id: int | None, ratio: str | None
    ) -> None:
        key, user, message_ts = self._clicked(body)
        if not key.channel or not key.thread or self._closing:
            log.warning("ignored a control without a thread", extra={"action": action.get("action_id")})
            return
        if turn_id is None:
            # Signed by Slack but not a value we wrote (a modified client): say so, privately.
            log.warning("a control without a valid turn id", extra={"action": action.get("action_id")})
            await self._sink(key, user, react_ts=None).notice(UNKNOWN_TURN_MESSAGE)
            return
        # Each click has its own action_ts: a redelivered click is claimed once, a new one runs.
        action_ts = str(action.get("action_ts") or "")
        request_id = f"{ACTION_PREFIX}{action_ts or body.get('trigger_id')}"
        sink = self._sink(key, user, react_ts=message_ts)
        try:
            position = Position.from_slack_ts(action_ts)
            request = TurnRequest.regenerate(key, turn_id, Author(user), request_id, position, ratio)
            await self._service.run(request, sink)
        except Exception:
            log.exception("slack regenerate crashed", extra={"conversation": str(key)})

    async def _on_forget(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._listening():
            key, user, message_ts = self._clicked(body)
            if not key.channel or not key.thread:
                return
            result = await self._service.forget_as(key, Author(user))
            if result.refusal is not None:
                await self._sink(key, user, react_ts=None).notice(result.refusal)
                return
            deleted = result.deleted
            self._answered.discard(key)
            log.info("slack thread forgotten", extra={"conversation": str(key), "turns": deleted})
            text = (
                f"{messages.forgotten(deleted)} {messages.MENTION_TO_RESTART}"
                if deleted
                else f"{messages.NOTHING_TO_FORGET} {messages.MENTION_TO_RESTART}"
            )
            await self._post_in_thread(key, text)
            message = body.get("message") or {}
            if message_ts and message.get("blocks"):
                await self._drop_controls(key.channel, message_ts, message)

    async def _post_in_thread(self, key: ConversationKey, text: str) -> None:
        try:
            await self._client.chat_postMessage(channel=key.channel, thread_ts=key.thread, text=escape(text))
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("posting in a thread failed", extra={"error": type(exc).__name__})

    async def _drop_controls(self, channel: str, ts: str, message: Mapping[str, Any]) -> None:
        blocks = without_controls(message.get("blocks") or [])
        try:
            await self._client.chat_update(
                channel=channel,
                ts=ts,
                text=str(message.get("text") or messages.FORGOTTEN),
                blocks=blocks
                or [{"type": "context", "elements": [{"type": "mrkdwn", "text": messages.FORGOTTEN}]}],
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not remove the controls", extra={"error": type(exc).__name__})

    # -- slash commands (channel defaults; Slack does not run them inside threads) -------------
    def _channel_key(self, command: Mapping[str, Any]) -> ConversationKey:
        return self._key(str(command.get("channel_id") or ""), "")

    async def _on_aspect_command(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()  # within Slack's 3 s, before any database work; the answer goes to respond
        value = prompt_from_slack(str(command.get("text") or ""), self._bot_user_id)
        key = self._channel_key(command)
        caps = self._service.capabilities
        if not value:
            current = (await self._service.effective_settings(key)).aspect_ratio
            text = messages.current_setting(
                SettingName.ASPECT_RATIO,
                current,
                SettingScope.for_channel(key).level,
                "/aspect",
                caps.aspect_ratios,
            )
            text += f" {THREAD_HINT}"
        else:
            text = await self._set_channel_default(key, SettingName.ASPECT_RATIO, value)
        await respond_privately(respond, text)

    async def _on_size_command(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        value = prompt_from_slack(str(command.get("text") or ""), self._bot_user_id)
        key = self._channel_key(command)
        caps = self._service.capabilities
        if not caps.supports_sizes():
            text = messages.single_size(caps.model)
        elif not value:
            current = (await self._service.effective_settings(key)).image_size
            text = messages.current_setting(
                SettingName.IMAGE_SIZE,
                current,
                SettingScope.for_channel(key).level,
                "/size",
                caps.image_sizes,
            )
            text += f" {SIZE_HINT}"
        else:
            text = await self._set_channel_default(key, SettingName.IMAGE_SIZE, value)
        await respond_privately(respond, text)

    async def _set_channel_default(self, key: ConversationKey, name: SettingName, value: str) -> str:
        try:
            confirmation = await self._service.change_setting(SettingScope.for_channel(key), name, value)
        except SettingError as exc:
            return exc.user_message
        hint = THREAD_HINT if name is SettingName.ASPECT_RATIO else SIZE_HINT
        return f"{confirmation} {hint}"

    async def _on_forget_command(self, ack: AsyncAck) -> None:
        await ack(text=FORGET_COMMAND_REPLY)

    async def _on_usage_command(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack()
        key = self._channel_key(command)
        report = await self._service.usage_report(key, Author(str(command.get("user_id") or "")))
        await respond_privately(respond, report)
