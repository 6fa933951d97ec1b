"""The core's first question of every message: "what is this to the bot?", answered once on arrival."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.ports import OrderTicket, TurnOrder
from bot.vocabulary import ConversationKey, Position, Turn
from storage.errors import StoreUnavailable
from storage.protocol import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A person's message as an adapter hands it to the core, before anything is decided."""

    # What the message says; the core fills in ``continue_from`` from ``replying_to``.
    turn: Turn
    # A mention, a DM, or a thread the bot opened: a turn whatever the store holds.
    addressed: bool
    # The platform message it replies to, if any (replying to an image continues from it).
    replying_to: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the message is to the bot. ``ticket`` is its place in the conversation's order,
    taken on arrival: the service runs the turn with it, or leaves it (it is already left when
    the message is not a turn)."""

    ticket: OrderTicket
    is_turn: bool
    continue_from: int | None = None


class Router:
    def __init__(self, store: Store, order: TurnOrder) -> None:
        self._store = store
        self._order = order

    async def consider(self, inbound: Inbound, position: Position) -> Decision:
        """``position``: the message's place in its conversation's order, fixed by the caller."""
        key = inbound.turn.key
        # Before any await: later messages of the conversation cannot overtake this one.
        ticket = self._order.enter(key, position)
        try:
            is_turn = inbound.addressed or await self._store.conversation(key) is not None
            continue_from = None
            if is_turn and inbound.replying_to is not None:
                continue_from = await self._turn_shown_by(key, inbound.replying_to)
        except StoreUnavailable:
            # The store waited out DATABASE_OUTAGE_S. A message to the bot is still a turn (its
            # claim, which cannot wait any longer, says so in one sentence); a plain reply in
            # a thread cannot be told from chatter the bot must not answer.
            log.warning(
                "database unavailable while looking at a message",
                extra={"conversation": str(key), "addressed": inbound.addressed},
            )
            if not inbound.addressed:
                ticket.leave()
                return Decision(ticket, False)
            return Decision(ticket, True)
        except BaseException:
            ticket.leave()
            raise
        if not is_turn:
            ticket.leave()
        return Decision(ticket, is_turn, continue_from)

    async def _turn_shown_by(self, key: ConversationKey, message_id: str) -> int | None:
        """The turn a message of the bot shows, if it is one of this conversation's."""
        turn_id = await self._store.turn_for_message(key.platform, key.channel, message_id)
        if turn_id is None:
            return None
        turn = await self._store.turn(turn_id)
        return turn_id if turn is not None and turn.key == key else None
