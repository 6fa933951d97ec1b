"""`python -m bot` as three processes on one PostgreSQL, as a Slack HTTP deployment behind a balancer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.text.messages import INTERRUPTED
from tests.auxil import fake_gemini as fg
from tests.auxil import fake_slack as fs
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.fake_slack import FakeSlack, SlackSender, Socket
from tests.auxil.process import BotProcess

CHANNEL = "C0GENERAL"
SECRETS = (fs.BOT_TOKEN, fs.SIGNING_SECRET, "process-key")


@dataclass
class Replica:
    """One bot process and how Slack reaches it: signed events to its port (HTTP mode), or
    envelopes down its own Socket Mode connection."""

    process: BotProcess
    sender: SlackSender | None = None
    slack: FakeSlack | None = None
    socket: Socket | None = None

    async def deliver(self, event: dict[str, Any], retry_num: int | None = None) -> None:
        body = FakeSlack.event_body(event)
        if self.sender is not None:
            status, _ = await self.sender.event(body, retry_num=retry_num)
            assert status == 200
        else:
            assert self.slack is not None and self.socket is not None
            ack = await self.slack.send_envelope(
                "events_api", body, retry_attempt=retry_num or 0, socket=self.socket
            )
            assert "envelope_id" in ack


def http_env(fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, **extra: str) -> dict[str, str]:
    """A Slack HTTP-mode replica's environment: every replica the same but for its port."""
    return {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_SIGNING_SECRET": fs.SIGNING_SECRET,
        "DATABASE_URL": postgres_url,
        "PORT": "0",
        **extra,
    }


@asynccontextmanager
async def replicas(
    count: int, tmp_path: Path, fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, **extra: str
) -> AsyncIterator[list[Replica]]:
    env = http_env(fake_gemini, slack, postgres_url, **extra)
    async with AsyncExitStack() as stack:
        started = []
        for i in range(count):
            started.append(await start_replica(tmp_path / f"p{i}", env, stack))
        yield started
        for replica in started:
            if replica.process.running:
                assert await replica.process.stop(20) == 0
            assert replica.process.problems(SECRETS) == []


async def start_replica(cwd: Path, env: dict[str, str], stack: AsyncExitStack) -> Replica:
    await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
    process = await BotProcess.start(cwd, env)
    stack.callback(process.ensure_dead)
    port = (await process.wait_for_log("slack connected", limit_s=60))["port"]
    sender = await stack.enter_async_context(SlackSender(f"http://127.0.0.1:{port}/slack/events"))
    return Replica(process, sender)


@asynccontextmanager
async def socket_replicas(
    count: int, tmp_path: Path, fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, **extra: str
) -> AsyncIterator[list[Replica]]:
    """``count`` Socket Mode processes, each with its own connection to Slack."""
    env = {
        "GEMINI_API_KEY": "process-key",
        "GOOGLE_GEMINI_BASE_URL": fake_gemini.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": postgres_url,
        **extra,
    }
    async with AsyncExitStack() as stack:
        started = []
        for i in range(count):
            before = len(slack.sockets)
            cwd = tmp_path / f"s{i}"
            await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
            process = await BotProcess.start(cwd, env)
            stack.callback(process.ensure_dead)
            await process.wait_for_log("slack connected", limit_s=60)
            await slack.wait_for(lambda b=before: len(slack.sockets) > b, 30)
            started.append(Replica(process, slack=slack, socket=slack.sockets[before]))
        yield started
        for replica in started:
            assert await replica.process.stop(20) == 0
            assert replica.process.problems(SECRETS) == []


def mention(slack: FakeSlack, text: str, user: str = fs.ALICE) -> dict[str, Any]:
    return slack.user_message(CHANNEL, f"<@{fs.BOT_USER_ID}> {text}", user=user)


async def answered(slack: FakeSlack, thread_ts: str, count: int, limit_s: float = 60) -> list[dict[str, Any]]:
    """The bot's first ``count`` messages in a thread once they are there and nothing is working."""

    def done() -> list[dict[str, Any]] | None:
        posted = slack.thread(CHANNEL, thread_ts)
        return posted if len(posted) >= count and not any(slack.reactions.values()) else None

    return await slack.wait_for(done, limit_s=limit_s)


def said(content: dict[str, Any]) -> str:
    return " ".join(str(p["text"]) for p in content.get("parts") or [] if "text" in p)


def interrupted_notices(slack: FakeSlack, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in slack.thread(CHANNEL, thread_ts) if m.get("text") == INTERRUPTED]


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_a_thread_spread_over_three_processes_is_answered_in_posting_order(
    fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, tmp_path: Path, mode: str
) -> None:
    slack.realtime_ts = True
    start = replicas if mode == "http" else socket_replicas
    async with start(3, tmp_path, fake_gemini, slack, postgres_url, TURN_ORDER_SETTLE_MS="2000") as bots:
        root = mention(slack, "a lighthouse")
        # The balancer sends the two copies of the mention to different processes.
        await asyncio.gather(bots[0].deliver(root), bots[1].deliver(FakeSlack.app_mention(root)))
        await answered(slack, root["ts"], 2)
        names = ["one", "two", "three", "four", "five", "six"]
        burst = [slack.user_message(CHANNEL, f"burst {n}", thread_ts=root["ts"]) for n in names]
        watch = fg.OverlapWatch()
        fake_gemini.enqueue(*watch.behaviours(len(burst)))
        arrival = (4, 1, 5, 0, 3, 2)
        await asyncio.gather(*(bots[i % 3].deliver(burst[n]) for i, n in enumerate(arrival)))
        await answered(slack, root["ts"], 2 + 2 * len(burst))
    requests = fake_gemini.requests
    assert [r.prompt for r in requests] == ["a lighthouse", *(f"burst {n}" for n in names)]
    assert [said(r.contents[-3]) for r in requests[1:]] == [r.prompt for r in requests[:-1]]
    assert watch.peak == 1


