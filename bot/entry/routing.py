"""The core's first question of every message: "what is this to the bot?", answered once on arrival."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace

from bot.ports import OrderTicket, TurnOrder
from bot.turns.request import TurnRequest
from bot.vocabulary import Position, Turn
from storage.errors import StoreUnavailable
from storage.protocol import Claim, Store

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
    the message is not a turn). ``claim``: the message's claim, when the look at the store that
    decided made it in the same call."""

    ticket: OrderTicket
    is_turn: bool
    continue_from: int | None = None
    claim: Claim | None = None

    def applied_to(self, request: TurnRequest) -> TurnRequest:
        """The turn's request with what the decision found."""
        if self.continue_from is None and self.claim is None:
            return request
        shown = self.continue_from if self.continue_from is not None else request.continue_from
        return replace(request, continue_from=shown, claim=self.claim)


class Router:
    def __init__(self, store: Store, order: TurnOrder) -> None:
        self._store = store
        self._order = order

    async def consider(self, inbound: Inbound, position: Position) -> Decision:
        """``position``: the message's place in its conversation's order, fixed by the caller.

        A mention needs no look at the store. A plain message is a turn only in a conversation
        with turns, and a reply continues from the turn the replied-to message shows: that look
        claims the message too when it is a turn (one call; the pipeline then claims nothing)."""
        key = inbound.turn.key
        # Before any await: later messages of the conversation cannot overtake this one.
        ticket = self._order.enter(key, position)
        if inbound.addressed and inbound.replying_to is None:
            return Decision(ticket, True)
        try:
            claim = await self._store.claim_turn(
                key,
                inbound.turn.message_id,
                token=uuid.uuid4().hex,
                known_only=not inbound.addressed,
                shown_by=inbound.replying_to,
            )
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
        if not (inbound.addressed or claim.known):
            ticket.leave()
            return Decision(ticket, False)
        return Decision(ticket, True, claim.shown_turn, claim)
