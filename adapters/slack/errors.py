"""What went wrong in a failed Slack Web API call, whatever the body that came back."""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.errors import SlackApiError


def slack_error_code(exc: BaseException) -> str:
    """Slack's error code (``invalid_auth``), or ``http_503`` when something in between answered
    instead: slack_sdk then leaves a string (text/plain), an empty dict (HTML, empty body) or the
    raw aiohttp response (broken JSON) as the error's response data, none of which has ``error``."""
    if not isinstance(exc, SlackApiError):
        return type(exc).__name__
    response = exc.response
    data = getattr(response, "data", None)
    if isinstance(data, Mapping) and data.get("error"):
        return str(data["error"])
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return f"http_{status}" if isinstance(status, int) else "unknown"
