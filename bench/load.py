"""Load shared by the ordering and capacity benchmarks: deliveries and closed-loop lanes on one Bot."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench.harness import Bot, TimingSink, conversation
from bot.entry.routing import Inbound
from bot.vocabulary import Author, Position, Turn

CAPACITY_PROMPT = "a harbour at dawn, oil on canvas"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Message ``index`` of thread ``thread``, posted at ``posted_us`` (a platform stamp)."""

    thread: int
    index: int
    posted_us: int

    @property
    def text(self) -> str:
        return prompt(self.thread, self.index)


def prompt(thread: int, index: int) -> str:
    return f"thread {thread} message {index}: a lantern, variation {index}"


def parse_prompt(text: str) -> tuple[int, int] | None:
    """(thread, index) back from a prompt the fake saw; None for anything else."""
    words = text.split()
    if len(words) < 4 or words[0] != "thread" or words[2] != "message":
        return None
    return int(words[1]), int(words[3].rstrip(":"))


def deliveries(threads: int, messages: int, posted_us: int, rng: random.Random) -> list[Delivery]:
    """``messages`` back-to-back messages (1 ms apart) in each of ``threads`` threads, each
    thread's shuffled, then threads interleaved: the order they reach the bot."""
    per_thread = []
    for t in range(threads):
        lane = [Delivery(t, i, posted_us + i * 1000) for i in range(messages)]
        rng.shuffle(lane)
        per_thread.append(lane)
    out = [d for round_ in zip(*per_thread, strict=True) for d in round_]
    return out


async def deliver_all(bot: Bot, items: Sequence[Delivery]) -> dict[str, int]:
    """Deliver every message at once (as a platform does under load); counts of each outcome."""
    assert bot.service is not None
    service = bot.service

    async def one(d: Delivery) -> str:
        key = conversation(f"order-{d.thread}")
        turn = Turn(
            key=key,
            message_id=f"{d.thread}-{d.index}",
            author=Author(f"user-{d.thread}", f"User {d.thread}"),
            text=d.text,
            position=Position(d.posted_us, settle=True),
        )
        # As an adapter does: one entry, whose place is taken on arrival, before any await.
        result = await service.receive(Inbound(turn, addressed=True), TimingSink())
        assert result is not None  # addressed: always a turn
        return result.status.value

    statuses = await asyncio.gather(*(one(d) for d in items))
    return dict(Counter(statuses))


@dataclass(frozen=True, slots=True)
class LaneLog:
    """When each turn of a capacity run was answered (``time.time()``), and what failed."""

    answered_at: list[float]
    failed: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def run_lanes(bot: Bot, lanes: int, until: float, name: str) -> LaneLog:
    """``lanes`` conversations, each sending its next message as soon as the last is answered,
    until the wall clock reaches ``until``."""
    assert bot.service is not None
    service = bot.service
    answered: list[float] = []
    failed = 0

    async def lane(n: int) -> None:
        nonlocal failed
        key = conversation(f"{name}-lane-{n}")
        author = Author(f"{name}-user-{n}", f"User {n}")
        while time.time() < until:
            turn = Turn(key=key, message_id=uuid.uuid4().hex, author=author, text=CAPACITY_PROMPT)
            sink = TimingSink()
            result = await service.handle_turn(turn, sink)
            if result.turn_id is not None and sink.replies and sink.replies[-1].images:
                answered.append(time.time())
            else:
                failed += 1

    await asyncio.gather(*(lane(n) for n in range(lanes)))
    return LaneLog(answered, failed)


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """What the model was asked, judged against each thread's posting order."""

    generations: int
    out_of_order: int
    duplicates: int
    missing: int


def check_order(prompts: Sequence[str], threads: int, messages: int) -> OrderCheck:
    """A generation is out of order when its message is not the next of its thread (counting
    what that thread has had generated so far), a duplicate when its message was generated before."""
    done: dict[int, set[int]] = {t: set() for t in range(threads)}
    out_of_order = duplicates = generations = 0
    for text in prompts:
        parsed = parse_prompt(text)
        if parsed is None:
            continue
        thread, index = parsed
        generations += 1
        seen = done[thread]
        if index in seen:
            duplicates += 1
            continue
        if index != len(seen):
            out_of_order += 1
        seen.add(index)
    missing = threads * messages - sum(len(s) for s in done.values())
    return OrderCheck(generations, out_of_order, duplicates, missing)
