"""Builds the store, engine and service once, runs the adapters, and shuts down cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from bot.admin.web import AdminSite
from bot.composition import (
    Coordination,
    Editor,
    build_admin,
    build_editor,
    build_engine,
    build_service,
    coordination_for,
    describe_store,
    editor_links,
    open_store,
    patience_for,
)
from bot.config import Config
from bot.entry.platforms import start_adapters
from bot.entry.service import ConversationService
from bot.gemini.model_check import start_model
from bot.health import METRICS_PATH, Health, HealthServer
from bot.images.heap import HeapTrimmer, freeze_startup_objects, tune_allocator
from bot.logs import configure_logging
from bot.observing.connections import report_now_and_then
from bot.observing.journal import TurnJournal
from bot.observing.metrics import Metrics
from bot.observing.traces import build_tracing
from bot.ports import Observer, PlatformAdapter, PlatformError
from bot.turns.in_flight import InFlight
from bot.turns.retention import Retention
from storage.aftercare import Aftercare
from storage.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)
# Hosts send SIGTERM on every deploy and kill ~10 s later: finish turns in flight within this.
SHUTDOWN_GRACE_S = 8.0
# How often a process of a shared database looks for turns a dead process cut off.
INTERRUPTED_SWEEP_S = 5.0
# The dashboard for a process's health checks (None without ADMIN_TOKEN).
AdminFor = Callable[[Callable[[], Awaitable[Mapping[str, bool]]]], AdminSite | None]


def tuned_process() -> InFlight:
    """Process-wide heap tuning, hung on the turn counter: turns churn through tens of MB of
    image buffers, so the allocator reuses them while busy and releases them when quiet, and by
    the first turn every module and client is loaded, so what exists then is frozen out of GC."""
    tune_allocator()
    trimmer = HeapTrimmer()
    return InFlight(on_start=freeze_startup_objects, on_end=trimmer.poke)


def _background_jobs(
    config: Config, service: ConversationService, coordination: Coordination, adapters: list[PlatformAdapter]
) -> list[asyncio.Task[None]]:
    jobs = []
    if config.storage.retention_days:
        retention = Retention(service.store, config.storage.retention_days, service.forget, coordination.jobs)
        jobs.append(asyncio.create_task(retention.run()))
    if coordination.shared and adapters:
        every_s = min(INTERRUPTED_SWEEP_S, config.storage.process_lease_s / 3)
        jobs.append(asyncio.create_task(_announce_interrupted_now_and_then(adapters, every_s)))
        # Written with each lease renewal (every third of the lease), for every process's dashboard.
        report = service.store.report_platforms
        every_s = config.storage.process_lease_s / 3
        jobs.append(asyncio.create_task(report_now_and_then(adapters, report, every_s)))
    return jobs


async def _announce_interrupted_now_and_then(adapters: list[PlatformAdapter], every_s: float) -> None:
    """With several processes, one may die at any time: its cut-off turns are taken (once, by
    whichever live process asks first) as soon as its lease has run out."""
    while True:
        await asyncio.sleep(every_s)
        for adapter in adapters:
            try:
                await adapter.announce_interrupted()
            except StoreUnavailable:
                continue  # the database is away (storage.patience logs it); next time
            except Exception:
                log.exception("announcing interrupted turns failed", extra={"adapter": adapter.name})


@contextmanager
def _log_stream(config: Config, console: bool) -> Iterator[TextIO | None]:
    """stderr for services; for the console, which owns the terminal, a file by the database."""
    if not console:
        yield None
        return
    config.storage.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(config.storage.path.parent / "console.log", "a", encoding="utf-8") as stream:
        yield stream


async def _until(event: asyncio.Event) -> None:
    await event.wait()


async def run(config: Config, *, console: bool) -> int:
    """Run until the adapters finish or SIGTERM/SIGINT; returns the exit code."""
    with _log_stream(config, console) as stream:
        configure_logging(config.logging.level, config.secrets(), stream)
        return await _serve(config, console)


async def _serve(config: Config, console: bool) -> int:
    store = open_store(config)
    try:
        await store.open()
    except (StoreError, OSError) as exc:
        print(f"error: cannot open the database at {describe_store(config)}: {exc}", file=sys.stderr)
        return 1
    metrics = Metrics()  # this process's, served at /metrics
    # Also notes each turn's ending in the database, for the dashboard of every process.
    journal = TurnJournal(metrics, store)
    # With OTEL_EXPORTER_OTLP_ENDPOINT (and the otel extra), each turn is a trace too.
    tracing = build_tracing(journal, config.logging.traces_endpoint)
    observer: Observer = tracing or journal
    engine = build_engine(config, observer)
    try:
        # Before any adapter starts: a model the key cannot use would fail every turn.
        start = await start_model(engine, store, config)
        if start.config is None:
            print(f"error: {start.error}", file=sys.stderr)
            return 2
        config = start.config
        for line in start.warnings:
            print(f"warning: {line}", file=sys.stderr)
        patience, aftercare = patience_for(config), Aftercare()
        coordination = coordination_for(store, config, patience, aftercare)
        service = build_service(
            config,
            store,
            engine,
            coordination,
            in_flight=tuned_process(),
            patience=patience,
            aftercare=aftercare,
            observer=observer,
            links=(links := editor_links(config, store)),
        )
        editor = build_editor(config, service, links)
        admin_for = partial(build_admin, config, store, service.forget)
        sidecars = _Sidecars(metrics, editor, journal, admin_for, observer)
        return await _run_until_stopped(config, console, service, coordination, sidecars)
    finally:
        await engine.aclose()
        await store.close()
        if tracing is not None:  # the spans still waiting are sent (the exporter blocks)
            await asyncio.to_thread(tracing.close)


def _start_adapters(
    config: Config,
    console: bool,
    service: ConversationService,
    adapters: list[PlatformAdapter],
    editor: Editor | None = None,
) -> dict[asyncio.Task[None], str]:
    tasks: dict[asyncio.Task[None], str] = {}
    if console:
        from adapters.console.adapter import ConsoleAdapter

        chat = ConsoleAdapter(service, config.console.output_dir)
        _post_edits_from(editor, [chat])
        tasks[asyncio.create_task(chat.run())] = "console"
    else:
        _post_edits_from(editor, adapters)
        tasks.update({asyncio.create_task(a.run()): a.name for a in adapters})
    return tasks


def _post_edits_from(editor: Editor | None, adapters: Sequence[object]) -> None:
    """Region edits are posted in the thread of the image they edit, by its platform's adapter."""
    if editor is None:
        return
    for adapter in adapters:
        sinks = getattr(adapter, "thread_sinks", None)
        if sinks is not None:
            editor.desk.serve(*sinks())


