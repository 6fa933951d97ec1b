"""The composition root: builds the store, the coordination and the core's parts from one configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.admin.sessions import AdminSessions
from bot.admin.web import AdminSite
from bot.config import Config, redacted_database_url, reveal
from bot.editing.desk import RegionDesk
from bot.editing.tokens import EditLinks
from bot.editing.web import EditorSite
from bot.entry.access import AccessPolicy
from bot.entry.dialogue import Dialogue, EditorLink
from bot.entry.pins import PinDesk
from bot.entry.routing import Router
from bot.entry.service import ConversationService
from bot.gemini import GeminiEngine
from bot.gemini.capabilities import INTERACTIONS
from bot.gemini.interactions import InteractionsEngine
from bot.images.budget import ImageMemory
from bot.images.checks import ImageLimits
from bot.limits.quotas import InProcessReservations, LimitPolicy, RateLimiter
from bot.observing.null import NOBODY
from bot.ports import Fence, JobLeases, Observer, Reservations, TurnOrder
from bot.text.conversation_settings import ConversationSettings
from bot.turns.fence import SoleProcess as SoleProcessFence
from bot.turns.forgetting import Forgetting
from bot.turns.gate import GenerationGate
from bot.turns.generation_step import GenerationStep
from bot.turns.in_flight import InFlight
from bot.turns.order import InProcessFirst, LocalTurnOrder
from bot.turns.patient_store import PatientStore
from bot.turns.pipeline import TurnPipeline
from bot.turns.plan import TurnPlanner
from bot.turns.retention import SoleProcess as SoleProcessJobs
from bot.vocabulary import ConversationKey, Position
from storage.aftercare import Aftercare
from storage.blob_cache import BlobCache
from storage.patience import Patience
from storage.protocol import Store


def open_store(config: Config) -> Store:
    """The (not yet opened) store for ``config.storage.url``; backends are imported on use."""
    if config.storage.is_postgres:
        from storage.postgres_store import PostgresStore

        return PostgresStore(
            config.storage.url,
            lease_s=config.storage.process_lease_s,
            max_connections=config.storage.pool_size,
            blob_cache=BlobCache(config.storage.image_cache_bytes),
        )
    from storage.sqlite_store import SqliteStore

    return SqliteStore(config.storage.path, blob_cache=BlobCache(config.storage.image_cache_bytes))


def describe_store(config: Config) -> str:
    """Where the store lives, for messages (never with a password)."""
    if config.storage.is_postgres:
        return redacted_database_url(config.storage.url)
    return str(config.storage.path)


@dataclass(frozen=True, slots=True)
class Coordination:
    """What keeps turns in order and limits whole across every process sharing the store."""

    order: TurnOrder
    reservations: Reservations
    jobs: JobLeases
    # Whether a turn is still this process's (another may take over a paused one's).
    fence: Fence
    # Whether other processes may share the store (then cut-off turns are looked for now and
    # then, not only at start, since another process may die at any time).
    shared: bool


def coordination_for(store: Store, config: Config, patience: Patience, aftercare: Aftercare) -> Coordination:
    """In-process coordination for SQLite (one process); the database's for PostgreSQL. Both
    wait out a database outage (``patience``) and leave clean-up to ``aftercare``."""
    if config.storage.is_postgres:
        from storage.pg_coordination import PgJobLeases, PgReservations, PgTurnOrder
        from storage.pg_fence import PgFence
        from storage.postgres_store import PostgresStore

        assert isinstance(store, PostgresStore)
        return Coordination(
            InProcessFirst(
                LocalTurnOrder(config.storage.turn_order_settle_s),
                PgTurnOrder(store, patience=patience, aftercare=aftercare),
            ),
            PgReservations(store, aftercare=aftercare),
            PgJobLeases(store),
            PgFence(store, patience),
            True,
        )
    return sole_process(config)


def sole_process(config: Config) -> Coordination:
    """Coordination when one process has the store to itself (SQLite)."""
    return Coordination(
        LocalTurnOrder(config.storage.turn_order_settle_s),
        InProcessReservations(),
        SoleProcessJobs(),
        SoleProcessFence(),
        False,
    )


def build_engine(config: Config, observer: Observer = NOBODY, **overrides: Any) -> GeminiEngine:
    """The engine GEMINI_API names: generateContent's, or the Interactions API's (server-side
    history). ``overrides``: keyword arguments of the engine (tests: ``sleep``)."""
    engine = InteractionsEngine if config.gemini.api == INTERACTIONS else GeminiEngine
    return engine(
        api_key=reveal(config.gemini.api_key),
        model=config.gemini.model,
        base_url=config.gemini.base_url,
        timeout_s=config.gemini.timeout_s,
        max_attempts=config.gemini.max_attempts,
        observer=observer,
        models=config.models,
        **overrides,
    )


def patience_for(config: Config) -> Patience:
    """One process's patience: ``DATABASE_OUTAGE_S``, holding at most ``MAX_QUEUED_TURNS`` calls
    (the bound on turns waiting for Gemini applies to turns waiting for the database too)."""
    return Patience(config.storage.outage_s, max_held=max(config.limits.max_queued_turns, 1))


def build_service(
    config: Config,
    store: Store,
    engine: GeminiEngine,
    coordination: Coordination | None = None,
    *,
    in_flight: InFlight | None = None,
    patience: Patience | None = None,
    aftercare: Aftercare | None = None,
    observer: Observer = NOBODY,
    links: EditLinks | None = None,
) -> ConversationService:
    """``links``: the region editor's (see ``build_editor``), when PUBLIC_URL is set.

    The conversation core, every part built once and handed what it needs (no part calls
    back into what built it). Without ``coordination``, one process's (SQLite's). ``observer``
    (``bot.observing.metrics.Metrics`` in a process) is told what every part does."""
    patience = patience if patience is not None else patience_for(config)
    aftercare = aftercare if aftercare is not None else Aftercare()
    if coordination is None:
        coordination = sole_process(config)
    # Every store call of the core waits out a database outage (see storage.patience).
    patient: Store = PatientStore(store, patience, on_round_trip=observer.store_round_trip)
    settings = ConversationSettings(patient, config, engine)
    order = coordination.order
    access = AccessPolicy.from_config(config)
    # Forget waits for the conversation's earlier turns, like any turn posted before it.
    forgetting = Forgetting(
        patient, lambda key: order.enter(key, Position.now()), access, engine.forget_interactions
    )
    # One budget for the process's image memory: turns, pins and the editor's masks draw on it.
    memory = ImageMemory.of(config.images.memory_bytes)
    parts = (settings, access, forgetting, patience, aftercare, observer, memory)
    pipeline = _pipeline(config, patient, engine, coordination, *parts)
    in_flight = in_flight if in_flight is not None else InFlight()
    observer.sample("turns_in_flight", lambda: int(in_flight))
    return ConversationService(
        config=config,
        store=patient,
        settings=settings,
        access=access,
        router=Router(patient, order),
        forgetting=forgetting,
        pipeline=pipeline,
        in_flight=in_flight,
        aftercare=aftercare,
        dialogue=_dialogue(config, patient, access, forgetting, settings, links, memory),
        observer=observer,
        image_memory=memory,
    )


def _dialogue(
    config: Config,
    store: Store,
    access: AccessPolicy,
    forgetting: Forgetting,
    settings: ConversationSettings,
    links: EditLinks | None,
    memory: ImageMemory,
) -> Dialogue:
    return Dialogue(
        store=store,
        config=config,
        access=access,
        forgetting=forgetting,
        settings=settings,
        editor_link=_editor_link(config, links),
        pins=PinDesk(store, access, _image_limits(config), memory.decodes),
    )


def _image_limits(config: Config) -> ImageLimits:
    return ImageLimits(max_bytes=config.images.max_attachment_bytes, max_side=config.images.max_input_side)


def _editor_link(config: Config, links: EditLinks | None) -> EditorLink | None:
    """A person's new editor link to a turn's image, with PUBLIC_URL."""
    if links is None or not config.http.public_url:
        return None

    async def link(key: ConversationKey, turn_id: int, person: str) -> str | None:
        return config.http.editor_link(await links.issue(key, turn_id, person))

    return link


@dataclass(frozen=True, slots=True)
class Editor:
    """The region editor: its links (for the service's Edit region), the core's side of it
    (adapters tell ``desk`` how to post into their threads) and its routes on PORT."""

    links: EditLinks
    desk: RegionDesk
    site: EditorSite


def editor_links(config: Config, store: Store) -> EditLinks | None:
    """The editor's links when PUBLIC_URL is set (then the service offers Edit region)."""
    return EditLinks(store) if config.http.public_url else None


def build_editor(config: Config, service: ConversationService, links: EditLinks | None) -> Editor | None:
    """The editor around a built service: edits run as its turns."""
    if links is None:
        return None
    desk = RegionDesk(service.store, service.run)
    site = EditorSite(
        links,
        desk,
        max_instruction_chars=config.limits.max_prompt_chars,
        decodes=service.image_memory.decodes,
    )
    return Editor(links, desk, site)


def build_admin(
    config: Config,
    store: Store,
    forget: Callable[[ConversationKey], Awaitable[int]],
    parts: Callable[[], Awaitable[Mapping[str, bool]]],
) -> AdminSite | None:
    """The operators' dashboard with ADMIN_TOKEN (else none: GET /admin is 404). ``store``: the
    store itself, not the core's patient one (the page says at once that the database is away);
    ``forget``: the service's (as /forget does it); ``parts``: this process's health checks."""
    token = reveal(config.http.admin_token)
    if not token:
        return None
    return AdminSite(
        AdminSessions(token, store),
        store,
        forget,
        parts,
        policy=LimitPolicy.from_config(config),
        zone=ZoneInfo(config.http.admin_timezone),
        lease_s=config.storage.process_lease_s,
        https=(config.http.public_url or "").startswith("https://"),
    )


def _pipeline(
    config: Config,
    store: Store,
    engine: GeminiEngine,
    coordination: Coordination,
    settings: ConversationSettings,
    access: AccessPolicy,
    forgetting: Forgetting,
    patience: Patience,
    aftercare: Aftercare,
    observer: Observer,
    memory: ImageMemory,
) -> TurnPipeline:
    limits = _image_limits(config)
    gate = GenerationGate(
        config.limits.max_concurrent_generations, config.limits.max_queued_turns, observer.queue_waited
    )
    _sample_load(observer, gate, memory)
    step = GenerationStep(
        store=store,
        engine=engine,
        gate=gate,
        image_limits=limits,
        context_max_images=config.limits.context_max_images,
        settings=settings,
        memory=memory,
        on_first_turn=forgetting.note_first_turn,
        aftercare=aftercare,
        editable=bool(config.http.public_url),
    )
    planner = TurnPlanner(
        store=store, settings=settings, image_limits=limits, max_prompt_chars=config.limits.max_prompt_chars
    )
    limiter = RateLimiter(
        LimitPolicy.from_config(config), store, reservations=coordination.reservations, patience=patience
    )
    return TurnPipeline(
        store=store,
        order=coordination.order,
        access=access,
        limiter=limiter,
        planner=planner,
        step=step,
        settings=settings,
        aftercare=aftercare,
        fence=coordination.fence,
    )


def _sample_load(observer: Observer, gate: GenerationGate, memory: ImageMemory) -> None:
    """The gauges read at each scrape: generation slots and the queue, the image memory budget."""
    observer.sample("generations_in_flight", lambda: gate.in_flight)
    observer.sample("generations_waiting", lambda: gate.queued)
    observer.sample("image_memory_turns", lambda: memory.turns.in_use)
    observer.sample("image_memory_decodes", lambda: memory.decodes.in_use)
    observer.sample("image_memory_turns_capacity", lambda: memory.turns.capacity)
    observer.sample("image_memory_decodes_capacity", lambda: memory.decodes.capacity)
