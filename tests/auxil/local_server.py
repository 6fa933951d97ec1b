"""The lifecycle every fake shares: serve an aiohttp app on a loopback port, close it, async with."""

from __future__ import annotations

from typing import Self

from aiohttp import web


class LocalServer:
    """Base of the fakes: a subclass builds its app in ``app()``; ``start`` serves it on ``host``
    (127.0.0.1 by default) at ``port`` (0 = a free one, read back once listening)."""

    host: str = "127.0.0.1"
    port: int = 0
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> Self:
        # handler_cancellation: a client that hangs up (a timeout test) cancels its handler.
        self._runner = web.AppRunner(
            self.app(), handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def before_close(self) -> None:
        """Close long-lived connections (websockets) so cleanup does not wait for them."""

    async def close(self) -> None:
        await self.before_close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
