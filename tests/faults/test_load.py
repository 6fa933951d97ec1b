"""A burst of 300 turns over 100 Slack threads into `python -m bot`: every turn answered, each
thread's turns reach Gemini and the history in the order they were sent, nothing generated twice."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.auxil import fake_slack as fs
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.ledger import LEDGER
from tests.faults.databases import Database
from tests.faults.harness import (
    SLACK_SECRETS,
    SlackWorld,
    most_in_flight,
    slack_env,
    start_slack_bot,
    uploads_by_prompt,
    warnings_in,
)

CONVERSATIONS = 100
TURNS_EACH = 3
# Gemini's time per image: long enough that the burst fills every generation slot.
THINKING_S = 0.25
MAX_CONCURRENT = 32
USERS = [f"U{n:03d}LOAD" for n in range(10)]


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(image_side=64, latency_s=THINKING_S) as fake:
        yield fake


def _prompt(conversation: int, turn: int) -> str:
    return f"load c{conversation:03d} t{turn}"


def _burst_order(rng: random.Random) -> list[tuple[int, int]]:
    """Every (conversation, turn), shuffled across conversations, in order within each."""
    remaining = {c: 0 for c in range(CONVERSATIONS)}
    order = []
    while remaining:
        conversation = rng.choice(sorted(remaining))
        order.append((conversation, remaining[conversation]))
        remaining[conversation] += 1
        if remaining[conversation] == TURNS_EACH:
            del remaining[conversation]
    return order


async def test_a_burst_of_300_turns_over_100_threads_is_answered_in_order_once_each(
    gemini: FakeGemini, slack: FakeSlack, tmp_path: Path, database: Database
) -> None:
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"load burst seed: {seed}")
    rng = random.Random(seed)
    env = slack_env(gemini, slack, database.url, MAX_CONCURRENT_GENERATIONS=str(MAX_CONCURRENT))
    bot = await start_slack_bot(tmp_path, env, slack)
    world = SlackWorld(slack)
    roots: dict[int, str] = {}
    total = CONVERSATIONS * TURNS_EACH
    try:
        started = time.monotonic()
        # Sent one after another as fast as the socket takes them, each mention delivered twice
        # (message and app_mention) in a random order: the order the bot receives is defined.
        for conversation, turn in _burst_order(rng):
            message = await world.say(
                _prompt(conversation, turn),
                thread_ts=roots.get(conversation),
                user=USERS[conversation % len(USERS)],
                app_mention_first=rng.random() < 0.5,
            )
            roots.setdefault(conversation, str(message["ts"]))
        sent_s = time.monotonic() - started

        def finished() -> int:
            return sum(1 for entry in slack.reaction_log if entry[0] == "remove")

        await slack.wait_for(lambda: finished() >= total, limit_s=90)
        answered_s = time.monotonic() - started
        up_after = bot.running
        exit_code = await bot.stop()
    finally:
        bot.ensure_dead()
    busiest = most_in_flight(gemini)
    print(
        f"load burst: {total} turns sent in {sent_s:.1f} s, all answered after {answered_s:.1f} s, "
        f"at most {busiest} Gemini calls at once"
    )

    prompts = [_prompt(c, t) for c in range(CONVERSATIONS) for t in range(TURNS_EACH)]
    uploads = uploads_by_prompt(world, gemini)
    requests = Counter(r.prompt for r in gemini.requests)
    turns = await database.turns()
    stored = {t.prompt for t in turns}
    lost = [p for p in prompts if not uploads.get(p) or p not in stored]
    duplicates = sum(max(0, n - 1) for n in requests.values()) + sum(
        max(0, len(items) - 1) for items in uploads.values()
    )
    out_of_order = []
    for conversation, root in roots.items():
        mine = [_prompt(conversation, t) for t in range(TURNS_EACH)]
        reached = [r.prompt for r in gemini.requests if r.prompt in mine]
        contents = [len(r.contents) for r in gemini.requests if r.prompt in mine]
        history = [t for t in turns if t.thread == root]
        shown = [u.share_ts for p in mine for u in uploads.get(p, [])]
        if (
            reached != mine
            or contents != [1, 3, 5]
            or [t.prompt for t in history] != mine
            or [t.parent_id for t in history] != [None, *(t.id for t in history[:-1])]
            or shown != sorted(shown, key=float)
        ):
            out_of_order.append(conversation)
    warnings = [w for root in roots.values() for w in warnings_in(world.bot_posts(root))]
    LEDGER.record(
        f"load {total} turns over {CONVERSATIONS} threads on {database.url.split(':')[0]} (seed {seed})",
        survived=up_after and exit_code == 0 and not out_of_order and not warnings,
        lost_turns=len(lost),
        duplicate_generations=duplicates,
    )

    assert (lost, duplicates) == ([], 0), f"seed {seed}"
    assert warnings == []
    assert out_of_order == [], f"seed {seed}"
    assert sum(requests.values()) == total and len(turns) == total
    # The cap held while the burst kept every slot busy.
    assert busiest <= MAX_CONCURRENT
    assert up_after and exit_code == 0
    assert bot.problems([*SLACK_SECRETS, fs.BOT_TOKEN]) == []
    assert await database.problems() == []
