"""Failed Discord REST calls, told to the operators' metrics by route and status class: the route
is discord.py's template (``POST /channels/{channel_id}/messages``,
``POST /webhooks/{webhook_id}/{webhook_token}``), so no id or token reaches a label.

Two ways lead to the API: the bot's ``HTTPClient`` (every call made with the bot token) and the
webhook adapter interactions answer through (interaction responses and follow-ups, which carry the
interaction's token instead); both are counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from bot.observing import status_class

Failed = Callable[[str, str], None]


async def _counted(failed: Failed, route: Route, call: Any) -> Any:
    """Await ``call`` (a request on ``route``); tell ``failed`` if it ends in an error."""
    try:
        return await call
    except discord.HTTPException as exc:
        failed(f"{route.method} {route.path}", status_class(exc.status))
        raise
    except (aiohttp.ClientError, OSError, TimeoutError):
        failed(f"{route.method} {route.path}", status_class(None))
        raise


def count_failures(http: HTTPClient, failed: Failed) -> None:
    """Wrap ``http``'s one way to the API (every REST call made with the bot token goes through
    ``HTTPClient.request``, after its own retries of 429s and some 5xx) so each call that ends in
    an error tells ``failed`` its route and ``4xx``, ``5xx`` or ``network``."""
    request = http.request

    async def counted(route: Route, **kwargs: Any) -> Any:
        return await _counted(failed, route, request(route, **kwargs))

    http.request = counted  # type: ignore[method-assign]


class _CountingWebhookAdapter(AsyncWebhookAdapter):
    """discord.py's webhook adapter (``request`` is its one way to the API, after its own retries
    of 429s and 5xx), telling ``failed`` of each call that ends in an error."""

    def __init__(self, failed: Failed) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._failed = failed

    async def request(self, route: Route, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        return await _counted(self._failed, route, super().request(route, session, **kwargs))


def count_webhook_failures(failed: Failed) -> None:
    """Count failed interaction responses and follow-ups as ``count_failures`` counts the rest.
    discord.py picks its webhook adapter from a context variable: set here for the calling task,
    it holds for every task that task starts (the gateway's, and each handler's), so call it at
    the start of the task that runs the client; other clients in the process are left alone."""
    async_context.set(_CountingWebhookAdapter(failed))