async def test_retries_and_both_copies_of_a_mention_on_different_processes_generate_once(
    fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(3, tmp_path, fake_gemini, slack, postgres_url) as bots:
        root = mention(slack, "a lighthouse")
        await asyncio.gather(
            bots[0].deliver(root),
            bots[1].deliver(FakeSlack.app_mention(root)),
            bots[2].deliver(root, retry_num=1),
            bots[1].deliver(root, retry_num=2),
        )
        posted = await answered(slack, root["ts"], 2)
        await asyncio.sleep(1.0)  # anything extra would have been posted by now
    assert [r.prompt for r in fake_gemini.requests] == ["a lighthouse"]
    assert len(slack.thread(CHANNEL, root["ts"])) == len(posted) == 2


async def test_a_limit_of_three_images_an_hour_holds_across_processes(
    fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(3, tmp_path, fake_gemini, slack, postgres_url, USER_IMAGES_PER_HOUR="3") as bots:
        fake_gemini.latency_s = 0.5  # all six are in flight together
        prompts = [mention(slack, f"picture {n}") for n in range(6)]
        await asyncio.gather(*(bots[n % 3].deliver(m) for n, m in enumerate(prompts)))
        threads = [await answered(slack, m["ts"], 1) for m in prompts]
    refusals = [t[0]["text"] for t in threads if t[0]["text"].startswith(":warning:")]
    assert len(fake_gemini.requests) == 3
    assert len(refusals) == 3
    assert all("You've made 3 images in the last hour, the limit for each person" in r for r in refusals)


def held_answer() -> tuple[fg.Behaviour, asyncio.Event]:
    release = asyncio.Event()

    async def respond(fake: FakeGemini, rec: fg.RecordedRequest, req: Any) -> Any:
        await release.wait()
        return await fg.image().respond(fake, rec, req)

    return fg.Behaviour("held", respond), release


async def test_a_killed_process_hands_its_thread_to_another_within_its_lease(
    fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(3, tmp_path, fake_gemini, slack, postgres_url, PROCESS_LEASE_S="3") as bots:
        root = mention(slack, "a lighthouse")
        await bots[0].deliver(root)
        await answered(slack, root["ts"], 2)
        behaviour, release = held_answer()
        fake_gemini.enqueue(behaviour)
        doomed = slack.user_message(CHANNEL, "add a boat", thread_ts=root["ts"])
        await bots[0].deliver(doomed)
        await fake_gemini.wait_for_requests(2)
        assert await bots[0].process.kill() != 0  # SIGKILL mid-turn
        release.set()
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        after = slack.user_message(CHANNEL, "add gulls", thread_ts=root["ts"])
        await bots[1].deliver(after)
        await slack.wait_for(lambda: len(fake_gemini.requests) >= 3, limit_s=30)
        waited = loop.time() - killed_at
        await slack.wait_for(lambda: interrupted_notices(slack, root["ts"]), limit_s=30)
        await answered(slack, root["ts"], 5)
        await asyncio.sleep(2.0)  # every live process has swept at least once more
    prompts = [r.prompt for r in fake_gemini.requests]
    assert prompts == ["a lighthouse", "add a boat", "add gulls"]
    # The cut-off turn left nothing: "add gulls" continues from the first image.
    assert [said(c) for c in fake_gemini.requests[2].contents if c["role"] == "user"] == [
        "a lighthouse",
        "add gulls",
    ]
    assert waited < 30
    assert len(interrupted_notices(slack, root["ts"])) == 1


async def test_a_rolling_restart_finishes_the_old_process_turns_without_a_false_notice(
    fake_gemini: FakeGemini, slack: FakeSlack, postgres_url: str, tmp_path: Path
) -> None:
    async with replicas(1, tmp_path, fake_gemini, slack, postgres_url, PROCESS_LEASE_S="3") as bots:
        old = bots[0]
        behaviour, release = held_answer()
        fake_gemini.enqueue(behaviour)
        root = mention(slack, "a lighthouse")
        await old.deliver(root)
        await fake_gemini.wait_for_requests(1)
        async with AsyncExitStack() as stack:
            env_cwd = tmp_path / "new"
            new = await start_replica(
                env_cwd, http_env(fake_gemini, slack, postgres_url, PROCESS_LEASE_S="3"), stack
            )
            await asyncio.sleep(2.0)  # the new process has started and swept
            stopping = asyncio.create_task(old.process.stop(20))  # the deploy stops the old one
            await asyncio.sleep(0.5)
            release.set()  # its turn finishes within the grace
            assert await stopping == 0
            await answered(slack, root["ts"], 2)
            reply = slack.user_message(CHANNEL, "add gulls", thread_ts=root["ts"])
            await new.deliver(reply)
            await answered(slack, root["ts"], 4)
            await asyncio.sleep(2.0)
            assert await new.process.stop(20) == 0
            assert new.process.problems(SECRETS) == []
    assert interrupted_notices(slack, root["ts"]) == []
    assert [r.prompt for r in fake_gemini.requests] == ["a lighthouse", "add gulls"]
