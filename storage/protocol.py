"""The store protocol, split into the roles a backend plays; ``Store`` is all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from storage import reports
from storage.content import Blob, ContentRecord
from storage.records import ConversationKey, LinkOutcome, Pin, SettingScope, Usage, WorkspaceForgotten


@dataclass(frozen=True, slots=True)
class NewTurn:
    """A turn to store: what the user sent, what the model answered, and the blobs they reference
    (each stored once by hash; blobs passed but not referenced are never kept)."""

    key: ConversationKey
    parent_id: int | None
    user_content: ContentRecord
    model_content: ContentRecord
    model: str
    author_id: str
    usage: Usage = field(default_factory=Usage)
    blobs: tuple[Blob, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredTurn:
    """One completed exchange: the user's content and the model's answer, exactly as sent/received.

    ``parent_id`` is the turn this one continued (None for the first turn); following parents
    from any turn gives that branch's history.
    """

    id: int
    key: ConversationKey
    parent_id: int | None
    user_content: ContentRecord
    model_content: ContentRecord
    model: str
    usage: Usage
    author_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """A conversation's identity and where its latest branch ends."""

    key: ConversationKey
    head_turn_id: int | None
    turn_count: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming an arriving message found, read in the same call as the claim."""

    # False only for a claim made ``known_only`` in a conversation with no turns: nothing claimed.
    known: bool
    # False when the message was already claimed by another attempt (a redelivery, a duplicate).
    claimed: bool
    # The turn the message in ``shown_by`` shows, if it is one of this conversation's.
    shown_turn: int | None = None
    # The conversation's effective settings (as ``settings(key)``).
    settings: Mapping[str, str] = field(default_factory=dict)


# Which stored images a turn needs, given the conversation's settings and the branch it continues.
BlobChoice = Callable[[Mapping[str, str], Sequence["StoredTurn"]], Iterable[str]]


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything a turn reads once it holds its conversation, read in one call."""

    head: int | None
    settings: Mapping[str, str]
    history: list[StoredTurn]
    blobs: dict[str, bytes]


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Recorded usage since ``since`` of the turns matching the filters (None: any)."""

    since: float
    author_id: str | None = None
    platform: str | None = None
    workspace: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class UsageCount:
    """What a ``UsageQuery`` counted: images, when the oldest turn that made one was recorded
    (None if there is none), and their estimated US dollars."""

    images: int = 0
    oldest: float | None = None
    cost_usd: float = 0.0


class Lifecycle(Protocol):
    """Opening, schema and closing."""

    async def open(self) -> None:
        """Create or migrate the schema; must be called once before anything else."""
        ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    async def ping(self) -> None:
        """One cheap query; raises StoreError when the database does not answer (or is closed)."""
        ...


class HistoryStore(Protocol):
    """Conversations, their turns (a tree with a head), the image blobs turns reference, and
    which platform messages show which turn."""

    async def conversation(self, key: ConversationKey) -> ConversationInfo | None:
        """The conversation for a key, or None if it has no turns (or was forgotten)."""
        ...

    async def latest_conversation(
        self, platform: str, workspace: str, channel: str
    ) -> ConversationInfo | None:
        """The most recently updated conversation in a channel (the console resumes it)."""
        ...

    async def turn(self, turn_id: int) -> StoredTurn | None: ...

    async def history(self, key: ConversationKey, upto: int | None = None) -> list[StoredTurn]:
        """The branch ending at ``upto`` (default: the head), oldest turn first; [] for an unknown
        key. ``upto`` must belong to ``key`` or ValueError is raised."""
        ...

    async def interaction_ids(self, key: ConversationKey) -> list[str]:
        """Ids of the interactions Google keeps for the conversation's turns, every branch."""
        ...

    async def append_turn(self, turn: NewTurn, *, expected_head: int | None) -> StoredTurn:
        """Atomically store a turn, the blobs it references (each stored once by hash), its
        usage, and move the conversation's head to it (creating the conversation if needed).

        ``expected_head`` is the head the turn was computed against (None: no turns yet); if
        the head is another turn now, ``storage.errors.HeadMoved`` is raised and nothing is
        written. ``turn.parent_id`` is separate: a regenerate branches from an earlier turn. A
        parent of another conversation, or a referenced blob neither passed nor stored, is a
        ValueError (see ``storage.rules``), again writing nothing.
        """
        ...

    async def move_head(self, key: ConversationKey, turn_id: int, *, expected_head: int | None) -> None:
        """Make one of the conversation's stored turns its head (continue from another take of
        a variations turn); nothing else changes.

        ``expected_head`` works as in ``append_turn``: if the head is another turn now,
        ``storage.errors.HeadMoved`` is raised and nothing is written. A turn that is not
        part of ``key`` (or does not exist) is a ValueError, again writing nothing.
        """
        ...

    async def load_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """Bytes for the given hashes; unknown hashes are absent from the result."""
        ...

    async def record_posted(
        self, platform: str, channel: str, message_ids: Iterable[str], turn_id: int
    ) -> None:
        """Remember which platform messages show a turn's reply (re-recording is harmless)."""
        ...

    async def turn_for_message(self, platform: str, channel: str, message_id: str) -> int | None:
        """The turn whose reply a platform message shows, or None."""
        ...

    async def turn_context(
        self,
        key: ConversationKey,
        *,
        upto: int | None = None,
        branch: bool = True,
        blobs: BlobChoice | None = None,
    ) -> TurnContext:
        """The conversation's head, effective settings and history, and the blobs ``blobs``
        picks from those (unknown hashes absent), in one call.

        The history is the branch ending at ``upto`` (default: the head), as ``history``;
        with ``branch`` False it is empty. ``upto`` must belong to ``key`` or ValueError is
        raised. ``blobs`` runs inside the call, so it must not block or touch the store.
        """
        ...


