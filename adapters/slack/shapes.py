"""Slack payloads of an unexpected shape, refused before Bolt reads them: Bolt's own middleware
indexes ``actions``, ``event``, ``view``... as the types Slack documents, and a correctly signed
payload with, say, an ``actions`` that is a string or an ``event`` that is a list fails inside it
(a 500 with a logged traceback). Such a payload gets one log line and a bounded answer instead:
200 for an event or over Socket Mode (Slack would only retry it), 400 for anything else."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

# Top-level fields that are objects when present (null allowed: Slack sends "enterprise": null).
_OBJECTS = ("event", "view", "message", "channel", "user", "team", "container", "enterprise", "state")
# Top-level fields that are lists of objects when present.
_LISTS = ("actions", "authorizations", "response_urls")
# Inside ``event``: the objects Bolt itself reads (the adapter reads the rest defensively: a
# ``files`` that is not a list is no attachments, and the prompt is still answered).
_EVENT_OBJECTS = ("assistant_thread", "message", "previous_message")
# Inside ``view``.
_VIEW_OBJECTS = ("state", "title")


def _is_object(value: object) -> bool:
    return value is None or isinstance(value, Mapping)


def _is_list_of_objects(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return False
    return all(isinstance(item, Mapping) for item in value)


def odd_field(body: Mapping[str, Any]) -> str | None:
    """The first field of ``body`` whose type is not what Slack sends, as a dotted path; None when
    the payload has the expected shape (or is a kind this check knows nothing of)."""
    if "type" in body and not isinstance(body["type"], str):
        return "type"
    for name in _OBJECTS:
        if not _is_object(body.get(name)):
            return name
    for name in _LISTS:
        if not _is_list_of_objects(body.get(name)):
            return name
    event = body.get("event")
    if isinstance(event, Mapping):
        if not isinstance(event.get("type", ""), str):
            return "event.type"
        for name in _EVENT_OBJECTS:
            if not _is_object(event.get(name)):
                return f"event.{name}"
    view = body.get("view")
    if isinstance(view, Mapping):
        for name in _VIEW_OBJECTS:
            if not _is_object(view.get(name)):
                return f"view.{name}"
    return None


class ShapeCheckedApp(AsyncApp):
    """Bolt's app, refusing payloads of an unexpected shape before its middleware reads them (in
    HTTP mode only once the signature holds, so an unsigned request still gets Bolt's 401)."""

    def __init__(self, *, signing_secret: str, **kwargs: Any) -> None:
        super().__init__(signing_secret=signing_secret, **kwargs)
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        body = req.body if isinstance(req.body, Mapping) else {}
        odd = odd_field(body)
        if odd is None or not self._signed(req):
            return await super().async_dispatch(req)
        kind = body.get("type") if isinstance(body.get("type"), str) else "unknown"
        log.warning("refused a Slack payload of an unexpected shape", extra={"field": odd, "kind": kind})
        if kind == "event_callback" or req.mode == "socket_mode":
            # Acknowledged and dropped: Slack would only send it again (Socket Mode sends no
            # acknowledgement at all for another status).
            return BoltResponse(status=200, body="")
        return BoltResponse(status=400, body='{"error": "unexpected payload"}')

    def _signed(self, req: AsyncBoltRequest) -> bool:
        """Socket Mode payloads come over the app's own connection; HTTP ones must be signed."""
        if req.mode == "socket_mode" or self._verifier is None:
            return True
        headers = {name: values[0] for name, values in req.headers.items() if values}
        return self._verifier.is_valid_request(req.raw_body, headers)
