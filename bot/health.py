"""GET /healthz: 200 while the process is alive. GET /readyz: 200 when it is ready for work (its
platforms connected, its database answering, its model checked), else 503 naming what is not. The
listener on PORT those answer on, and the security headers of every page served there."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from bot.ports import Lifecycle, PlatformAdapter, PlatformError

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A load balancer gives a check a few seconds; a part that has not answered by then is down.
CHECK_TIMEOUT_S = 2.0
DATABASE = "database"
MODEL = "model"


class Health:
    """Checks every platform this process serves and its database, all at once, each within a
    limit, and whether the model check passed (``model_checked``; no such part when None)."""

    def __init__(
        self,
        store: Lifecycle,
        platforms: Sequence[PlatformAdapter],
        timeout_s: float = CHECK_TIMEOUT_S,
        model_checked: Callable[[], bool] | None = None,
    ) -> None:
        self._store = store
        self._platforms = list(platforms)
        self._timeout_s = timeout_s
        self._model_checked = model_checked
        # Checks given up on that have not ended yet, by part: while one lingers (holding a
        # pooled connection, say), that part is down and no second check is started beside it,
        # however often a load balancer asks.
        self._lingering: dict[str, asyncio.Future[bool]] = {}

    async def _database_up(self) -> bool:
        await self._store.ping()
        return True

    async def _within_limit(self, name: str, check: asyncio.Future[bool] | None) -> bool:
        if check is None:
            log.warning("health check failed", extra={"part": name, "error": "previous check still running"})
            return False
        # asyncio.wait rather than a timeout around ``await check``: a cancelled check may take
        # long to end (asyncpg keeps a query cut off on a silent connection until it gives up on
        # that connection, about a minute), and the answer must not wait for it.
        await asyncio.wait({check}, timeout=self._timeout_s)
        if not check.done():
            check.cancel()
            check.add_done_callback(_retrieved)
            self._lingering[name] = check
            log.warning("health check failed", extra={"part": name, "error": "TimeoutError"})
            return False
        if check.cancelled() or check.exception() is not None:  # any failure means that part is down
            error = "CancelledError" if check.cancelled() else type(check.exception()).__name__
            log.warning("health check failed", extra={"part": name, "error": error})
            return False
        return check.result()

    async def _model_up(self) -> bool:
        return self._model_checked is not None and self._model_checked()

    async def check(self) -> dict[str, bool]:
        """Each part's name and whether it is up: the platforms by name, ``database``, ``model``."""
        starts: dict[str, Callable[[], Awaitable[bool]]] = {p.name: p.connected for p in self._platforms}
        starts[DATABASE] = self._database_up
        if self._model_checked is not None:
            starts[MODEL] = self._model_up
        parts = {name: self._start(name, start) for name, start in starts.items()}
        results = await asyncio.gather(*(self._within_limit(n, c) for n, c in parts.items()))
        return dict(zip(parts, results, strict=True))

    def _start(self, name: str, start: Callable[[], Awaitable[bool]]) -> asyncio.Future[bool] | None:
        """A new check of ``name``, or None while the last one given up on has not ended."""
        lingering = self._lingering.get(name)
        if lingering is not None and not lingering.done():
            return None
        self._lingering.pop(name, None)
        return asyncio.ensure_future(start())

    def routes(self) -> dict[str, Handler]:
        """``/healthz`` (alive) and ``/readyz`` (ready), for whichever server listens on PORT."""
        return {HEALTH_PATH: self.alive, READY_PATH: self.handle}

    async def alive(self, _request: web.Request) -> web.Response:
        """Liveness: answering at all is the proof (the event loop runs); nothing else is asked,
        so a database or platform outage never gets a live process restarted."""
        return web.json_response({"ok": True})

    async def handle(self, _request: web.Request) -> web.Response:
        """Readiness: 200 with every part up, else 503 naming the parts that are down."""
        parts = await self.check()
        down = [name for name, up in parts.items() if not up]
        body = {"ok": not down, "down": down, "parts": {n: "up" if up else "down" for n, up in parts.items()}}
        return web.json_response(body, status=503 if down else 200)


def security_headers(content_security_policy: str) -> dict[str, str]:
    """The headers every page served on PORT carries (the dashboard's, the region editor's): its
    Content-Security-Policy, never framed, never sniffed, never cached, never named in a Referer
    (an editor link's token is in its address), and not embedded by another site."""
    return {
        "Content-Security-Policy": content_security_policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _retrieved(check: asyncio.Future[bool]) -> None:
    """Read an abandoned check's outcome, so asyncio does not log it as never retrieved."""
    if not check.cancelled():
        check.exception()


class HealthServer:
    """A tiny HTTP server for /healthz, /readyz and ``extra`` routes (/metrics), for processes
    that serve no Slack events on PORT; ``routes`` install more on it (the region editor's,
    ``bot.editing.web.EditorSite.install``, with PUBLIC_URL)."""

    def __init__(
        self,
        health: Health,
        port: int,
        extra: Mapping[str, Handler] | None = None,
        routes: Sequence[Callable[[web.Application], None]] = (),
    ) -> None:
        self._health = health
        self._port = port
        self._routes = {**health.routes(), **(extra or {})}
        self._installs = tuple(routes)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        for path, handler in self._routes.items():
            app.router.add_get(path, handler)
        for install in self._installs:
            install(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            # All IPv4 interfaces, like the Slack events server.
            await web.TCPSite(runner, host="0.0.0.0", port=self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise PlatformError(
                f"Cannot serve {HEALTH_PATH} on port {self._port} ({_reason(exc)}); set PORT to a free port."
            ) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("health check listening", extra={"port": self.port, "paths": sorted(self._routes)})

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


def _reason(exc: OSError) -> str:
    # asyncio re-raises a failed bind with the address in the text; the errno says it plainly.
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)
