"""What every Slack feature group shares, built once by ``SlackHandlers`` and handed to each
explicitly: the Web API client, the core, the installation's ids and the intake's state."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.delivery import RecentSet
from adapters.slack.sink import Place, SlackSink
from adapters.slack.status import SetStatus, StatusSupport, ThreadStatus
from bot.entry.service import ConversationService
from bot.vocabulary import ConversationKey

PLATFORM = "slack"
# Turns started by a click are claimed under the click's id, not a message ts.
ACTION_PREFIX = "action:"


@dataclass
class Surface:
    """Keys use the installation's team (from auth.test), not the event's: in Slack Connect
    channels an event's team is the author's organization, and every event of one thread must map
    to one conversation key."""

    service: ConversationService
    client: AsyncWebClient
    team_id: str
    bot_user_id: str
    share_wait_s: float
    # Threads the bot answered in this process without a stored conversation yet (the first
    # turn failed or was only a settings change): plain replies there still reach the bot.
    answered: RecentSet = field(default_factory=RecentSet)
    closing: bool = False
    listeners: set[asyncio.Task[Any]] = field(default_factory=set)
    # Whether Slack lets this installation show a thread's loading status.
    status: StatusSupport = field(default_factory=StatusSupport)

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Count the current listener as at work until it finishes (shutdown waits for it)."""
        task = asyncio.current_task()
        if task is not None:
            self.listeners.add(task)
        try:
            yield
        finally:
            if task is not None:
                self.listeners.discard(task)

    def key(self, channel: str, thread_ts: str) -> ConversationKey:
        return ConversationKey(PLATFORM, self.team_id, channel, thread_ts)

    def sink(
        self, key: ConversationKey, user: str, react_ts: str | None, set_status: SetStatus | None = None
    ) -> SlackSink:
        """``set_status``: Bolt's for the thread (AI app threads); else one for ``key``'s thread."""
        place = Place(channel=key.channel, thread_ts=key.thread, user=user, react_ts=react_ts)
        status = (
            ThreadStatus(set_status, self.status)
            if set_status is not None
            else self.status.for_thread(self.client, key.channel, key.thread)
        )
        return SlackSink(self.client, place, share_wait_s=self.share_wait_s, status=status)

    def clicked(self, body: Mapping[str, Any]) -> tuple[ConversationKey, str, str | None]:
        """The conversation a clicked control belongs to, the user, and the clicked message ts."""
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        thread = str(container.get("thread_ts") or message.get("thread_ts") or message.get("ts") or "")
        user = str((body.get("user") or {}).get("id") or "")
        message_ts = container.get("message_ts") or message.get("ts")
        return self.key(channel, thread), user, str(message_ts) if message_ts else None
