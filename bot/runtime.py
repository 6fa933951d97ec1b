"""Builds the store, engine and service once, runs the adapters, and shuts down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot.config import Config
from bot.gemini import GeminiEngine
from bot.logs import configure_logging
from bot.service import ConversationService
from storage.errors import StoreError
from storage.sqlite_store import SqliteStore

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_S = 8.0


async def run(config: Config, *, console: bool) -> int:
    """Run until the adapters finish or SIGTERM/SIGINT; returns the exit code."""
    # The console owns the terminal, so only warnings reach it there.
    configure_logging("WARNING" if console else config.log_level, config.secrets())
    store = SqliteStore(config.database_path)
    try:
        await store.open()
    except (StoreError, OSError) as exc:
        print(f"error: cannot open the database at {config.database_path}: {exc}", file=sys.stderr)
        return 1
    engine = GeminiEngine(
        api_key=config.gemini_api_key or "",
        model=config.gemini_model,
        base_url=config.gemini_base_url,
        timeout_s=config.gemini_timeout_s,
        max_attempts=config.gemini_max_attempts,
    )
    service = ConversationService(config=config, store=store, engine=engine)
    tasks: list[asyncio.Task[None]] = []
    if console:
        from adapters.console_adapter import ConsoleAdapter

        tasks.append(asyncio.create_task(ConsoleAdapter(service, config.console_output_dir).run()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("bot ready", extra={"model": config.gemini_model, "console": console})
    try:
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        pending = [t for t in tasks if not t.done()]
        if pending:
            # Let turns in flight finish within the grace period, then cut them off; history is
            # only ever written in one transaction after a valid answer, so nothing half-done stays.
            _, still = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_S if not console else 0.5)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception():
                log.error("adapter stopped", exc_info=task.exception())
                return 1
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await engine.aclose()
        await store.close()
