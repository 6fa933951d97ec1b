"""The per-conversation order of turns: posting order, exclusivity, stragglers and late arrivals."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.turns.order import InProcessFirst, LocalTurnOrder
from bot.vocabulary import ConversationKey, Position
from tests.auxil.order_recorder import Recorder

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000001")
OTHER = ConversationKey("slack", "T1", "C1", "1700000000.000099")
NOW = 1_800_000_000.0


def posted(offset_s: float) -> Position:
    """A message the platform stamped ``offset_s`` seconds before NOW (negative = earlier)."""
    return Position(int((NOW + offset_s) * 1_000_000), settle=True)


async def test_turns_run_one_at_a_time_in_posting_order_whatever_order_they_arrive() -> None:
    order = LocalTurnOrder(settle_s=0.25, clock=lambda: NOW)
    recorder = Recorder()
    arrivals = [("third", -30), ("first", -50), ("fourth", -20), ("second", -40)]
    tickets = [(name, order.enter(KEY, posted(t))) for name, t in arrivals]
    async with asyncio.timeout(5):
        await asyncio.gather(*(recorder.run(ticket, name) for name, ticket in tickets))
    assert recorder.ran == ["first", "second", "third", "fourth"]
    assert recorder.overlaps == 0
    assert len(order) == 0  # the lane is gone once nothing of the conversation is in flight


async def test_a_turn_waits_for_an_earlier_message_still_in_transit() -> None:
    settled = asyncio.Event()
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        await settled.wait()

    order = LocalTurnOrder(settle_s=0.25, clock=lambda: NOW, sleep=sleep)
    recorder = Recorder()
    later = asyncio.create_task(recorder.run(order.enter(KEY, posted(-0.05)), "posted second"))
    await asyncio.sleep(0)
    assert asked == [pytest.approx(0.2)]  # it waits out the rest of the settle window after its posting time
    earlier = asyncio.create_task(recorder.run(order.enter(KEY, posted(-0.1)), "posted first"))
    settled.set()
    async with asyncio.timeout(5):
        await asyncio.gather(later, earlier)
    assert recorder.ran == ["posted first", "posted second"]


async def test_settle_wait_is_capped_and_skipped_for_arrival_stamps() -> None:
    order = LocalTurnOrder(settle_s=0.25, clock=lambda: NOW)
    assert order.settle_delay(posted(+3600)) == 0.25  # a platform clock ahead of ours
    assert order.settle_delay(posted(-10)) == 0.0
    assert order.settle_delay(Position.now(lambda: NOW)) == 0.0


async def test_a_message_that_arrives_after_a_later_one_was_answered_runs_and_is_marked_late() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    async with order.enter(KEY, posted(-1)) as newer:
        assert not newer.late
    straggler = order.enter(KEY, posted(-2))
    async with straggler:
        assert straggler.late
    async with order.enter(KEY, posted(0)) as next_one:
        assert not next_one.late
    async with order.enter(OTHER, posted(-5)) as elsewhere:
        assert not elsewhere.late  # lateness is per conversation


async def test_leaving_without_running_lets_the_next_turn_go() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    recorder = Recorder()
    refused = order.enter(KEY, posted(-2))  # e.g. a duplicate delivery or a refused turn
    waiting = asyncio.create_task(recorder.run(order.enter(KEY, posted(-1)), "next"))
    await asyncio.sleep(0.01)
    assert recorder.ran == []  # held back by the earlier message's place
    refused.leave()
    refused.leave()  # harmless twice
    async with asyncio.timeout(5):
        await waiting
    assert recorder.ran == ["next"]
    assert len(order) == 0


async def test_ahead_counts_the_turns_before_this_one() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    hold = asyncio.Event()
    recorder = Recorder()
    first = order.enter(KEY, posted(-3))
    running = asyncio.create_task(recorder.run(first, "first", hold))
    await asyncio.sleep(0.01)
    second, third = order.enter(KEY, posted(-2)), order.enter(KEY, posted(-1))
    assert (second.ahead(), third.ahead()) == (1, 2)
    assert order.enter(OTHER, posted(-1)).ahead() == 0
    hold.set()
    async with asyncio.timeout(5):
        await asyncio.gather(running, recorder.run(third, "third"), recorder.run(second, "second"))
    assert recorder.ran == ["first", "second", "third"]


async def test_different_conversations_run_at_the_same_time() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    hold = asyncio.Event()
    recorder = Recorder()
    one = asyncio.create_task(recorder.run(order.enter(KEY, posted(-1)), "one", hold))
    await asyncio.sleep(0.01)
    async with asyncio.timeout(5), order.enter(OTHER, posted(-1)):
        assert recorder.ran == ["one"]  # still holding KEY while OTHER runs
    hold.set()
    await one


def test_positions_from_platform_ids() -> None:
    assert Position.from_slack_ts("1700000000.000100") < Position.from_slack_ts("1700000000.000101")
    assert Position.from_slack_ts("1700000000.000100").posted_at == 1700000000.0001
    assert Position.from_slack_ts("1700000001.5").posted_us == 1_700_000_001_500_000
    # Discord: 2015 epoch milliseconds in the top bits, the increment breaks ties.
    a, b = (1 << 22) * 1000 + 1, (1 << 22) * 1000 + 2
    assert Position.from_snowflake(a) < Position.from_snowflake(b)
    assert Position.from_snowflake(a).posted_us == (1000 + 1_420_070_400_000) * 1000
    assert Position.from_slack_ts("1700000000.000100").settle
    assert Position.from_snowflake(a).settle
    # Malformed or impossible ids fall back to the arrival time (no waiting, never a crash).
    for bad in ("²", "1e5", "", "1700000000.0000001", "-1.5"):
        stamped = Position.from_slack_ts(bad)
        assert not stamped.settle and abs(stamped.posted_at - time.time()) < 60
    for impossible in (0, -5, 2**63, 10**23):
        stamped = Position.from_snowflake(impossible)
        assert not stamped.settle and abs(stamped.posted_at - time.time()) < 60


async def test_a_running_or_finished_turn_has_nobody_ahead_of_it() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    hold = asyncio.Event()
    recorder = Recorder()
    first = order.enter(KEY, posted(-2))
    running = asyncio.create_task(recorder.run(first, "first", hold))
    await asyncio.sleep(0.01)
    waiting = order.enter(KEY, posted(-1))
    assert (first.ahead(), waiting.ahead()) == (0, 1)
    hold.set()
    async with asyncio.timeout(5):
        await asyncio.gather(running, recorder.run(waiting, "second"))
    assert (first.ahead(), waiting.ahead()) == (0, 0)


async def test_a_turn_posted_long_ago_does_not_wait_at_all() -> None:
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    order = LocalTurnOrder(settle_s=0.25, clock=lambda: NOW, sleep=sleep)
    async with order.enter(KEY, posted(-10)), order.enter(OTHER, Position.now(lambda: NOW)):
        pass
    assert asked == []


async def test_two_deliveries_of_one_message_run_one_after_the_other_in_arrival_order() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    recorder = Recorder()
    first, again = order.enter(KEY, posted(-1)), order.enter(KEY, posted(-1))
    async with asyncio.timeout(5):
        await asyncio.gather(recorder.run(again, "again"), recorder.run(first, "first"))
    assert recorder.ran == ["first", "again"] and recorder.overlaps == 0


async def test_a_late_answer_does_not_lower_the_conversations_answered_mark() -> None:
    order = LocalTurnOrder(settle_s=0.0, clock=lambda: NOW)
    async with order.enter(KEY, posted(-1)):
        pass
    async with order.enter(KEY, posted(-5)) as straggler:
        assert straggler.late
    async with order.enter(KEY, posted(-3)) as another:
        assert another.late  # still behind the message answered first
    async with order.enter(KEY, posted(-1)) as same_message_again:
        assert not same_message_again.late  # not after itself


class _RefusingOrder:
    """A shared order whose every ticket fails on entry (its database went away for good)."""

    def __init__(self) -> None:
        self.left = 0

    def enter(self, key: ConversationKey, position: Position) -> _RefusingOrder:
        return self

    late = False

    def ahead(self) -> int:
        return 7  # never consulted: the in-process order counts the turns ahead

    async def __aenter__(self) -> None:
        raise ConnectionError("the shared order is unreachable")

    async def __aexit__(self, *exc: object) -> None:
        raise AssertionError("never entered")

    def leave(self) -> None:
        self.left += 1


async def test_in_process_first_runs_own_turns_in_order_then_through_the_shared_order() -> None:
    local, shared = LocalTurnOrder(settle_s=0.0), LocalTurnOrder(settle_s=0.0)
    order = InProcessFirst(local, shared)
    recorder = Recorder()
    tickets = [(name, order.enter(KEY, posted(t))) for name, t in [("second", -1), ("first", -2)]]
    assert [t.ahead() for _, t in tickets] == [1, 0]
    async with asyncio.timeout(5):
        await asyncio.gather(*(recorder.run(ticket, name) for name, ticket in tickets))
    assert recorder.ran == ["first", "second"]
    assert recorder.overlaps == 0
    assert len(local) == 0 and len(shared) == 0  # both places left


async def test_in_process_first_is_late_when_the_shared_order_says_so() -> None:
    shared = LocalTurnOrder(settle_s=0.0)
    async with shared.enter(KEY, posted(-1)):  # another process answered a later message
        pass
    async with InProcessFirst(LocalTurnOrder(settle_s=0.0), shared).enter(KEY, posted(-2)) as ticket:
        assert ticket.late


async def test_a_turn_the_shared_order_refuses_gives_up_its_local_place() -> None:
    local, shared = LocalTurnOrder(settle_s=0.0), _RefusingOrder()
    order = InProcessFirst(local, shared)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        async with order.enter(KEY, posted(-2)):
            raise AssertionError("never runs")
    assert shared.left == 1
    assert len(local) == 0  # the next turn of this process is not stuck behind it
    async with asyncio.timeout(5), InProcessFirst(local, LocalTurnOrder(0.0)).enter(KEY, posted(-1)):
        pass
