"""Gemini failing every way it does, under `python -m bot` on Slack: each turn ends in an image or
one clear sentence, the process stays up, and no failed turn reaches the stored history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import gemini as g
from tests.auxil import fake_gemini as fg
from tests.auxil.fake_gemini import Behaviour, FakeGemini
from tests.auxil.fake_slack import FakeSlack
from tests.auxil.ledger import LEDGER
from tests.faults.harness import (
    SLACK_SECRETS,
    SlackWorld,
    attempts_for,
    database_problems,
    images_in,
    read_turns,
    slack_env,
    start_slack_bot,
    successful_generations,
    texts_sent,
    uploads_by_prompt,
    warnings_in,
)

# Small enough to keep the suite quick, large enough that a normal answer never times out.
TIMEOUT_S = 2
MAX_ATTEMPTS = 3
HANG_S = 3 * TIMEOUT_S
# Valid JSON the SDK cannot take as a response (a part's text is a number).
WRONG_SHAPE = '{"candidates": [{"content": {"role": "model", "parts": [{"text": 5}]}}]}'
# What a proxy in front of the API answers when the upstream fails.
PROXY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True)
class Case:
    """One fault: what Gemini does to the first turn of a thread, and what the user must see."""

    name: str
    script: tuple[Behaviour, ...]
    # Requests Gemini sees for that turn (first try plus retries).
    attempts: int
    # The exact sentence the user gets, or None when the turn still ends in an image.
    message: str | None
    # The retry waits at least this long after the first attempt (RetryInfo).
    min_wait_s: float = 0.0
    # Conversations hit by the same fault at the same moment.
    threads: int = 1


def _times(behaviour: fg.Behaviour, n: int) -> tuple[Behaviour, ...]:
    return (behaviour,) * n


CASES = (
    # 2 s: longer than the engine's own first backoff (1-1.5 s), so only RetryInfo explains the wait.
    Case("rate_limited_with_retry_info", (fg.rate_limited("2s"),), 2, None, min_wait_s=2.0),
    Case(
        "rate_limited_until_out_of_attempts",
        _times(fg.rate_limited("1s"), MAX_ATTEMPTS),
        MAX_ATTEMPTS,
        g.rate_limited_message(1.0),
        min_wait_s=1.0,
    ),
    Case("rate_limited_beyond_patience", (fg.rate_limited("90s"),), 1, g.rate_limited_message(90.0)),
    Case("daily_quota_exhausted", (fg.quota_exhausted(),), 1, g.MSG_QUOTA_EXHAUSTED),
    Case("server_error_500_once", (fg.error(500),), 2, None),
    Case("server_error_500_persistent", _times(fg.error(500), MAX_ATTEMPTS), MAX_ATTEMPTS, g.MSG_UNAVAILABLE),
    Case(
        "unavailable_503_burst_recovers",
        _times(fg.error(503, "UNAVAILABLE", "The model is overloaded."), MAX_ATTEMPTS - 1),
        MAX_ATTEMPTS,
        None,
        threads=4,
    ),
    Case(
        "unavailable_503_burst_outlasts_retries",
        _times(fg.error(503, "UNAVAILABLE", "The model is overloaded."), MAX_ATTEMPTS),
        MAX_ATTEMPTS,
        g.MSG_UNAVAILABLE,
        threads=2,
    ),
    Case("timeout_once", (fg.delay(HANG_S),), 2, None),
    Case("timeout_persistent", _times(fg.delay(HANG_S), MAX_ATTEMPTS), MAX_ATTEMPTS, g.MSG_TIMEOUT),
    Case("connection_reset_once", (fg.reset_connection(),), 2, None),
    Case(
        "connection_reset_persistent",
        _times(fg.reset_connection(), MAX_ATTEMPTS),
        MAX_ATTEMPTS,
        g.MSG_UNAVAILABLE,
    ),
    Case("malformed_json", (fg.malformed(),), 1, g.MSG_MALFORMED),
    Case("json_of_the_wrong_shape", (fg.raw(200, WRONG_SHAPE, "application/json"),), 1, g.MSG_MALFORMED),
    Case("proxy_html_502_once", (fg.raw(502, PROXY_PAGE, "text/html"),), 2, None),
)


@dataclass
class Outcome:
    """What one conversation of a case saw."""

    thread: str
    first_prompt: str
    second_prompt: str
    first_warnings: list[str]
    first_images: int
    second_warnings: list[str]
    second_images: int
    finished: bool


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(image_side=128) as fake:
        yield fake


async def _conversation(world: SlackWorld, gemini: FakeGemini, case: Case, index: int) -> Outcome:
    first_prompt = f"{case.name} #{index} first"
    second_prompt = f"{case.name} #{index} again"
    gemini.enqueue_for(first_prompt, *case.script)
    first = await world.say(first_prompt)
    finished = True
    try:
        await world.wait_finished(first, 60)
        # The same thread goes on: the process is up and a later turn succeeds.
        second = await world.say(second_prompt, thread_ts=first["ts"])
        await world.wait_finished(second, 30)
    except TimeoutError:
        finished = False
        second = {"ts": "9" * 12}
    posts = world.bot_posts(first["ts"])
    before = [p for p in posts if float(p["ts"]) < float(second["ts"])]
    after = [p for p in posts if float(p["ts"]) > float(second["ts"])]

    return Outcome(
        first["ts"],
        first_prompt,
        second_prompt,
        warnings_in(before),
        images_in(before),
        warnings_in(after),
        images_in(after),
        finished,
    )


def _judge(case: Case, outcome: Outcome, gemini: FakeGemini) -> list[str]:
    """What went wrong with one conversation of a case; [] when it behaved."""
    problems = []
    if not outcome.finished:
        problems.append("a turn never finished")
    expected_first = [case.message] if case.message else []
    if outcome.first_warnings != expected_first:
        problems.append(f"first turn said {outcome.first_warnings!r}, expected {expected_first!r}")
    if outcome.first_images != (0 if case.message else 1):
        problems.append(f"first turn posted {outcome.first_images} images")
    if outcome.second_warnings or outcome.second_images != 1:
        problems.append(f"later turn: {outcome.second_warnings!r}, {outcome.second_images} images")
    tries = attempts_for(gemini, outcome.first_prompt)
    if len(tries) != case.attempts:
        problems.append(f"Gemini saw {len(tries)} attempts, expected {case.attempts}")
    if case.min_wait_s and len(tries) > 1:
        waited = tries[1].received_at - tries[0].received_at
        if waited < case.min_wait_s:
            problems.append(f"retried after {waited:.2f} s, before RetryInfo's {case.min_wait_s} s")
    later = attempts_for(gemini, outcome.second_prompt)
    # The later turn's request is the stored history plus itself: a failed turn is not in it.
    expected_contents = 1 if case.message else 3
    sent = [len(r.contents) for r in later]
    if sent != [expected_contents]:
        problems.append(f"later turn sent {sent} contents, not [{expected_contents}]")
    elif case.message and outcome.first_prompt in texts_sent(later[0]):
        problems.append("the failed prompt was sent again as history")
    return problems


async def test_every_gemini_fault_ends_in_an_image_or_one_clear_sentence(
    gemini: FakeGemini, slack: FakeSlack, tmp_path: Path
) -> None:
    db = tmp_path / "bot.sqlite3"
    env = slack_env(
        gemini, slack, db, GEMINI_TIMEOUT_SECONDS=str(TIMEOUT_S), GEMINI_MAX_ATTEMPTS=str(MAX_ATTEMPTS)
    )
    bot = await start_slack_bot(tmp_path, env, slack)
    world = SlackWorld(slack)
    try:
        # Every case at once, each in its own threads: the faults overlap as they do in production.
        runs = [(case, i) for case in CASES for i in range(case.threads)]
        outcomes = await asyncio.gather(*(_conversation(world, gemini, case, i) for case, i in runs))
        up_after = bot.running
        exit_code = await bot.stop()
    finally:
        bot.ensure_dead()

    turns = read_turns(db)
    stored = [t.prompt for t in turns]
    uploads = uploads_by_prompt(world, gemini)
    generations = successful_generations(gemini)
    report: dict[str, list[str]] = {}
    for (case, index), outcome in zip(runs, outcomes, strict=True):
        problems = _judge(case, outcome, gemini)
        lost = 0
        duplicates = 0
        for prompt in (outcome.first_prompt, outcome.second_prompt):
            shown = len(uploads.get(prompt, []))
            duplicates += max(0, shown - 1) + max(0, generations[prompt] - 1)
            answered = shown or (prompt == outcome.first_prompt and outcome.first_warnings)
            # Lost: the user got nothing, or saw an image the history does not have.
            if not answered or (shown and prompt not in stored):
                lost += 1
            if prompt in stored and not shown:
                problems.append(f"{prompt!r} is in the history but its image was never shown")
        report.setdefault(case.name, []).extend(problems)
        LEDGER.record(
            f"gemini {case.name}#{index}",
            survived=up_after and outcome.finished and not problems,
            lost_turns=lost,
            duplicate_generations=duplicates,
        )

    failures = {name: p for name, p in report.items() if p}
    assert not failures, failures
    assert up_after and exit_code == 0, "\n".join(bot.lines[-20:])
    assert bot.problems(SLACK_SECRETS) == []
    # History holds exactly the turns whose image was shown, each once, and nothing half-written.
    shown_prompts = sorted(p for p, items in uploads.items() for _ in items)
    assert sorted(stored) == shown_prompts
    assert len(stored) == len(set(stored))
    assert database_problems(db) == []
