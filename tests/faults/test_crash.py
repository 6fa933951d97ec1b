"""SIGKILL `python -m bot` at random points of a turn, 20 times: after every kill the database is
sound, no turn is half-written, and after every restart the conversation goes on with its history."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.entry.service import INTERRUPTED_MESSAGE
from tests.auxil import fake_gemini as fg
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.ledger import LEDGER
from tests.auxil.process import BotProcess
from tests.faults.databases import Database
from tests.faults.harness import (
    SLACK_SECRETS,
    SlackWorld,
    attempts_for,
    generated_images,
    signalling,
    slack_env,
    start_slack_bot,
    texts_sent,
)

KILLS = 20
# How long Gemini "thinks" about a doomed turn, so a kill can land while it does.
THINKING_S = 0.3
# Where in a turn the kill lands, each a trigger the fakes can see plus a random offset (max s):
PHASES: dict[str, float] = {
    "delivered": 0.015,  # the mention was acknowledged; the bot is claiming it or about to
    "working": 0.01,  # the working reaction went on; images, history, the Gemini call are next
    "gemini": THINKING_S,  # Gemini has the request and is answering
    "answered": 0.012,  # Gemini's answer is on the wire; parsing, storing, uploading follow
    "posting": 0.01,  # the image upload has begun
}


@dataclass
class Kill:
    """One kill: where it landed and what it left behind."""

    index: int
    phase: str
    offset_s: float
    prompt: str
    new_thread: bool = False
    ts: str = ""
    thread: str = ""
    stored: bool = False
    shown: bool = False
    # The bot took the message (claimed it) before the kill, and told the person after a
    # restart that it was cut off (the notice in the thread, the working reaction removed).
    claimed: bool = False
    announced: bool = False
    problems: tuple[str, ...] = ()


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    # Images of a few hundred kB, so storing and uploading one takes long enough to be cut.
    async with FakeGemini(image_side=512, noisy=True) as fake:
        yield fake


def _seed() -> int:
    return int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(2**32))


async def _kill_during_turn(
    bot: BotProcess, world: SlackWorld, gemini: FakeGemini, kill: Kill, thread_ts: str | None
) -> str:
    """Send the doomed turn, wait for its phase's trigger, wait the offset, SIGKILL. Returns why
    the turn never reached its trigger ('' when it did; it is killed either way)."""
    slack = world.slack
    answered = asyncio.Event()
    if kill.phase == "gemini":
        gemini.enqueue_for(kill.prompt, fg.delay(THINKING_S))
    elif kill.phase == "answered":
        gemini.enqueue_for(kill.prompt, signalling(fg.image(), answered.set))
    uploads_before = len(slack.calls_to("files.getUploadURLExternal"))
    requests_before = len(gemini.requests)
    message = await world.say(kill.prompt, thread_ts=thread_ts)
    kill.ts = str(message["ts"])
    kill.thread = thread_ts or kill.ts
    missed = ""
    try:
        async with asyncio.timeout(10):
            if kill.phase == "working":
                await slack.wait_for(lambda: world.working(message))
            elif kill.phase == "gemini":
                await gemini.wait_for_requests(requests_before + 1)
            elif kill.phase == "answered":
                await answered.wait()
            elif kill.phase == "posting":
                await slack.wait_for(
                    lambda: len(slack.calls_to("files.getUploadURLExternal")) > uploads_before
                )
    except TimeoutError:
        missed = f"{kill.prompt!r} never reached the {kill.phase} phase"
    else:
        await asyncio.sleep(kill.offset_s)
    await bot.kill()
    return missed


async def _finish_turn(world: SlackWorld, prompt: str, thread_ts: str | None) -> tuple[str, bool]:
    """Send a turn and wait for it to finish; its thread and whether it did."""
    message = await world.say(prompt, thread_ts=thread_ts)
    try:
        await world.wait_finished(message, 30)
    except TimeoutError:
        return str(message["ts"]), False
    return str(message["ts"]), True


async def test_sigkill_at_random_points_never_leaves_a_half_written_turn(
    gemini: FakeGemini, slack: FakeSlack, tmp_path: Path, database: Database
) -> None:
    seed = _seed()
    print(f"crash suite seed: {seed} (FAULT_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    phases = [phase for phase in PHASES for _ in range(KILLS // len(PHASES))]
    rng.shuffle(phases)
    # The whole history is re-sent every turn, so each request shows exactly what was stored. On
    # PostgreSQL a killed process holds its conversations until its lease runs out: a short one.
    lease = {"PROCESS_LEASE_S": str(int(database.lease_s))} if database.lease_s else {}
    env = slack_env(gemini, slack, database.url, CONTEXT_MAX_IMAGES="all", **lease)
    world = SlackWorld(slack)
    kills: list[Kill] = []
    # Per restart: damage found once the bot had reopened the database, and whether its first
    # turn carried exactly the stored history ("" when both are fine).
    restarts: list[str] = []
    main: str | None = None
    bot: BotProcess | None = None
    bots: list[BotProcess] = []

    async def restart_and_continue(prompt: str) -> None:
        nonlocal bot, main
        bot = await start_slack_bot(tmp_path, env, slack)
        bots.append(bot)
        reopened = "; ".join(await database.problems())
        history = [t.prompt for t in await database.turns() if t.thread == main]
        root, finished = await _finish_turn(world, prompt, main)
        main = main or root
        if not finished:
            restarts.append(reopened or f"{prompt!r} got no answer")
        else:
            restarts.append(reopened or _continuation_problem(gemini, prompt, history))

    try:
        for index, phase in enumerate(phases):
            await restart_and_continue(f"crash {index} survives")
            assert bot is not None and main is not None
            kill = Kill(index, phase, rng.uniform(0, PHASES[phase]), f"crash {index} doomed ({phase})")
            # Some doomed turns start a conversation: its first write creates the conversation too.
            kill.new_thread = rng.random() < 0.3
            missed = await _kill_during_turn(bot, world, gemini, kill, None if kill.new_thread else main)
            kill.problems = (*(await database.problems()), *([missed] if missed else []))
            kills.append(kill)
        await restart_and_continue("after every crash")
        assert bot is not None
        await _every_cut_off_turn_taken(database)
        exit_code = await bot.stop()
    finally:
        if bot is not None:
            bot.ensure_dead()

    turns = await database.turns()
    stored_prompts = [t.prompt for t in turns]
    made = generated_images(gemini)
    shown = [made.get(hashlib.sha256(u.data).hexdigest()) for u in world.posted_uploads()]
    claimed = await database.claimed()
    unreacted = {c.params.get("timestamp") for c in slack.calls_to("reactions.remove")}
    for kill, after_restart in zip(kills, restarts[1:], strict=True):
        kill.stored = kill.prompt in stored_prompts
        kill.shown = kill.prompt in shown
        kill.claimed = kill.ts in claimed
        notices = [p for p in world.bot_posts(kill.thread) if p.get("text") == INTERRUPTED_MESSAGE]
        kill.announced = bool(notices) and kill.ts in unreacted
        generations = len([r for r in attempts_for(gemini, kill.prompt) if r.status == 200])
        LEDGER.record(
            f"crash #{kill.index} {kill.phase}+{kill.offset_s * 1000:.0f}ms "
            f"on {database.url.split(':')[0]} (seed {seed})",
            survived=not kill.problems and not after_restart,
            # Lost: the user saw the image but the history lacks the turn, or the bot took the
            # message and the person was never answered nor told it was cut off.
            lost_turns=int(kill.shown and not kill.stored)
            + int(kill.claimed and not kill.shown and not kill.announced),
            duplicate_generations=max(0, generations - 1) + max(0, shown.count(kill.prompt) - 1),
        )
    print("kills: index, phase, offset ms, new thread, claimed, in history, image shown, announced")
    for k in kills:
        print(
            f"  {k.index:2d} {k.phase:9s} {k.offset_s * 1000:5.1f}",
            k.new_thread,
            k.claimed,
            k.stored,
            k.shown,
            k.announced,
        )
    assert [k.problems for k in kills if k.problems] == [], f"seed {seed}"
    assert [p for p in restarts if p] == [], f"seed {seed}"
    assert [k.prompt for k in kills if k.shown and not k.stored] == [], f"lost turns, seed {seed}"
    unanswered = [k.prompt for k in kills if k.claimed and not k.shown and not k.announced]
    assert unanswered == [], f"cut off and never told, seed {seed}"
    assert exit_code == 0
    assert [b.problems(SLACK_SECRETS) for b in bots if b.problems(SLACK_SECRETS)] == []
    # Every stored turn is whole; the main conversation is one unbroken chain in order, with
    # every turn that was allowed to finish; a doomed first turn is a conversation of its own.
    assert await database.problems() == []
    thread = [t for t in turns if t.thread == main]
    assert [t.parent_id for t in thread] == [None, *(t.id for t in thread[:-1])]
    survivors = [t.prompt for t in thread if "survives" in t.prompt]
    assert survivors == [f"crash {i} survives" for i in range(KILLS)]
    others = [t for t in turns if t.thread != main]
    assert all(t.parent_id is None and "doomed" in t.prompt for t in others)
    assert len({t.thread for t in others}) == len(others)
    # Nothing was generated twice: no prompt reached Gemini more than once.
    assert max(len(attempts_for(gemini, p)) for p in {r.prompt for r in gemini.requests}) == 1


async def _every_cut_off_turn_taken(database: Database) -> None:
    """A dead process's cut-off turns are announced once its lease has run out (at once on
    SQLite, where the next start takes them): wait until none is left unfinished."""
    for _ in range(int((database.lease_s * 3 + 5) / 0.1)):
        if not await database.unfinished():
            return
        await asyncio.sleep(0.1)


def _continuation_problem(gemini: FakeGemini, prompt: str, stored: list[str]) -> str:
    """'' when the turn's request carried exactly the stored history (and the turn's image was
    answered); otherwise what was wrong."""
    requests = attempts_for(gemini, prompt)
    if len(requests) != 1 or requests[0].status != 200:
        return f"{prompt!r}: {len(requests)} requests"
    sent = texts_sent(requests[0])
    # Each stored turn sends its prompt and the model's "Here is your image." text.
    sent_prompts = [t for t in sent if t not in ("Here is your image.",) and not t.startswith("**Planning**")]
    if sent_prompts != [*stored, prompt]:
        return f"{prompt!r} carried {sent_prompts}, stored was {stored}"
    return ""
