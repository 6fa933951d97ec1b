"""The seams the core is built on, declared in one place: what it asks of the platforms, of the
coordination between processes, and (re-exported from ``storage.protocol``) of the store.
Adapters and ``storage/`` implement them; the composition root (``bot.composition``) plugs them in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from bot.vocabulary import ConversationKey, ModelCall, Position, Reply

# Image references: an adapter hands over each attachment as an ``ImageRef`` whose ``load`` fetches
# its bytes through the platform, only when a turn runs (see ``adapters/guarded_download.py``).
from bot.vocabulary import ImageRef as ImageRef

# The store's roles, declared by the store's own contract.
from storage.protocol import HistoryStore as HistoryStore
from storage.protocol import Lifecycle as Lifecycle
from storage.protocol import Maintenance as Maintenance
from storage.protocol import MessageClaims as MessageClaims
from storage.protocol import SettingsStore as SettingsStore
from storage.protocol import SignedLinks as SignedLinks
from storage.protocol import Store as Store
from storage.protocol import UsageCount, UsageQuery
from storage.protocol import UsageLedger as UsageLedger

if TYPE_CHECKING:  # the model registry sits in the model's package, which imports the SDK
    from bot.editing.records import EditGrant, EditImage, EditProgress, RegionEdit
    from bot.gemini.capabilities import ModelCapabilities

# Platforms ------------------------------------------------------------------------------------


class PlatformError(Exception):
    """A fatal platform problem an operator must fix (bad token, missing intent); its text is one
    plain line, printed instead of a traceback."""


class PlatformAdapter(Protocol):
    """A long-running connection to one chat platform, built once from Config and the service."""

    name: str

    async def run(self) -> None:
        """Connect and serve until closed; raise on a fatal problem (bad token, refused URL)."""
        ...

    async def close(self) -> None:
        """Stop taking new events and disconnect; idempotent, safe before ``run`` finished."""
        ...

    async def announce_interrupted(self) -> None:
        """Tell each person whose turn a crash or a stop cut off (each turn once)."""
        ...

    async def connected(self) -> bool:
        """Whether it can take events right now (for /healthz)."""
        ...


class ReplySink(Protocol):
    """How the core talks back to the place a turn came from."""

    def working(self) -> AbstractAsyncContextManager[None]:
        """Show a working indicator (typing, reaction, spinner) while the block runs."""
        ...

    async def send(self, reply: Reply) -> Sequence[str]:
        """Post a reply in the conversation, parts in order; returns the ids of the platform
        messages that show it (the core remembers them, so replying to one continues from it)."""
        ...

    async def notice(self, text: str) -> None:
        """Tell the author something short (privately where the platform can)."""
        ...


# Coordination: in one process (SQLite), or across processes sharing PostgreSQL ------------------


class TurnOrder(Protocol):
    """What the pipeline asks: "run this turn of this conversation, in order, exclusively"."""

    def enter(self, key: ConversationKey, position: Position) -> OrderTicket:
        """Take a place in ``key``'s order now, synchronously, before any other await."""
        ...


class OrderTicket(Protocol):
    """One turn's place in its conversation's order, taken on arrival."""

    @property
    def late(self) -> bool:
        """True once started if a message posted after this one was already answered."""
        ...

    def ahead(self) -> int:
        """How many turns of this conversation run or wait before this one."""
        ...

    async def __aenter__(self) -> OrderTicket:
        """Wait for every earlier turn of the conversation, then run exclusively."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def leave(self) -> None:
        """Give up the place without running (duplicate, refused); harmless after running."""
        ...


class Fence(Protocol):
    def for_turn(self, key: ConversationKey, message_id: str) -> TurnFence:
        """A fence for a turn whose message was just claimed."""
        ...


class TurnFence(Protocol):
    async def holds(self) -> bool:
        """True while nobody else has taken this turn over; checked before storing and posting."""
        ...


class UsageCounts(Protocol):
    """Recorded usage, as the store's ``UsageLedger`` counts it."""

    async def usage_counts(self, queries: Sequence[UsageQuery]) -> list[UsageCount]:
        """Every query's count at once (one query, however many limits a check compares)."""
        ...


class Ledger(UsageCounts, Protocol):
    """Inside one serialised check: recorded usage, turns admitted and not yet recorded, and
    admitting one. A check counts through its ledger, so it needs one database connection, not
    one for the lock and another for the counts (with connections short, the second may never
    come while others wait for the lock)."""

    async def pending(self, scope: tuple[str, ...]) -> int: ...

    async def reserve(self, scopes: Sequence[tuple[str, ...]]) -> object:
        """Count an admitted image in every scope, once per time the scope is listed (a turn of
        N takes lists each scope N times); returns a token for ``release``."""
        ...


