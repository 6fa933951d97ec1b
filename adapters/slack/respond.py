"""Answers a slash command privately through its response URL, after the empty ack.

Slack shows "operation timed out" when a command is not acknowledged within 3 seconds, so the
handlers ack first and do their database work after; the answer then goes to the response URL
(valid for 30 minutes), shown to the caller only."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from adapters.slack.text import escape

log = logging.getLogger(__name__)


async def respond_privately(respond: AsyncRespond, text: str) -> None:
    try:
        await respond(text=escape(text), response_type="ephemeral")
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
        log.warning("answering a slash command failed", extra={"error": type(exc).__name__})
