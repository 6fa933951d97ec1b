"""The loading status under a Slack thread while a turn runs (assistant.threads.setStatus): in AI
app threads, and in channel threads where Slack allows it (the method takes chat:write since
March 2026). Set before the turn's work, cleared once its reply is posted or has failed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from slack_bolt.async_app import AsyncSetStatus
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import slack_error_code
from adapters.slack.words import WORKING_STATUS

log = logging.getLogger(__name__)

_SLACK_ERRORS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError, AttributeError)
# Answers that mean this installation can never set a status: stop asking on every turn.
_NEVER = frozenset({"missing_scope", "not_allowed_token_type", "unknown_method", "method_deprecated"})


class SetStatus(Protocol):
    """Bolt's ``set_status`` listener argument (``AsyncSetStatus``): one thread's status."""

    def __call__(self, status: str) -> Awaitable[Any]: ...


@dataclass
class StatusSupport:
    """Shared by every thread of one installation: whether Slack lets the app set statuses."""

    available: bool = True

    def for_thread(self, client: AsyncWebClient, channel: str, thread_ts: str) -> ThreadStatus:
        return ThreadStatus(AsyncSetStatus(client, channel, thread_ts), self)


class ThreadStatus:
    """One thread's loading status, through Bolt's ``set_status``."""

    def __init__(self, set_status: SetStatus, support: StatusSupport) -> None:
        self._set_status = set_status
        self._support = support

    async def show(self) -> bool:
        return await self._set(WORKING_STATUS)

    async def clear(self) -> None:
        await self._set("")

    async def _set(self, status: str) -> bool:
        if not self._support.available:
            return False
        try:
            await self._set_status(status)
        except _SLACK_ERRORS as exc:
            code = slack_error_code(exc)
            if code in _NEVER:
                self._support.available = False
            # Feedback only: the turn goes on without it.
            log.info("thread status not changed", extra={"slack_error": code, "clearing": not status})
            return False
        return True
