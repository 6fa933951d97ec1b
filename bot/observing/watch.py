"""One turn followed from arrival to answer: who follows it rides in a context variable, so what
happens deep inside the turn (a model call, a failed download) is counted as the turn's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from bot.ports import Observer
from bot.vocabulary import ConversationKey

# Model outcomes (``bot.gemini.Outcome``) that mean Gemini's safety filters stopped the answer.
BLOCKED = frozenset({"prompt_blocked", "image_blocked"})
# How a turn ended (``bot.turns.pipeline.TurnStatus``), as the turns metric says it.
_OUTCOMES = {
    "limited": "refused_by_limit",
    "rejected": "rejected",
    "refused": "not_allowed",
    "duplicate": "duplicate",
    "settings_only": "settings",
    "taken_over": "taken_over",
}


class Watch:
    """One turn as an observer follows it: its platform and kind, and how its model calls ended.
    ``observer`` is the outermost of the observers following it (each one wrapping another takes
    its place), so what the turn tells it (``downloaded``, ``posted``...) passes through them all."""

    def __init__(self, observer: Observer, platform: str, kind: str) -> None:
        self.observer = observer
        self.platform = platform
        self.kind = kind
        self.status: str | None = None
        self.model_outcomes: list[str] = []

    def ended(self, status: str) -> None:
        self.status = status


_CURRENT: ContextVar[Watch | None] = ContextVar("nanobanana_turn", default=None)


def current() -> Watch | None:
    """The turn being followed here, if any."""
    return _CURRENT.get()


@contextmanager
def following(watch: Watch) -> Iterator[Watch]:
    """Make ``watch`` the turn of everything the block runs (tasks it starts inherit it)."""
    token = _CURRENT.set(watch)
    try:
        yield watch
    finally:
        _CURRENT.reset(token)


def download_failed(reason: str) -> None:
    """An attachment of the current turn could not be downloaded (``reason``: a fixed word)."""
    watch = _CURRENT.get()
    if watch is not None:
        watch.observer.download_failed(watch.platform, reason)


def downloaded(seconds: float, failure: str | None = None) -> None:
    """An attachment of the current turn was fetched in ``seconds`` (``failure``: why not)."""
    watch = _CURRENT.get()
    if watch is not None:
        watch.observer.downloaded(watch.platform, seconds, failure)


def posted(what: str, seconds: float, failed: bool = False) -> None:
    """The current turn's ``reply`` or ``notice`` was posted in ``seconds`` (or failed to be)."""
    watch = _CURRENT.get()
    if watch is not None:
        watch.observer.posted(watch.platform, what, seconds, failed)


def conversation_tag(key: ConversationKey) -> str:
    """What operators' tools see of a conversation: the same short hash for every turn of it,
    from which neither its place nor its people can be read back."""
    return hashlib.sha256(str(key).encode()).hexdigest()[:16]


def turn_outcome(status: str | None, model_outcomes: Sequence[str], *, cancelled: bool) -> str:
    """The turns metric's outcome: ``image``, ``text_only``, ``refused_by_limit``,
    ``blocked_by_safety``, ``failed``, ``cancelled``... from the pipeline's status and the
    outcomes of the turn's model calls."""
    if status is None:
        return "cancelled" if cancelled else "crashed"
    if status == "answered":
        return "image" if "image" in model_outcomes else "text_only"
    if status == "failed":
        return "blocked_by_safety" if BLOCKED.intersection(model_outcomes) else "failed"
    return _OUTCOMES.get(status, "other")