class Reservations(Protocol):
    """Where admitted-but-unrecorded turns are counted: in this process (one process, SQLite)
    or in the database (several processes, ``storage.pg_coordination``)."""

    def checking(self, usage: UsageCounts) -> AbstractAsyncContextManager[Ledger]:
        """One check at a time across everything that shares the limits; ``usage`` counts
        recorded usage where the ledger does not count it itself."""
        ...

    async def release(self, token: object) -> None:
        """The turn ended (its usage is recorded, or it made nothing): stop counting it."""
        ...


class JobLeases(Protocol):
    """Who runs a periodic job now: this process alone, or one of several sharing a database."""

    async def acquire(self, job: str, for_s: float) -> bool:
        """True if this process holds ``job`` for the next ``for_s`` seconds (renewable)."""
        ...


# The model ---------------------------------------------------------------------------------------


class ServedModel(Protocol):
    """The model the engine serves by default (chosen at start-up) and what it accepts."""

    @property
    def model(self) -> str: ...

    @property
    def capabilities(self) -> ModelCapabilities: ...


class ModelDirectory(Protocol):
    """What the check asks of the engine."""

    async def model_available(self, model: str) -> bool: ...

    async def image_models(self) -> list[str]: ...


# The region editor ---------------------------------------------------------------------------


class RegionEdits(Protocol):
    """What the editor's web routes (``bot.editing.web``) ask of the core, for a valid link's
    grant: the image to paint on, taking the edit as a turn, and how that turn is going."""

    async def original(self, grant: EditGrant) -> EditImage | None:
        """The image the link's turn shows (``bot.editing.originals.turn_image`` reads it from
        the store), or None when it is gone (forgotten)."""
        ...

    async def submit(self, edit: RegionEdit) -> str:
        """Start the edit as a turn of the grant's conversation (in order, counted like any
        other) and return where its reply will appear, as a phrase: "in the thread #art"."""
        ...

    async def progress(self, grant: EditGrant) -> EditProgress:
        """How the edit submitted with this grant's link is going (its result once done)."""
        ...


# Observing: what operators see (``bot.observing``) ------------------------------------------------


class TurnWatch(Protocol):
    """One turn as the observer follows it, from arrival to its answer."""

    def ended(self, status: str) -> None:
        """How the pipeline ended it (``bot.turns.pipeline.TurnStatus``); a turn left without
        this was cut off (cancelled) or crashed."""
        ...


class Observer(Protocol):
    """Told what the core does, for operators' metrics and traces. Every value it is given is one
    of a few known words or a number: never a person, a prompt or a conversation (only its hash)."""

    def turn(self, platform: str, kind: str, conversation: str = "") -> AbstractContextManager[TurnWatch]:
        """Follow one turn while the block runs; what happens inside is counted as its.
        ``conversation``: a hash of the conversation's key (``bot.observing.watch.conversation_tag``),
        never the key itself."""
        ...

    def model_called(self, call: ModelCall) -> None:
        """A ``generate`` ended (its retries included)."""
        ...

    def queue_waited(self, seconds: float) -> None:
        """A turn got its generation slot after waiting this long (0 when one was free)."""
        ...

    def store_round_trip(self, operation: str, seconds: float) -> None:
        """One call of the store's ``operation`` took this long (each try of a patient call)."""
        ...

    def download_failed(self, platform: str, reason: str) -> None: ...

    def downloaded(self, platform: str, seconds: float, failure: str | None) -> None:
        """A turn fetched an attachment in this long (``failure``: why it could not, a fixed word)."""
        ...

    def posted(self, platform: str, what: str, seconds: float, failed: bool) -> None:
        """A turn's ``reply`` or ``notice`` was posted (or failed to be) in this long."""
        ...

    def platform_error(self, platform: str, method: str, status: str) -> None:
        """A platform API call (``chat.postMessage``, ``POST /channels/{channel_id}/messages``) failed;
        ``status``: ``4xx``, ``5xx`` or ``network`` (``bot.observing.metrics.status_class``)."""
        ...

    def sample(self, gauge: str, read: Callable[[], float]) -> None:
        """Read ``gauge`` (one of ``bot.observing.GAUGES``) from ``read`` whenever metrics are scraped."""
        ...