@dataclass(frozen=True, slots=True)
class _Sidecars:
    """What a process runs beside its adapters: metrics, the region editor (PUBLIC_URL), the
    turn log's writer and the dashboard (ADMIN_TOKEN)."""

    metrics: Metrics
    editor: Editor | None = None
    journal: TurnJournal | None = None
    admin_for: AdminFor | None = None
    # What adapters tell of their failed API calls: the metrics, through the traces when on.
    observer: Observer | None = None


async def _serve_health(
    config: Config,
    service: ConversationService,
    adapters: list[PlatformAdapter],
    sidecars: _Sidecars,
) -> HealthServer | None:
    """/healthz, /readyz and /metrics on PORT: on the Slack events server when there is one (one
    server per port), else on a small server of its own. The model was checked before this.
    With PUBLIC_URL, the region editor's routes are served there too; with ADMIN_TOKEN, the
    dashboard's."""
    metrics, editor = sidecars.metrics, sidecars.editor
    installs = [editor.site.install] if editor is not None else []
    health = Health(service.store, adapters, model_checked=lambda: bool(config.gemini.model))
    admin = sidecars.admin_for(health.check) if sidecars.admin_for is not None else None
    if admin is not None:
        installs.append(admin.install)
    for adapter in adapters:
        if hasattr(adapter, "observer"):  # adapters that count their failed API calls
            adapter.observer = sidecars.observer or metrics
    serving = [a for a in adapters if getattr(a, "serves_http", False)]
    for adapter in serving:
        adapter.http_routes = {**health.routes(), METRICS_PATH: metrics.handle}  # type: ignore[attr-defined]
        adapter.http_installs = installs  # type: ignore[attr-defined]
    if serving:
        return None
    server = HealthServer(health, config.http.port, {METRICS_PATH: metrics.handle}, routes=installs)
    await server.start()
    return server


async def _run_until_stopped(
    config: Config,
    console: bool,
    service: ConversationService,
    coordination: Coordination,
    sidecars: _Sidecars,
) -> int:
    adapters = [] if console else start_adapters(config, service)
    try:
        # The console serves PORT only for the region editor and the dashboard.
        served = not console or sidecars.editor is not None or bool(config.http.admin_token)
        health = await _serve_health(config, service, adapters, sidecars) if served else None
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return await _serve_adapters(config, console, service, adapters, coordination, sidecars)
    finally:
        if health is not None:
            await health.close()


async def _serve_adapters(
    config: Config,
    console: bool,
    service: ConversationService,
    adapters: list[PlatformAdapter],
    coordination: Coordination,
    sidecars: _Sidecars,
) -> int:
    editor = sidecars.editor
    tasks = _start_adapters(config, console, service, adapters, editor)
    background = _background_jobs(config, service, coordination, adapters)
    if sidecars.journal is not None:
        background.append(asyncio.create_task(sidecars.journal.run()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("bot started", extra={"model": config.gemini.model, "adapters": sorted(tasks.values())})
    exit_code = 0
    try:
        stopper = asyncio.create_task(_until(stop))
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in done:
            if task is stopper or task.cancelled() or task.exception() is None:
                continue
            error = task.exception()
            exit_code = 1
            if isinstance(error, PlatformError):
                print(f"error: {error}", file=sys.stderr)
                log.error("adapter stopped", extra={"adapter": tasks[task], "reason": str(error)})
            else:
                log.error("adapter crashed", extra={"adapter": tasks[task]}, exc_info=error)
        # Stop taking new turns, let turns in flight finish within the grace period, then cut
        # them off; history is written in one transaction after a valid answer, so a cut-off
        # turn leaves no trace.
        await asyncio.gather(*(a.close() for a in adapters), return_exceptions=True)
        if not console:
            await service.drain(SHUTDOWN_GRACE_S)
        pending = [t for t in [*tasks, *background] if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        log.info("bot stopped", extra={"exit_code": exit_code})
        return exit_code
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
