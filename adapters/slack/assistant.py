"""The AI app surface (Agents & AI Apps), through Bolt's own Assistant middleware: a new thread
offers suggested prompts, each message in it is a turn with the thread's loading status, and the
thread takes its title from its first prompt."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_bolt.async_app import (
    AsyncApp,
    AsyncAssistant,
    AsyncSetStatus,
    AsyncSetSuggestedPrompts,
    AsyncSetTitle,
)
from slack_sdk.errors import SlackApiError, SlackRequestError

from adapters.slack import words
from adapters.slack.conversation import Conversation
from adapters.slack.errors import slack_error_code
from adapters.slack.surface import Surface
from adapters.slack.text import prompt_from_slack
from storage.errors import StoreUnavailable

log = logging.getLogger(__name__)

TITLE_MAX_CHARS = 80
_SLACK_ERRORS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError, AttributeError)


def title_of(prompt: str) -> str:
    """A thread's title from its first prompt: one line, at most ``TITLE_MAX_CHARS``."""
    line = " ".join(prompt.split())
    return line if len(line) <= TITLE_MAX_CHARS else line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


class AssistantThreads:
    """The Assistant's listeners; messages go to the conversation group's one ingest."""

    def __init__(self, surface: Surface, conversation: Conversation) -> None:
        self._s = surface
        self._conversation = conversation

    def register(self, app: AsyncApp) -> None:
        assistant = AsyncAssistant(logger=logging.getLogger("slack_bolt.assistant"))
        assistant.thread_started(self._on_thread_started)
        assistant.thread_context_changed(self._on_context_changed)
        assistant.user_message(self._on_user_message)
        app.assistant(assistant)

    async def _on_thread_started(self, set_suggested_prompts: AsyncSetSuggestedPrompts) -> None:
        prompts = [{"title": title, "message": message} for title, message in words.SUGGESTED_PROMPTS]
        try:
            await set_suggested_prompts(prompts=prompts, title=words.SUGGESTED_TITLE)
        except _SLACK_ERRORS as exc:
            log.info("suggested prompts not set", extra={"slack_error": slack_error_code(exc)})

    async def _on_context_changed(self) -> None:
        """The channel a person is looking at beside the thread: turns do not depend on it (Bolt
        acknowledges the event)."""

    async def _on_user_message(
        self, event: dict[str, Any], set_status: AsyncSetStatus, set_title: AsyncSetTitle
    ) -> None:
        with self._s.listening():
            if not self._conversation.from_a_person(event):
                return
            await self._title_if_first(event, set_title)
            await self._conversation.in_assistant_thread(event, set_status)

    async def _title_if_first(self, event: Mapping[str, Any], set_title: AsyncSetTitle) -> None:
        """The first prompt of a thread names it (a thread the bot has no history for yet)."""
        key = self._s.key(str(event["channel"]), str(event.get("thread_ts") or event["ts"]))
        prompt = prompt_from_slack(str(event.get("text") or ""), self._s.bot_user_id)
        if not prompt.strip() or key in self._s.answered:
            return
        try:
            if await self._s.service.store.conversation(key) is not None:
                return
            await set_title(title_of(prompt))
        except (*_SLACK_ERRORS, StoreUnavailable) as exc:
            # A title is a nicety: the turn itself says what the database outage means.
            log.info("thread title not set", extra={"slack_error": slack_error_code(exc)})
