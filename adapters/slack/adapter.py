"""Slack adapter: connects the Bolt app (Socket Mode or HTTP mode), runs it, and shuts it down."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.internals import parse_body
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import slack_error_code
from adapters.slack.files import SlackFiles
from adapters.slack.handlers import PLATFORM, SlackHandlers
from adapters.slack.shapes import ShapeCheckedApp
from adapters.slack.words import APP_TOKEN_REJECTED, BOT_TOKEN_REJECTED
from bot.config import Config, reveal
from bot.entry.service import ConversationService
from bot.observing.null import NOBODY
from bot.ports import Observer, PlatformError, ReplySink
from bot.vocabulary import ConversationKey

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
_STAMP = re.compile(r"[+-]?[0-9]{1,19}")
_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_allowed_token_type",
    }
)


class SlackAdapter:
    """Runs the Bolt app in Socket Mode (SLACK_APP_TOKEN) or HTTP mode (SLACK_SIGNING_SECRET)."""

    name = PLATFORM

    def __init__(
        self,
        config: Config,
        service: ConversationService,
        *,
        mention_grace_s: float = 3.0,
        share_wait_s: float = 4.0,
    ) -> None:
        self._config = config
        self._service = service
        self._mention_grace_s = mention_grace_s
        self._share_wait_s = share_wait_s
        self._stop = asyncio.Event()
        self._closing = False
        self.ready = asyncio.Event()
        self.http_port: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None
        self._handlers: SlackHandlers | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        # The process's /healthz, /readyz and /metrics, served on the events server in HTTP mode
        # (one server per port); set by the runtime.
        self.http_routes: dict[str, Handler] = {}
        # Routes installed whole on that server: the region editor's, with PUBLIC_URL.
        self.http_installs: list[Callable[[web.Application], None]] = []
        # Told of each failed Web API call, by method; set by the runtime.
        self.observer: Observer = NOBODY

    def thread_sinks(self) -> tuple[str, Callable[[ConversationKey, str], ReplySink | None]]:
        """Where a region edit of a Slack conversation is posted: its thread."""

        def sink(key: ConversationKey, person: str) -> ReplySink | None:
            return self._handlers.thread_sink(key, person) if self._handlers is not None else None

        return PLATFORM, sink

    @property
    def socket_mode(self) -> bool:
        return self._config.slack.socket_mode

    @property
    def serves_http(self) -> bool:
        """HTTP mode listens on PORT; /healthz, /readyz and /metrics then belong on that server."""
        return not self.socket_mode

    async def connected(self) -> bool:
        """HTTP mode: listening. Socket Mode: the websocket is open and answering pings."""
        if not self.ready.is_set():
            return False
        socket = self._socket
        return socket is None or await socket.client.is_connected()

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        api_url = self._config.slack.api_url
        api_url = api_url if api_url.endswith("/") else api_url + "/"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=120), cookie_jar=aiohttp.DummyCookieJar()
        )
        try:
            self._client = _CountingWebClient(
                lambda method: self.observer.platform_error(PLATFORM, method),
                token=reveal(self._config.slack.bot_token),
                base_url=api_url,
                session=self._session,
                retry_handlers=_retry_handlers(),
            )
            team_id, bot_user_id = await self._authenticate(api_url)
            files = SlackFiles(
                session=self._session,
                client=self._client,
                token=reveal(self._config.slack.bot_token),
                api_url=api_url,
                max_bytes=self._config.images.max_attachment_bytes,
            )
            self._handlers = SlackHandlers(
                service=self._service,
                client=self._client,
                files=files,
                team_id=team_id,
                bot_user_id=bot_user_id,
                mention_grace_s=self._mention_grace_s,
                share_wait_s=self._share_wait_s,
            )
            app = self._build_app(self._handlers)
            if self.socket_mode:
                await self._start_socket_mode(app)
            else:
                await self._start_http(app)
            if not self._closing:
                self.ready.set()
                await self._handlers.announce_interrupted()
            log.info(
                "slack connected",
                extra={
                    "mode": "socket" if self.socket_mode else "http",
                    "team": team_id,
                    "bot_user": bot_user_id,
                    "port": self.http_port,
                },
            )
            await self._stop.wait()
            # Turns already taken finish and post their replies before the client goes away.
            await self._handlers.finish()
        finally:
            self.ready.clear()
            await self._stop_intake()
            await self._session.close()

    async def announce_interrupted(self) -> None:
        if self._handlers is not None and self.ready.is_set():
            await self._handlers.announce_interrupted()

    async def close(self) -> None:
        """Stop taking events (disconnect the socket / stop listening); turns in flight finish."""
        self._closing = True
        self.ready.clear()
        if self._handlers is not None:
            self._handlers.stop_taking_turns()
        await self._stop_intake()
        self._stop.set()

    async def _stop_intake(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close_async()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _authenticate(self, api_url: str) -> tuple[str, str]:
        """The team and bot user the token belongs to (auth.test); a bad token stops the bot."""
        assert self._client is not None
        try:
            auth = await self._client.auth_test()
        except SlackApiError as exc:
            error = slack_error_code(exc)
            if error in _TOKEN_ERRORS:
                raise PlatformError(BOT_TOKEN_REJECTED) from None
            raise PlatformError(
                f"Slack refused auth.test ({error}); check SLACK_BOT_TOKEN and the app."
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PlatformError(
                f"Cannot reach the Slack API at {api_url} ({type(exc).__name__}); "
                "check SLACK_API_URL and the network."
            ) from None
        return str(auth.get("team_id") or ""), str(auth.get("user_id") or "")

    async def _start_socket_mode(self, app: AsyncApp) -> None:
        assert self._client is not None
        token = reveal(self._config.slack.app_token)
        try:
            opened = await self._client.apps_connections_open(app_token=token)
        except SlackApiError as exc:
            error = slack_error_code(exc)
            if error in _TOKEN_ERRORS:
                raise PlatformError(APP_TOKEN_REJECTED) from None
            raise PlatformError(
                f"Slack refused Socket Mode ({error}); enable Socket Mode for the app."
            ) from None
        handler = AsyncSocketModeHandler(
            app, token, web_client=self._client, logger=logging.getLogger("slack_sdk")
        )
        # The URL just issued proved the app token; the client connects to it instead of asking
        # again (a bad app token would otherwise make it retry forever).
        handler.client.wss_uri = opened["url"]
        self._socket = handler
        await handler.connect_async()

    async def _start_http(self, app: AsyncApp) -> None:
        web_app = app.web_app(path=EVENTS_PATH, port=self._config.http.port)
        web_app.middlewares.append(_refuse_unreadable(reveal(self._config.slack.signing_secret)))
        for path, handler in {"/healthz": self._healthz, **self.http_routes}.items():
            web_app.router.add_get(path, handler)
        for install in self.http_installs:
            install(web_app)
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        # All IPv4 interfaces, like Bolt's own server (host=None would bind IPv4 and IPv6 to
        # different ports when PORT=0).
        site = web.TCPSite(runner, host="0.0.0.0", port=self._config.http.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise PlatformError(
                f"Cannot listen for Slack events on port {self._config.http.port} ({exc.strerror or exc}); "
                "set PORT to a free port."
            ) from None
        self._runner = runner
        self.http_port = int(runner.addresses[0][1])

    async def _healthz(self, _request: web.Request) -> web.Response:
        if self.ready.is_set():
            return web.json_response({"ok": True, "platform": PLATFORM})
        return web.json_response({"ok": False}, status=503)

    # -- Bolt wiring ---------------------------------------------------------------------------
    def _build_app(self, handlers: SlackHandlers) -> AsyncApp:
        app = ShapeCheckedApp(
            client=self._client,
            # Socket Mode needs no signing secret; HTTP mode verifies every request with it.
            signing_secret=reveal(self._config.slack.signing_secret),
            request_verification_enabled=not self.socket_mode,
            # Acknowledge first, work after: Slack wants a 200 within 3 s or it retries.
            process_before_response=False,
            logger=_bolt_logger(),
            name="nano-banana-bot",
        )
        handlers.register(app)
        return app


def _refuse_unreadable(signing_secret: str) -> Middleware:
    """Bolt parses a request body before it checks the signature, and a request it cannot parse
    (a body that is not UTF-8, cut-off JSON, JSON that is not an object, a timestamp header that
    is not a number) fails inside it with a 500 and a logged traceback, signed or not. Refuse
    those first: 401 when the signature does not hold, as Bolt would, else 400. Everything Bolt
    can read goes to it as is."""
    verifier = SignatureVerifier(signing_secret)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != EVENTS_PATH:
            return await handler(request)
        raw = await request.read()  # aiohttp keeps the body; Bolt reads it again
        try:
            body: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            body = None  # Slack signs and sends UTF-8 text; this is no Slack request
        if body is not None and _bolt_can_read(body, request):
            return await handler(request)
        signed = False
        if body is not None and _stamp_is_a_number(request):
            signed = verifier.is_valid_request(body, dict(request.headers))
        log.warning("refused an unreadable Slack request", extra={"signed": signed, "bytes": len(raw)})
        if not signed:
            return web.json_response({"error": "invalid request"}, status=401)
        return web.json_response({"error": "unreadable request"}, status=400)

    return middleware


def _bolt_can_read(body: str, request: web.Request) -> bool:
    try:
        parsed = parse_body(body, request.content_type)
    except ValueError:
        return False
    if not isinstance(parsed, dict):
        return False
    if parsed.get("ssl_check") == "1":  # Slack's SSL check: Bolt answers it without a signature
        return True
    return "X-Slack-Request-Timestamp" not in request.headers or _stamp_is_a_number(request)


def _stamp_is_a_number(request: web.Request) -> bool:
    # ASCII digits only: str.isdigit() takes "²", which int() (inside the verifier) refuses.
    return _STAMP.fullmatch(request.headers.get("X-Slack-Request-Timestamp", "").strip()) is not None


class _ClientWinsNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the client we
    pass (built from the configuration, with SLACK_API_URL) wins over it; that is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.app")
    if not any(isinstance(f, _ClientWinsNotice) for f in logger.filters):
        logger.addFilter(_ClientWinsNotice())
    return logger


def _retry_handlers() -> list[AsyncConnectionErrorRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(),
        AsyncRateLimitErrorRetryHandler(max_retry_count=2),
        # A 500/503 (from Slack or a proxy in front of it) is retried once, after a short
        # backoff; then the sink says what failed.
        AsyncServerErrorRetryHandler(),
    ]


class _CountingWebClient(AsyncWebClient):
    """The Web API client, telling ``failed`` the method of each call that ends in an error
    (after the retry handlers had their turn)."""

    def __init__(self, failed: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._failed = failed

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            return await super().api_call(api_method, **kwargs)
        except Exception:
            self._failed(api_method)
            raise
