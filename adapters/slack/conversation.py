"""Slack conversations: mentions, thread replies and DMs handed to the core as turns (one mention
arrives twice, as app_mention and message; both go to one ingest)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from adapters.slack.delivery import MentionPairing
from adapters.slack.files import SlackFiles
from adapters.slack.sink import WORKING_REACTION
from adapters.slack.status import SetStatus
from adapters.slack.surface import ACTION_PREFIX, PLATFORM, Surface
from adapters.slack.text import escape, mentions, prompt_from_slack
from bot.entry.routing import Inbound
from bot.entry.service import INTERRUPTED_MESSAGE
from bot.vocabulary import Author, ConversationKey, Position, Trigger, Turn

log = logging.getLogger(__name__)

# Message subtypes that are a person writing: plain, with files, and "also send to channel".
_USER_SUBTYPES = (None, "file_share", "thread_broadcast")


class Conversation:
    """The event listeners."""

    def __init__(self, surface: Surface, files: SlackFiles, mention_grace_s: float) -> None:
        self._s = surface
        self._files = files
        self._pairing = MentionPairing(mention_grace_s)

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self._on_app_mention)
        app.event("message")(self._on_message)

    async def announce_interrupted(self) -> None:
        """Tell each person whose turn a crash or restart cut off, in their thread, and take the
        working reaction off their message (nothing else would ever remove it)."""
        await self._s.service.announce_interrupted(PLATFORM, self._tell_interrupted)

    async def _tell_interrupted(self, key: ConversationKey, message_id: str) -> None:
        try:
            await self._s.client.chat_postMessage(
                channel=key.channel, thread_ts=key.thread, text=escape(INTERRUPTED_MESSAGE)
            )
            if not message_id.startswith(ACTION_PREFIX):
                await self._s.client.reactions_remove(
                    channel=key.channel, timestamp=message_id, name=WORKING_REACTION
                )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("could not announce an interrupted turn", extra={"error": type(exc).__name__})

    async def _on_message(self, event: dict[str, Any]) -> None:
        with self._s.listening():
            if self.from_a_person(event):
                mentioned = mentions(str(event.get("text") or ""), self._s.bot_user_id)
                await self._ingest(event, mentioned=mentioned, message_copy=True)

    async def _on_app_mention(self, event: dict[str, Any]) -> None:
        with self._s.listening():
            if not self.from_a_person(event) or event.get("edited"):
                # Editing a message re-sends app_mention with the original ts; edits are not turns.
                return
            if not event.get("files"):
                # The app_mention copy may lack the files; the message copy has them.
                if await self._pairing.wait_for_message(str(event["channel"]), str(event["ts"])):
                    return
                event = await self._with_files(event)
            await self._ingest(event, mentioned=True, message_copy=False)

    async def in_assistant_thread(self, event: Mapping[str, Any], set_status: SetStatus | None) -> None:
        """A person's message in an AI app thread (Bolt's Assistant routes it here): always to the
        bot, with the thread's loading status while it runs."""
        if self.from_a_person(event) and event.get("thread_ts"):
            await self._ingest(event, mentioned=False, message_copy=True, set_status=set_status)

    def from_a_person(self, event: Mapping[str, Any]) -> bool:
        return (
            event.get("subtype") in _USER_SUBTYPES
            and bool(event.get("user"))
            and not event.get("bot_id")
            and event.get("user") != self._s.bot_user_id
            and bool(event.get("channel"))
            and bool(event.get("ts"))
        )

    async def _with_files(self, event: dict[str, Any]) -> dict[str, Any]:
        """The mentioned message as stored by Slack, for its files (conversations.replies finds a
        top-level message and a thread reply alike)."""
        ts = str(event["ts"])
        try:
            response = await self._s.client.conversations_replies(
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

    async def _ingest(
        self,
        event: Mapping[str, Any],
        *,
        mentioned: bool,
        message_copy: bool,
        set_status: SetStatus | None = None,
    ) -> None:
        if self._s.closing:
            return
        channel, ts = str(event["channel"]), str(event["ts"])
        thread_ts = str(event.get("thread_ts") or "")
        in_thread = bool(thread_ts) and thread_ts != ts
        if not in_thread and not mentioned and event.get("channel_type") != "im":
            return  # a top-level message starts a conversation when it mentions the bot, or in a DM
        key = self._s.key(channel, thread_ts if in_thread else ts)
        # A plain reply in a thread is a turn where the bot has history, or answered already.
        # An AI app thread (``set_status`` from Bolt's Assistant) is always to the bot.
        addressed = mentioned or not in_thread or key in self._s.answered or set_status is not None
        turn = self._turn_of(event, key, mentioned, message_copy)
        try:
            await self._s.service.receive(
                Inbound(turn, addressed),
                self._s.sink(key, turn.author.id, react_ts=ts, set_status=set_status),
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
            text=prompt_from_slack(str(event.get("text") or ""), self._s.bot_user_id),
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
        self._s.answered.add(key)