class MessageClaims(Protocol):
    """One generation per platform message, and finding turns a crash cut off."""

    async def claim_message(
        self,
        platform: str,
        channel: str,
        message_id: str,
        key: ConversationKey | None = None,
        *,
        token: str | None = None,
    ) -> bool:
        """Record a platform message as processed; False if it was already claimed.

        With ``key`` the claim also remembers which conversation the message belongs to and
        stays unfinished until ``finish_message``, so a turn cut off by a crash can be found.
        Without it the claim is finished at once. ``token`` names the attempt: claiming again
        with the same token (a retry after the database went away mid-call, when the first
        call may have been written) is True, not a duplicate.
        """
        ...

    async def claim_turn(
        self,
        key: ConversationKey,
        message_id: str,
        *,
        token: str,
        known_only: bool = False,
        shown_by: str | None = None,
    ) -> Claim:
        """``claim_message(key.platform, key.channel, message_id, key, token=token)`` and the
        conversation's effective settings, in one call.

        With ``known_only`` the message is claimed only if the conversation has turns (a
        message that is a turn only there). ``shown_by``: a message of the key's channel whose
        turn is wanted too (``turn_for_message``, when that turn is this conversation's).
        """
        ...

    async def finish_message(
        self, platform: str, channel: str, message_id: str, posted: Sequence[tuple[str, int]] = ()
    ) -> None:
        """Mark a claimed message's turn as finished (answered, refused or failed) and, in the
        same transaction, record ``posted`` (message id, turn id) as ``record_posted`` does."""
        ...

    async def unfinished_messages(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        """Messages of ``platform`` claimed after ``claimed_after`` whose turn never finished
        (the process died or was stopped mid-turn), oldest first, as (key, message id)."""
        ...

    async def take_interrupted(
        self, platform: str, claimed_after: float
    ) -> list[tuple[ConversationKey, str]]:
        """Unfinished claims of ``platform`` made after ``claimed_after`` by a process that is
        gone (never this one, nor another live one), oldest first, handed to this process: no
        other process takes them while it lives. They stay unfinished until ``finish_message``
        (after the person is told), so a process that dies before telling passes them on."""
        ...


class SettingsStore(Protocol):
    """Settings stored per scope. A backend stores and returns raw rows
    (``scoped_settings``); ``settings`` applies precedence once, in ``storage.rules``."""

    async def scoped_settings(self, scopes: Sequence[SettingScope]) -> Mapping[str, Mapping[str, str]]:
        """The stored settings of each given scope, keyed by ``scope.as_text()`` (scopes with
        nothing stored may be absent)."""
        ...

    async def settings(self, key: ConversationKey) -> dict[str, str]:
        """Effective settings for a conversation: thread over channel over global."""
        ...

    async def set_setting(self, scope: SettingScope, name: str, value: str | None) -> None:
        """Set (or with None, clear) one setting at one scope."""
        ...


class UsageLedger(Protocol):
    """What every turn cost, kept apart from the turns so forgetting does not reset it."""

    async def usage_since(
        self, since: float, author_id: str | None = None, platform: str | None = None
    ) -> Usage:
        """Summed usage (and estimated cost) of turns created at or after ``since`` (epoch
        seconds), optionally only one author's on one platform. Forgotten turns still count:
        usage is a billing record."""
        ...

    async def count_images(
        self,
        since: float,
        *,
        author_id: str | None = None,
        platform: str | None = None,
        workspace: str | None = None,
        channel: str | None = None,
    ) -> tuple[int, float | None]:
        """Images generated since ``since`` matching the filters, and when the oldest turn
        that made one of them was recorded (None if there is none)."""
        ...

    async def cost_since(self, since: float) -> float:
        """Estimated US dollars spent since ``since``, across everything."""
        ...

    async def usage_counts(self, queries: Sequence[UsageQuery]) -> list[UsageCount]:
        """What each query counts (as ``count_images`` and ``cost_since``), in one query."""
        ...


class Maintenance(Protocol):
    """Forgetting and retention."""

    async def forget(self, key: ConversationKey) -> int:
        """Delete a conversation's turns, its thread settings, and every blob no other turn
        references, for real (no image bytes remain in the database). Returns turns deleted."""
        ...

    async def idle_conversations(self, before: float, limit: int = 500) -> list[ConversationKey]:
        """Conversations last updated before ``before``, oldest first (for retention)."""
        ...

    async def forget_workspace(self, platform: str, workspace: str) -> WorkspaceForgotten:
        """Delete everything kept for one workspace (the bot left it): every conversation as
        ``forget`` does, a batch per transaction, every channel and thread setting, every pin as
        ``forget_pins`` does. The usage ledger stays. Calling it again finds nothing."""
        ...


class SignedLinks(Protocol):
    """What signed, single-use links (the region editor's) need from the database that every
    process of a deployment shares: one signing key, and which links were already used."""

    async def secret(self, name: str) -> bytes:
        """The secret called ``name`` (32 random bytes), made on first use: every process, even
        several asking at once, gets the same one, ever after."""
        ...

    async def use_link(self, link_id: str, expires_at: float) -> bool:
        """Mark a link used; True the first time, False ever after (across processes) until
        ``expires_at`` has passed and the record is purged. Purges expired records."""
        ...

    async def link_used(self, link_id: str) -> bool:
        """Whether ``use_link`` took this link already (and its record has not been purged)."""
        ...

    async def note_link_outcome(self, link_id: str, outcome: LinkOutcome) -> None:
        """How the work a used link started ended, for whichever process is asked next."""
        ...

    async def link_outcome(self, link_id: str) -> LinkOutcome | None:
        """What ``note_link_outcome`` noted for the link; None while it is still going (or the
        link's record was purged)."""
        ...


class PinBoard(Protocol):
    """Images pinned by name for a whole workspace; each image is a blob stored once by hash."""

    async def add_pin(
        self, platform: str, workspace: str, name: str, image: Blob | str, pinned_by: str
    ) -> Pin:
        """Pin ``image`` (its bytes, stored once by hash, or the hash of a stored blob) as
        ``name``. If the workspace already has a pin of that name, nothing changes and that pin
        is returned. A hash of no stored blob is a ValueError, writing nothing."""
        ...

    async def pins(self, platform: str, workspace: str, names: Sequence[str] | None = None) -> list[Pin]:
        """The workspace's pins (only those called ``names``, when given), by name."""
        ...

    async def remove_pin(self, platform: str, workspace: str, name: str) -> bool:
        """Unpin ``name``; its image goes too unless another pin or a turn holds it. False if
        there was no such pin."""
        ...

    async def forget_pins(self, platform: str, workspace: str) -> int:
        """Remove every pin of a workspace (its data is being deleted), as ``remove_pin``
        does; returns how many there were."""
        ...


class Reports(Protocol):
    """What the operators' dashboard reads, for the whole deployment (``storage.reports``), and
    the turn log it reads latency and failures from. ``bounds``: instants in order; row ``day``
    n is the interval from ``bounds[n]`` up to ``bounds[n + 1]``; days with nothing are absent."""

    async def record_turns(self, records: Sequence[reports.TurnRecord]) -> None: ...

    async def usage_by_day(self, bounds: Sequence[float]) -> list[reports.DayUsage]:
        """The ledger's images and cost per day, model and platform (forgotten turns count)."""
        ...

    async def latency_by_day(self, bounds: Sequence[float]) -> list[reports.DayLatency]:
        """p50 and p95 per day of the turns that answered (outcome ``image`` or ``text_only``)."""
        ...

    async def outcome_counts(self, since: float) -> list[reports.OutcomeCount]:
        """Turns logged since ``since`` by outcome and reason, the most frequent first."""
        ...

    async def top_people(self, since: float, limit: int = 10) -> list[reports.Spender]:
        """The people (by platform) whose images cost most since ``since``."""
        ...

    async def top_channels(self, since: float, limit: int = 10) -> list[reports.Spender]:
        """The channels whose images cost most since ``since``."""
        ...

    async def processes(self) -> list[reports.ProcessSeen]:
        """The processes sharing the database, from their leases (none on SQLite)."""
        ...

    def report_platforms(self, states: Mapping[str, str]) -> None:
        """This process's platforms' connection states, written with its next lease renewal
        (nothing on SQLite)."""
        ...

    async def recent_conversations(self, limit: int = 20) -> list[reports.RecentConversation]:
        """The most recently updated conversations, newest first."""
        ...


class Store(
    Lifecycle,
    HistoryStore,
    MessageClaims,
    SettingsStore,
    UsageLedger,
    Maintenance,
    SignedLinks,
    PinBoard,
    Reports,
    Protocol,
):
    """Every role together: what the bot is given.

    Every method is safe to call concurrently from one event loop. ``append_turn`` is atomic:
    after a crash either the whole turn (row, blobs, head pointer, usage) exists or none of it.
    """
