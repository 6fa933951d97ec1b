"""Failed Discord REST calls, told to the operators' metrics by route and status class: the route
is discord.py's template (``POST /channels/{channel_id}/messages``), so no id reaches a label."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route

from bot.observing import status_class


def count_failures(http: HTTPClient, failed: Callable[[str, str], None]) -> None:
    """Wrap ``http``'s one way to the API (every REST call made with the bot token goes through
    ``HTTPClient.request``, after its own retries of 429s and some 5xx) so each call that ends in
    an error tells ``failed`` its route and ``4xx``, ``5xx`` or ``network``."""
    request = http.request

    async def counted(route: Route, **kwargs: Any) -> Any:
        try:
            return await request(route, **kwargs)
        except discord.HTTPException as exc:
            failed(f"{route.method} {route.path}", status_class(exc.status))
            raise
        except (aiohttp.ClientError, OSError, TimeoutError):
            failed(f"{route.method} {route.path}", status_class(None))
            raise

    http.request = counted  # type: ignore[method-assign]
