"""The dashboard's routes on the bot's HTTP listener, installed only with ADMIN_TOKEN: the page or
the sign-in form at ``/admin``, sign-in and sign-out, thumbnails, and Forget with a confirmation.
Every response carries ``SECURITY_HEADERS`` (a strict Content-Security-Policy: nothing inline but
styles from the bot, no script, nothing from another host)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from zoneinfo import ZoneInfo

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from bot.admin import page
from bot.admin.figures import gather
from bot.admin.sessions import COOKIE, SESSION_S, AdminSessions, Session, SignInThrottle
from bot.health import security_headers
from bot.images.checks import ensure_plugins
from bot.limits.quotas import LimitPolicy
from bot.text import admin_words as words
from bot.vocabulary import ConversationKey
from storage.errors import StoreError
from storage.protocol import Store

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = security_headers(CONTENT_SECURITY_POLICY)
THUMBNAIL_SIDE = 192
_KEY_FIELDS = ("platform", "workspace", "channel", "thread")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Forget = Callable[[ConversationKey], Awaitable[int]]
Parts = Callable[[], Awaitable[Mapping[str, bool]]]


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _secured(handler: Handler) -> Handler:
    async def secured(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except StoreError as exc:
            log.warning("dashboard could not read the database", extra={"error": type(exc).__name__})
            response = _html(page.sentence_page(words.DATABASE_AWAY), 503)
        response.headers.update(SECURITY_HEADERS)
        return response

    return secured


class AdminSite:
    """The dashboard; ``install`` adds its routes to the application on PORT."""

    def __init__(
        self,
        sessions: AdminSessions,
        store: Store,
        forget: Forget,
        parts: Parts,
        *,
        policy: LimitPolicy,
        zone: ZoneInfo,
        lease_s: float,
        https: bool = False,
        throttle: SignInThrottle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._forget = forget
        self._parts = parts
        self._policy = policy
        self._zone = zone
        self._lease_s = lease_s
        self._https = https
        self._throttle = throttle if throttle is not None else SignInThrottle()
        self._clock = clock
        self._css = resources.files("bot.admin").joinpath("static", "admin.css").read_bytes()

    def install(self, app: web.Application) -> None:
        add, path = app.router, page.ADMIN_PATH
        add.add_get(path, _secured(self._dashboard))
        add.add_get(f"{path}/admin.css", _secured(self._stylesheet))
        add.add_post(f"{path}/sign-in", _secured(self._sign_in))
        add.add_post(f"{path}/sign-out", _secured(self._sign_out))
        add.add_get(f"{path}/image/{{sha256}}", _secured(self._image))
        add.add_get(f"{path}/forget", _secured(self._confirm_forget))
        add.add_post(f"{path}/forget", _secured(self._do_forget))

    async def _session(self, request: web.Request) -> Session | None:
        return await self._sessions.check(request.cookies.get(COOKIE))

    async def _stylesheet(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._css, content_type="text/css", charset="utf-8")

    async def _dashboard(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        if session is None:
            return _html(page.sign_in_page())
        figures = await gather(
            self._store, self._policy, self._zone, self._clock(), self._parts, self._lease_s
        )
        turns = request.query.get("turns", "")
        forgotten = request.query.get("notice") == "forgotten" and turns.isdigit()
        said = words.forgotten(int(turns)) if forgotten else ""
        return _html(page.dashboard_page(figures, await self._sessions.form_token(session), said))

    async def _sign_in(self, request: web.Request) -> web.StreamResponse:
        address = request.remote or "?"
        await self._throttle.admit(address)
        form = await request.post()
        offered = form.get("token")
        if not isinstance(offered, str) or not self._sessions.token_matches(offered):
            log.warning("dashboard sign-in refused", extra={"failures": self._throttle.failures(address)})
            return _html(page.sign_in_page(words.WRONG_TOKEN), 401)
        self._throttle.succeeded(address)
        log.info("dashboard sign-in")
        response = _see_other(page.ADMIN_PATH)
        response.set_cookie(
            COOKIE,
            await self._sessions.issue(),
            max_age=SESSION_S,
            path=page.ADMIN_PATH,
            httponly=True,
            secure=self._https or request.secure,
            samesite="Strict",
        )
        return response

    async def _checked_form(self, request: web.Request) -> tuple[Session, Mapping[str, str]] | web.Response:
        """The session and the posted fields, or the page refusing them (403)."""
        session = await self._session(request)
        if session is None:
            return _html(page.sentence_page(words.SIGN_IN_FIRST), 403)
        posted = await request.post()
        fields = {name: value for name, value in posted.items() if isinstance(value, str)}
        if not await self._sessions.form_token_matches(session, fields.get("form", "")):
            return _html(page.sentence_page(words.STALE_FORM), 403)
        return session, fields

    async def _sign_out(self, request: web.Request) -> web.StreamResponse:
        checked = await self._checked_form(request)
        if isinstance(checked, web.Response):
            return checked
        await self._sessions.end(checked[0])
        response = _html(page.sentence_page(words.SIGNED_OUT))
        response.del_cookie(COOKIE, path=page.ADMIN_PATH)
        return response

    async def _image(self, request: web.Request) -> web.StreamResponse:
        if await self._session(request) is None:
            return _html(page.sentence_page(words.SIGN_IN_FIRST), 403)
        sha = request.match_info["sha256"]
        data = (await self._store.load_blobs([sha])).get(sha)
        thumbnail = await asyncio.to_thread(_thumbnail, data) if data is not None else None
        if thumbnail is None:
            return _html(page.sentence_page(words.IMAGE_GONE), 404)
        return web.Response(body=thumbnail, content_type="image/png", headers={"Cache-Control": "no-store"})

    async def _confirm_forget(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        if session is None:
            return _html(page.sign_in_page(words.SIGN_IN_FIRST), 403)
        key = _key_of(request.query)
        if key is None:
            return _html(page.sentence_page(words.STALE_FORM), 400)
        return _html(page.forget_page(key, await self._sessions.form_token(session)))

    async def _do_forget(self, request: web.Request) -> web.StreamResponse:
        checked = await self._checked_form(request)
        if isinstance(checked, web.Response):
            return checked
        key = _key_of(checked[1])
        if key is None:
            return _html(page.sentence_page(words.STALE_FORM), 400)
        turns = await self._forget(key)
        log.info(
            "conversation forgotten from the dashboard", extra={"conversation": str(key), "turns": turns}
        )
        return _see_other(f"{page.ADMIN_PATH}?notice=forgotten&turns={turns}")


def _key_of(fields: Mapping[str, str]) -> ConversationKey | None:
    values = [fields.get(name, "") for name in _KEY_FIELDS]
    if not all(isinstance(v, str) for v in values) or not values[0] or not values[3]:
        return None
    return ConversationKey(*values)


def _thumbnail(data: bytes) -> bytes | None:
    """A small PNG of a stored image (off the event loop); None when it is not one."""
    ensure_plugins()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            out = io.BytesIO()
            image.convert("RGB").save(out, "PNG")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return out.getvalue()
