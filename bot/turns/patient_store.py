"""The store as the core sees it: every call waits out a database outage (``storage.patience``), and a
write retried after the connection died mid-call is recognised when it had in fact been written."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.vocabulary import ConversationKey
from storage.errors import HeadMoved
from storage.patience import Patience
from storage.protocol import NewTurn, Store, StoredTurn

T = TypeVar("T")

# Calls that wait out an outage. Lifecycle calls (open, close, ping, schema_version) do not: a
# health check must say "down" at once, and start-up and shutdown have their own limits.
# Every one of these is harmless to repeat, but for the two writes below that check the head.
_PATIENT = frozenset(
    {
        "conversation",
        "latest_conversation",
        "turn",
        "history",
        "interaction_ids",
        "load_blobs",
        "record_posted",
        "turn_for_message",
        "claim_message",
        "claim_turn",
        "turn_context",
        "usage_counts",
        "finish_message",
        "unfinished_messages",
        "take_interrupted",
        "scoped_settings",
        "settings",
        "set_setting",
        "usage_since",
        "count_images",
        "cost_since",
        "forget",
        "idle_conversations",
        # A pin retried finds itself (the name is taken by the same image); an unpin retried
        # finds nothing left to remove.
        "add_pin",
        "pins",
        "remove_pin",
        "forget_pins",
        # A workspace forgotten again (after a cut-off call) deletes what the first call left.
        "forget_workspace",
    }
)


class PatientStore:
    """Wraps a ``Store``; anything beyond the protocol (a backend's extras) passes through."""

    def __init__(
        self, store: Store, patience: Patience, on_round_trip: Callable[[str, float], None] | None = None
    ) -> None:
        """``on_round_trip`` is told how long each try of each call took, by the call's name."""
        self.inner = store
        self.patience = patience
        self._on_round_trip = on_round_trip

    async def _timed(self, name: str, call: Awaitable[T]) -> T:
        if self._on_round_trip is None:
            return await call
        started = time.monotonic()
        try:
            return await call
        finally:
            self._on_round_trip(name, time.monotonic() - started)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in _PATIENT:
            return attribute
        patient = self._patient(name, attribute)
        setattr(self, name, patient)  # built once: later calls find it without __getattr__
        return patient

    def _patient(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            # The inner store's method is looked up at each call, so replacing it still counts.
            return await self.patience.call(
                lambda: self._timed(name, getattr(self.inner, name)(*args, **kwargs))
            )

        return call

    async def append_turn(self, turn: NewTurn, *, expected_head: int | None) -> StoredTurn:
        tries = 0

        async def append() -> StoredTurn:
            nonlocal tries
            tries += 1
            try:
                return await self._timed(
                    "append_turn", self.inner.append_turn(turn, expected_head=expected_head)
                )
            except HeadMoved as moved:
                # A COMMIT whose answer was lost with the connection: the head is this very turn.
                if tries > 1:
                    mine = await self._written_before(moved, turn)
                    if mine is not None:
                        return mine
                raise

        return await self.patience.call(append)

    async def _written_before(self, moved: HeadMoved, turn: NewTurn) -> StoredTurn | None:
        if moved.head is None:
            return None
        head = await self.inner.turn(moved.head)
        same = head is not None and (
            (head.parent_id, head.author_id, head.user_content, head.model_content)
            == (turn.parent_id, turn.author_id, turn.user_content, turn.model_content)
        )
        return head if same else None

    async def move_head(self, key: ConversationKey, turn_id: int, *, expected_head: int | None) -> None:
        tries = 0

        async def move() -> None:
            nonlocal tries
            tries += 1
            try:
                await self._timed(
                    "move_head", self.inner.move_head(key, turn_id, expected_head=expected_head)
                )
            except HeadMoved as moved:
                if not (tries > 1 and moved.head == turn_id):  # else: the first try was written
                    raise

        await self.patience.call(move)
