"""Slack's listeners, grouped by feature (conversation, slash commands, controls) and registered
with Bolt; each group gets the shared surface, never this object."""

from __future__ import annotations

import asyncio

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import pins, settings
from adapters.slack.assistant import AssistantThreads
from adapters.slack.blocks import ASPECT_ACTION, FORGET_ACTION, REGENERATE_ACTION
from adapters.slack.controls import Controls
from adapters.slack.conversation import Conversation
from adapters.slack.files import SlackFiles
from adapters.slack.pins import PinCommands
from adapters.slack.settings import SlashCommands
from adapters.slack.shortcut import EDIT_CALLBACK, EditShortcut
from adapters.slack.sink import SlackSink
from adapters.slack.surface import ACTION_PREFIX, PLATFORM, Surface
from bot.entry.service import ConversationService
from bot.vocabulary import ConversationKey

__all__ = [
    "ACTIONS",
    "ACTION_PREFIX",
    "COMMANDS",
    "EVENT_TYPES",
    "PLATFORM",
    "SHORTCUTS",
    "SlackHandlers",
]

# Every bot event the manifest subscribes to has a listener here (message.channels/.groups/.im/
# .mpim all arrive as "message"; the assistant_thread_* events and messages in AI app threads go to
# Bolt's Assistant); an event without one is answered 404 and Slack retries it.
EVENT_TYPES = ("app_mention", "assistant_thread_context_changed", "assistant_thread_started", "message")
# Every slash command the manifest declares.
COMMANDS = settings.COMMANDS + pins.COMMANDS
# Message shortcuts, by callback id.
SHORTCUTS = (EDIT_CALLBACK,)
# The controls every image reply has (adapters/slack/blocks.py draws the rest).
ACTIONS = (REGENERATE_ACTION, ASPECT_ACTION, FORGET_ACTION)


class SlackHandlers:
    """Builds the feature groups once and registers their listeners."""

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
        self._surface = Surface(service, client, team_id, bot_user_id, share_wait_s)
        self._conversation = Conversation(self._surface, files, mention_grace_s)
        self._groups = (
            self._conversation,
            AssistantThreads(self._surface, self._conversation),
            EditShortcut(self._surface, files),
            SlashCommands(self._surface),
            PinCommands(self._surface),
            Controls(self._surface),
        )

    def register(self, app: AsyncApp) -> None:
        for group in self._groups:
            group.register(app)

    def stop_taking_turns(self) -> None:
        self._surface.closing = True

    async def finish(self) -> None:
        """Wait for the listeners already working (their turns post their replies)."""
        await asyncio.gather(*list(self._surface.listeners), return_exceptions=True)

    async def announce_interrupted(self) -> None:
        await self._conversation.announce_interrupted()

    def thread_sink(self, key: ConversationKey, person: str) -> SlackSink:
        """Where a region edit is posted: the thread of the image it edits (notices to ``person``)."""
        return self._surface.sink(key, person, react_ts=None)
