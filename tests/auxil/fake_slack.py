"""A fake Slack for the real Bolt app and slack_sdk: Web API, private file host, Socket Mode.

``FakeSlack`` serves on 127.0.0.1:

- ``POST /api/{method}``: the Web API methods the bot uses (auth.test, chat.postMessage /
  update / postEphemeral (an ephemeral in a thread without replies is shown to no one, as on
  Slack), reactions.add / remove, files.getUploadURLExternal, the upload URL,
  files.completeUploadExternal, files.info, conversations.replies, apps.connections.open,
  views.open, assistant.threads.setStatus / setTitle / setSuggestedPrompts),
  taking the token from ``Authorization: Bearer`` or a ``token`` field, parameters from the
  query, a form or JSON, and answering ``{"ok": false, "error": ...}`` like Slack.
- ``GET /files-pri/...``: private files that need ``Authorization: Bearer <bot token>``; without
  it Slack answers 200 with its HTML sign-in page, and so does the fake.
- ``GET /link``: the Socket Mode websocket (``hello`` on connect, envelopes out, acks in).
- ``POST /commands/response/{id}``: slash commands' response URLs (``command_responses``).
- ``POST /actions/response/{id}``: shortcuts' and buttons' response URLs (``action_responses``).

Point the bot at it with ``SLACK_API_URL=fake.api_url``. ``SlackSender`` sends what Slack sends in
HTTP mode: signed Events API callbacks, slash commands and interactivity payloads.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.auxil.local_server import LocalServer

BOT_TOKEN = "xoxb-fake-bot-token"
# files.getUploadURLExternal answers alt_txt_too_large past this.
ALT_TXT_LIMIT = 1000
# Fields of a message event that a stored message (as shortcuts carry it) does not have.
_EVENT_ONLY = ("channel", "channel_type", "event_ts")
APP_TOKEN = "xapp-fake-app-token"
SIGNING_SECRET = "fake-signing-secret"
TEAM_ID = "T0FAKE"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
APP_ID = "AFAKE"
ALICE = "UALICE"
BOB = "UBOB"
SIGN_IN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head>"
    "<body><h1>Sign in to Fake Workspace</h1></body></html>"
)


@dataclass
class ApiCall:
    """One Web API request as the fake received it."""

    method: str
    params: dict[str, Any]
    token: str | None
    # When it arrived (time.monotonic()), and whether the fake answered it 429 ``ratelimited``.
    at: float = field(default_factory=time.monotonic)
    rate_limited: bool = False
    raw_answered: bool = False  # answered by ``answer_raw`` instead of the method


@dataclass
class FileRequest:
    """One GET of a private file."""

    path: str
    authorization: str | None


@dataclass
class HostedFile:
    """A file a user attached: its Slack file object and bytes."""

    info: dict[str, Any]
    data: bytes
    content_type: str  # "" = no Content-Type header at all
    redirect_to: str | None = None
    status: int = 200  # what the file host answers an authorised request with
    redirects: int = 0  # a chain of this many relative redirects before the file
    redirect_status: int = 302
    drop: bool = False  # the connection drops halfway through the body


@dataclass
class Upload:
    """A file the bot uploaded."""

    file_id: str
    filename: str
    length: int
    data: bytes = b""
    title: str = ""
    alt_txt: str | None = None  # as files.getUploadURLExternal was given it
    channel: str | None = None
    thread_ts: str | None = None
    share_ts: str | None = None
    info_calls: int = 0


@dataclass
class Socket:
    ws: web.WebSocketResponse
    acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class FakeSlack(LocalServer):
    """The fake Slack server; ``async with FakeSlack() as slack`` or ``start()``/``close()``."""

    def __init__(self, *, share_after_info_calls: int = 0) -> None:
        self.port = 0
        self.calls: list[ApiCall] = []
        # Every message in every channel, users' and the bot's, in posting order.
        self.messages: list[dict[str, Any]] = []
        # Ephemerals shown to their user; and those Slack shows to no one (see chat.postEphemeral).
        self.ephemerals: list[dict[str, Any]] = []
        self.dropped_ephemerals: list[dict[str, Any]] = []
        # What the bot posted to slash commands' response URLs (shown to the caller only).
        self.command_responses: list[dict[str, Any]] = []
        # Users ``users.info`` says are workspace admins.
        self.workspace_admins: set[str] = set()
        self.action_responses: list[dict[str, Any]] = []
        # Modals opened with views.open, in order (each with the "id" Slack gave it).
        self.views: list[dict[str, Any]] = []
        self.reaction_log: list[tuple[str, str, str, str]] = []
        self.reactions: dict[tuple[str, str], set[str]] = {}
        self.uploads: dict[str, Upload] = {}
        self.hosted: dict[str, HostedFile] = {}
        self.file_requests: list[FileRequest] = []
        self.sockets: list[Socket] = []
        self.errors: dict[str, list[str]] = {}
        self.answers: dict[str, list[dict[str, Any]]] = {}
        # Retry-After seconds for the next calls of a method, one each (see ``rate_limit``).
        self.rate_limits: dict[str, list[int]] = {}
        # Raw answers (status, content type, body) for the next calls of a method, one each: what a
        # proxy or load balancer in front of Slack says when it is down (see ``answer_raw``).
        self.raw_answers: dict[str, list[tuple[int, str, bytes]]] = {}
        self.bot_token = BOT_TOKEN
        self.app_token = APP_TOKEN
        # files.info shows an upload's share only after this many calls (Slack shares uploads
        # asynchronously, after files.completeUploadExternal has answered).
        self.share_after_info_calls = share_after_info_calls
        self._clock = itertools.count(1)
        self.realtime_ts = False
        self._last_micros = 0
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()

    # -- lifecycle -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/files-pri/{path:.*}", self._file)
        app.router.add_get("/link", self._socket)
        app.router.add_post("/commands/response/{id}", self._command_response)
        app.router.add_post("/actions/response{tail:.*}", self._action_response)
        return app

    async def _action_response(self, request: web.Request) -> web.Response:
        """A shortcut's or button's response URL: an ephemeral answer is shown to the clicker."""
        body = await request.json()
        self.action_responses.append({"path": request.path, **body})
        await self.changed()
        return web.Response(text="ok")

    async def _command_response(self, request: web.Request) -> web.Response:
        """A slash command's response URL: Slack shows the JSON posted here to the caller."""
        body = await request.json()
        self.command_responses.append({"url": str(request.url), "path": request.path, **body})
        await self.changed()
        return web.Response(text="ok")

    async def answer_to(self, fields: Mapping[str, str], limit_s: float = 10.0) -> dict[str, Any]:
        """The first answer posted to a slash command's response URL."""
        path = urlsplit(fields["response_url"]).path

        def posted() -> dict[str, Any] | None:
            return next((r for r in self.command_responses if r["path"] == path), None)

        answer: dict[str, Any] = await self.wait_for(posted, limit_s)
        return answer

    async def before_close(self) -> None:
        for socket in self.sockets:
            await socket.ws.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    # -- helpers for tests ---------------------------------------------------------------------
    def next_ts(self) -> str:
        """A message ts: synthetic and long past by default; with ``realtime_ts`` the posting
        time now (microseconds, strictly increasing), as Slack stamps a message just posted."""
        n = next(self._clock)
        if not self.realtime_ts:
            return f"{1_760_000_000 + n}.{n:06d}"
        micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def fail(self, method: str, *errors: str) -> None:
        """Answer the next calls of ``method`` with these errors, one each."""
        self.errors.setdefault(method, []).extend(errors)

    def answer(self, method: str, payload: dict[str, Any]) -> None:
        """Answer the next call of ``method`` with ``{"ok": true, **payload}`` whatever it asks."""
        self.answers.setdefault(method, []).append(payload)

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` as Slack does when a rate limit is hit:
        HTTP 429, ``Retry-After: <seconds>`` and ``{"ok": false, "error": "ratelimited"}``; the
        call has no effect."""
        self.rate_limits.setdefault(method, []).extend([retry_after] * times)

    def answer_raw(
        self, method: str, status: int, body: bytes, content_type: str = "text/plain", times: int = 1
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with this status and body instead of
        Slack's JSON (a 503 page from a proxy, an empty 500); the call has no effect."""
        self.raw_answers.setdefault(method, []).extend([(status, content_type, body)] * times)

    async def changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], limit_s: float = 15.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); returns its value."""
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(predicate)
        return predicate()

    def user_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = ALICE,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        channel_type: str = "channel",
    ) -> dict[str, Any]:
        """A message a person posts: stored (conversations.replies finds it) and returned as the
        ``message`` event Slack would deliver."""
        ts = self.next_ts()
        event: dict[str, Any] = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "team": TEAM_ID,
            "channel": channel,
            "channel_type": channel_type,
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "blocks": [{"type": "rich_text", "block_id": "b1", "elements": []}],
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
            event["parent_user_id"] = ALICE
        if files:
            event["files"] = files
            event["upload"] = False
            event["subtype"] = "file_share"
            event["display_as_bot"] = False
        self.messages.append(copy.deepcopy(event))
        return event

    @staticmethod
    def app_mention(message: Mapping[str, Any], *, with_files: bool = False) -> dict[str, Any]:
        """The ``app_mention`` copy of a message event (no channel_type, no subtype, and - as
        Slack sometimes does - no files unless asked)."""
        event = {k: copy.deepcopy(v) for k, v in message.items() if k not in ("channel_type", "subtype")}
        event["type"] = "app_mention"
        if not with_files:
            event.pop("files", None)
            event.pop("upload", None)
        return event

    @staticmethod
    def event_body(event: Mapping[str, Any]) -> dict[str, Any]:
        """The Events API ``event_callback`` envelope around ``event``."""
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True, "is_enterprise_install": False}
            ],
            "is_ext_shared_channel": False,
        }

    def host_file(
        self,
        name: str,
        data: bytes,
        mimetype: str = "image/png",
        *,
        content_type: str | None = None,
        url: str | None = None,
        redirect_to: str | None = None,
        connect: bool = False,
        status: int = 200,
        redirects: int = 0,
        redirect_status: int = 302,
        drop: bool = False,
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A file a user attaches. Returns the file object as it appears in the message event:
        full (``url_private`` on this fake, or ``url`` if given), or for a Slack Connect file only
        ``id`` and ``file_access: check_file_info`` (files.info has the rest). ``fields`` change
        the file object (None removes a field), e.g. ``mode: tombstone`` for a deleted file."""
        file_id = f"F{next(self._ids):08d}"
        private = url or f"{self.base_url}/files-pri/{TEAM_ID}-{file_id}/{name}"
        info = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1].lower(),
            "user": ALICE,
            "user_team": TEAM_ID,
            "editable": False,
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": True,
            "url_private": private,
            "url_private_download": private + "?download=1" if url is None else private,
        }
        for key, value in (fields or {}).items():
            if value is None:
                info.pop(key, None)
            else:
                info[key] = value
        kind = mimetype if content_type is None else content_type
        self.hosted[file_id] = HostedFile(
            info, data, kind, redirect_to, status, redirects, redirect_status, drop
        )
        if connect:
            return {"id": file_id, "mode": "hosted", "file_access": "check_file_info", "created": 0}
        return dict(info)

    # queries
    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Messages the bot posted in a thread, in order."""
        return [
            m
            for m in self.messages
            if m.get("bot_id") == BOT_ID and m["channel"] == channel and m.get("thread_ts") == thread_ts
        ]

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def ephemerals_in(self, channel: str, thread_ts: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.ephemerals
            if e["channel"] == channel and (thread_ts is None or e.get("thread_ts") == thread_ts)
        ]

    def block_actions(
        self,
        message: Mapping[str, Any],
        action_id: str,
        *,
        user: str = ALICE,
        option: str | None = None,
    ) -> dict[str, Any]:
        """The ``block_actions`` payload for clicking ``action_id`` on a bot message (a select:
        choosing the option whose label is ``option``)."""
        element = next(
            e
            for block in message.get("blocks") or []
            if block.get("type") == "actions"
            for e in block["elements"]
            if e["action_id"] == action_id
        )
        block_id = next(b.get("block_id") for b in message["blocks"] if element in b.get("elements", []))
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element["type"],
            "action_ts": f"{time.time():.6f}-{next(self._ids)}",
        }
        if element["type"] == "static_select":
            chosen = next(o for o in element["options"] if o["text"]["text"] == option)
            action["selected_option"] = chosen
        else:
            action["value"] = element["value"]
            action["text"] = element["text"]
        return {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": message["channel"],
                "is_ephemeral": False,
                "thread_ts": message.get("thread_ts"),
            },
            "trigger_id": f"{next(self._ids)}.{uuid.uuid4().hex[:8]}",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message["channel"], "name": "general"},
            "message": copy.deepcopy(dict(message)),
            "state": {"values": {}},
            "response_url": f"{self.base_url}/actions/response",
            "actions": [action],
        }

    def message_action(
        self, message: Mapping[str, Any], callback_id: str, *, user: str = ALICE
    ) -> dict[str, Any]:
        """The ``message_action`` payload of a message shortcut used on ``message``."""
        return {
            "type": "message_action",
            "token": "legacy-verification-token",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
            "channel": {"id": message["channel"], "name": "general"},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": f"{next(self._ids)}.{uuid.uuid4().hex[:8]}",
            "response_url": f"{self.base_url}/actions/response/{next(self._ids)}",
            "message_ts": message["ts"],
            "message": {
                k: copy.deepcopy(v) for k, v in message.items() if k not in ("channel", "channel_type")
            },
        }

    def view_submission(
        self, view: Mapping[str, Any], values: Mapping[str, Mapping[str, str]], *, user: str = ALICE
    ) -> dict[str, Any]:
        """The ``view_submission`` payload of a modal opened with views.open, ``values`` typed as
        {block_id: {action_id: text}} into its plain_text_input elements."""
        state = {
            block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
            for block, actions in values.items()
        }
        return {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "trigger_id": f"{next(self._ids)}.{uuid.uuid4().hex[:8]}",
            "view": {**copy.deepcopy(dict(view)), "state": {"values": state}, "hash": uuid.uuid4().hex[:12]},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def assistant_thread_started(self, channel: str, *, user: str = ALICE) -> dict[str, Any]:
        """A person opens a new thread in the app's AI assistant view (a DM with the app): Slack
        makes the thread's root itself (an ``assistant_app_thread`` message, not one the bot
        posted, so ``thread`` and ``messages`` leave it out) and sends ``assistant_thread_started``."""
        root = {"ts": self.next_ts()}
        return {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": user,
                "context": {"channel_id": "C0GENERAL", "team_id": TEAM_ID, "enterprise_id": None},
                "channel_id": channel,
                "thread_ts": root["ts"],
            },
            "event_ts": self.next_ts(),
        }

    @staticmethod
    def assistant_thread_context_changed(started: Mapping[str, Any], channel_id: str) -> dict[str, Any]:
        """The person looks at another channel beside the assistant thread ``started`` opened."""
        thread = copy.deepcopy(dict(started["assistant_thread"]))
        thread["context"] = {"channel_id": channel_id, "team_id": TEAM_ID, "enterprise_id": None}
        return {"type": "assistant_thread_context_changed", "assistant_thread": thread, "event_ts": "1.0"}

    def slash_command(self, command: str, text: str, channel: str, *, user: str = ALICE) -> dict[str, str]:
        """The fields of a slash command request; its ``response_url`` is on this fake (see
        ``answer_to``)."""
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"{self.base_url}/commands/response/{next(self._ids)}",
            "trigger_id": uuid.uuid4().hex,
        }

    # -- Socket Mode ---------------------------------------------------------------------------
    async def wait_for_socket(self, limit_s: float = 15.0) -> Socket:
        await self.wait_for(lambda: any(not s.ws.closed for s in self.sockets), limit_s)
        return next(s for s in reversed(self.sockets) if not s.ws.closed)

    async def send_envelope(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        limit_s: float = 10.0,
        socket: Socket | None = None,
    ) -> dict[str, Any]:
        """Send one envelope (``events_api``, ``slash_commands``, ``interactive``) down the open
        socket (or ``socket``: Slack spreads events over every open connection of an app) and
        return the app's acknowledgement."""
        socket = socket or await self.wait_for_socket()
        envelope_id = str(uuid.uuid4())
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        socket.acks[envelope_id] = ack
        await socket.ws.send_str(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else "",
                }
            )
        )
        async with asyncio.timeout(limit_s):
            return await ack

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        socket = Socket(ws)
        self.sockets.append(socket)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        await self.changed()
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = socket.acks.pop(str(data.get("envelope_id")), None)
            if future is not None and not future.done():
                future.set_result(data)
        await self.changed()
        return ws

    # -- file host -----------------------------------------------------------------------------
    async def _file(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        self.file_requests.append(FileRequest(request.path, auth))
        await self.changed()
        first, _, rest = request.match_info["path"].partition("/")
        hosted = self.hosted.get(first.rsplit("-", 1)[-1])
        hop = int(rest.removeprefix("hop")) if rest.startswith("hop") else 0
        # Hops of a redirect chain are like signed download links: they need no token.
        if hosted is not None and hop:
            return await self._redirect_or_serve(request, hosted, hop)
        if auth != f"Bearer {self.bot_token}":
            return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
        if hosted is None:
            return web.Response(status=404, text="file not found")
        if hosted.redirect_to:
            raise web.HTTPFound(hosted.redirect_to)
        return await self._redirect_or_serve(request, hosted, 0)

    async def _redirect_or_serve(
        self, request: web.Request, hosted: HostedFile, hop: int
    ) -> web.StreamResponse:
        if hop < hosted.redirects:
            # Relative, so the client resolves it against the URL it asked for.
            return web.Response(status=hosted.redirect_status, headers={"Location": f"hop{hop + 1}"})
        if hosted.status != 200:
            return web.Response(status=hosted.status, text=f"status {hosted.status}")
        if hosted.drop or not hosted.content_type:
            return await _raw_response(request, hosted)
        return web.Response(body=hosted.data, headers={"Content-Type": hosted.content_type})

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload.data = await request.read()
        return web.Response(text=f"OK - {len(upload.data)}")

    # -- Web API -------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        token = params.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        call = ApiCall(method, params, token)
        self.calls.append(call)
        try:
            if method == "apps.connections.open":
                if token != self.app_token:
                    return _error("invalid_auth" if token else "not_authed")
            elif token != self.bot_token:
                return _error("invalid_auth" if token else "not_authed")
            if self.raw_answers.get(method):
                call.raw_answered = True
                status, content_type, body = self.raw_answers[method].pop(0)
                return web.Response(status=status, body=body, content_type=content_type)
            if self.rate_limits.get(method):
                call.rate_limited = True
                retry_after = self.rate_limits[method].pop(0)
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(retry_after)},
                )
            if self.errors.get(method):
                return _error(self.errors[method].pop(0))
            if self.answers.get(method):
                return web.json_response({"ok": True, **self.answers[method].pop(0)})
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return _error("unknown_method")
            try:
                return web.json_response({"ok": True, **await handler(params)})
            except SlackError as exc:
                return _error(exc.code)
        finally:
            await self.changed()

    async def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Workspace",
            "user": "nanobanana",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    async def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user") or "")
        if not user.startswith("U"):
            raise SlackError("user_not_found")
        admin = user in self.workspace_admins
        return {
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": user.lower(),
                "is_admin": admin,
                "is_owner": False,
            }
        }

    async def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4()}&app_id={APP_ID}"}

    def _post(self, channel: str, **fields: Any) -> dict[str, Any]:
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "channel": channel,
            "ts": self.next_ts(),
            **{k: v for k, v in fields.items() if v is not None},
        }
        self.messages.append(message)
        return message

    async def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel"):
            raise SlackError("channel_not_found")
        blocks = _json_field(p.get("blocks"))
        if not p.get("text") and not blocks:
            raise SlackError("no_text")
        message = self._post(
            p["channel"], text=p.get("text", ""), blocks=blocks, thread_ts=p.get("thread_ts") or None
        )
        return {"channel": p["channel"], "ts": message["ts"], "message": message}

    async def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages:
            if message["channel"] == p.get("channel") and message["ts"] == p.get("ts"):
                message["text"] = p.get("text", message.get("text"))
                message["blocks"] = _json_field(p.get("blocks"))
                message["edited"] = {"user": BOT_USER_ID, "ts": self.next_ts()}
                return {"channel": p["channel"], "ts": p["ts"], "text": message["text"]}
        raise SlackError("message_not_found")

    async def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = self.next_ts()
        ephemeral = {
            "channel": p.get("channel"),
            "user": p.get("user"),
            "text": p.get("text"),
            "thread_ts": p.get("thread_ts"),
            "ts": ts,
        }
        # Slack shows an ephemeral in a thread only once the thread exists (has a reply); before
        # that it answers ok and shows it to no one.
        thread_ts = p.get("thread_ts")
        if thread_ts and not self._has_replies(str(p.get("channel")), str(thread_ts)):
            self.dropped_ephemerals.append(ephemeral)
        else:
            self.ephemerals.append(ephemeral)
        return {"message_ts": ts}

    def _has_replies(self, channel: str, thread_ts: str) -> bool:
        return any(
            m["channel"] == channel and m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
            for m in self.messages
        )

    async def _m_reactions_add(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (str(p.get("channel")), str(p.get("timestamp")))
        names = self.reactions.setdefault(key, set())
        if p.get("name") in names:
            raise SlackError("already_reacted")
        names.add(str(p.get("name")))
        self.reaction_log.append(("add", *key, str(p.get("name"))))
        return {}

    async def _m_reactions_remove(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (str(p.get("channel")), str(p.get("timestamp")))
        names = self.reactions.setdefault(key, set())
        if p.get("name") not in names:
            raise SlackError("no_reaction")
        names.discard(str(p.get("name")))
        self.reaction_log.append(("remove", *key, str(p.get("name"))))
        return {}

    async def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        alt_txt = p.get("alt_txt")
        if alt_txt is not None and len(str(alt_txt)) > ALT_TXT_LIMIT:
            raise SlackError("alt_txt_too_large")
        file_id = f"FUP{next(self._ids):06d}"
        upload = Upload(file_id, str(p.get("filename")), int(p.get("length") or 0), alt_txt=alt_txt)
        self.uploads[file_id] = upload
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    async def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        entries = _json_field(p.get("files")) or []
        uploads = []
        for entry in entries:
            upload = self.uploads.get(entry.get("id"))
            if upload is None or len(upload.data) != upload.length:
                raise SlackError("file_not_found")
            upload.title = entry.get("title") or upload.filename
            uploads.append(upload)
        channel = p.get("channel_id")
        if channel:
            message = self._post(
                channel,
                subtype="file_share",
                text=p.get("initial_comment") or "",
                thread_ts=p.get("thread_ts") or None,
                files=[self._upload_info(u, shares=False) for u in uploads],
                upload=False,
            )
            for upload in uploads:
                upload.channel, upload.thread_ts, upload.share_ts = channel, p.get("thread_ts"), message["ts"]
        # Like Slack: the answer comes before the share, so "shares" is still empty here.
        return {"files": [self._upload_info(u, shares=False) for u in uploads]}

    def _upload_info(self, upload: Upload, *, shares: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": upload.file_id,
            "name": upload.filename,
            "title": upload.title or upload.filename,
            "mimetype": "image/png" if upload.filename.endswith(".png") else "",
            "size": len(upload.data),
            "mode": "hosted",
            "user": BOT_USER_ID,
            "url_private": f"{self.base_url}/files-pri/{TEAM_ID}-{upload.file_id}/{upload.filename}",
            "shares": {},
        }
        if shares and upload.channel and upload.share_ts:
            entry = {"ts": upload.share_ts, "channel_name": "general", "team_id": TEAM_ID}
            if upload.thread_ts:
                entry["thread_ts"] = upload.thread_ts
            info["shares"] = {"public": {upload.channel: [entry]}}
        return info

    async def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = str(p.get("file"))
        if file_id in self.hosted:
            return {"file": dict(self.hosted[file_id].info)}
        upload = self.uploads.get(file_id)
        if upload is None:
            raise SlackError("file_not_found")
        upload.info_calls += 1
        return {"file": self._upload_info(upload, shares=upload.info_calls > self.share_after_info_calls)}

    async def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, root = p.get("channel"), str(p.get("ts"))
        oldest, latest = p.get("oldest"), p.get("latest")
        inclusive = str(p.get("inclusive")) in ("1", "true", "True")
        found = []
        for m in self.messages:
            if m["channel"] != channel or not (m["ts"] == root or m.get("thread_ts") == root):
                continue
            # The parent always comes first; replies are filtered by oldest/latest.
            if m["ts"] == root or _within(float(m["ts"]), oldest, latest, inclusive):
                found.append(copy.deepcopy(m))
        if not found:
            raise SlackError("thread_not_found")
        return {"messages": found, "has_more": False}

    async def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        view = _json_field(p.get("view"))
        if not p.get("trigger_id"):
            raise SlackError("invalid_trigger_id")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        if len(str((view.get("title") or {}).get("text", ""))) > 24:
            raise SlackError("invalid_arguments")  # Slack: a modal's title is at most 24 characters
        if len(str(view.get("private_metadata") or "")) > 3000:
            raise SlackError("invalid_arguments")
        opened = {**view, "id": f"V{next(self._ids):08d}", "team_id": TEAM_ID, "app_id": APP_ID}
        self.views.append(opened)
        return {"view": opened}

    def _assistant_thread(self, p: dict[str, Any]) -> None:
        if not p.get("channel_id") or not p.get("thread_ts"):
            raise SlackError("invalid_arguments")

    async def _m_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        self._assistant_thread(p)
        if "status" not in p:
            raise SlackError("invalid_arguments")
        return {}

    async def _m_assistant_threads_setTitle(self, p: dict[str, Any]) -> dict[str, Any]:
        self._assistant_thread(p)
        if not p.get("title"):
            raise SlackError("invalid_arguments")
        return {}

    async def _m_assistant_threads_setSuggestedPrompts(self, p: dict[str, Any]) -> dict[str, Any]:
        self._assistant_thread(p)
        prompts = _json_field(p.get("prompts"))
        # Slack shows at most four, each a title and the message it sends.
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= 4:
            raise SlackError("invalid_arguments")
        if not all(isinstance(x, dict) and x.get("title") and x.get("message") for x in prompts):
            raise SlackError("invalid_arguments")
        return {}


def _within(ts: float, oldest: Any, latest: Any, inclusive: bool) -> bool:
    if oldest is not None and (ts < float(oldest) or (ts == float(oldest) and not inclusive)):
        return False
    return latest is None or ts < float(latest) or (ts == float(latest) and inclusive)


class SlackError(Exception):
    """A Web API method's ``{"ok": false, "error": code}`` answer."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def _raw_response(request: web.Request, hosted: HostedFile) -> web.StreamResponse:
    """Write the answer by hand: aiohttp always adds a Content-Type, and cannot cut a body short.
    With ``drop`` the connection closes halfway through the promised Content-Length."""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(hosted.data)}\r\nConnection: close\r\n"
    if hosted.content_type:
        head += f"Content-Type: {hosted.content_type}\r\n"
    body = hosted.data[: len(hosted.data) // 2] if hosted.drop else hosted.data
    transport = request.transport
    assert transport is not None
    transport.write(head.encode() + b"\r\n" + body)
    await asyncio.sleep(0.05)  # let the bytes go out before the connection closes
    transport.close()
    raise asyncio.CancelledError  # the connection is gone: aiohttp must not answer again


def _error(code: str) -> web.Response:
    return web.json_response({"ok": False, "error": code})


def _json_field(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value else None
    return value


class ForeignHost(LocalServer):
    """Some other web server (not Slack): records who called it and what headers they sent."""

    def __init__(
        self, body: bytes = SIGN_IN_PAGE.encode(), content_type: str = "text/html", host: str = "127.0.0.1"
    ) -> None:
        self.body = body
        self.content_type = content_type
        # Another loopback address (127.0.0.2) makes it a different host, not just another port.
        self.host = host
        self.requests: list[FileRequest] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._any)
        return app

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    async def _any(self, request: web.Request) -> web.Response:
        self.requests.append(FileRequest(request.path, request.headers.get("Authorization")))
        return web.Response(body=self.body, content_type=self.content_type)


class SlackSender:
    """Sends what Slack sends to an HTTP-mode app: signed requests to ``POST /slack/events``."""

    def __init__(self, url: str, signing_secret: str = SIGNING_SECRET) -> None:
        self.url = url
        self._verifier = SignatureVerifier(signing_secret)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlackSender:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> tuple[int, str]:
        assert self._session is not None
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or self._verifier.generate_signature(timestamp=stamp, body=body),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        async with self._session.post(self.url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def event(self, body: Mapping[str, Any], **kw: Any) -> tuple[int, str]:
        return await self.post(json.dumps(body), "application/json", **kw)

    async def command(self, fields: Mapping[str, str], **kw: Any) -> tuple[int, str]:
        return await self.post(urlencode(fields), "application/x-www-form-urlencoded", **kw)

    async def action(self, payload: Mapping[str, Any], **kw: Any) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded", **kw)
