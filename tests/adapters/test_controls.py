"""Cost and access controls in the core: allow-lists, limits, the generation queue, usage, retention."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from pathlib import Path

from bot.entry.access import REFUSAL_MESSAGE
from bot.entry.service import TurnStatus, prompt_too_long_message, queue_position_message
from bot.vocabulary import Author, ConversationKey
from tests.auxil import image_factory as img
from tests.auxil.core import ALICE, KEY, Core, bytes_ref
from tests.auxil.fake_gemini import FakeGemini
from tests.auxil.sinks import RecordingSink

DISCORD = ConversationKey("discord", "guild-1", "chan-1", "thread-1")


async def started(fake: FakeGemini, tmp_path: Path, **env: str) -> Core:
    return await Core(fake, tmp_path / "db.sqlite3", env).start()


async def test_strangers_get_one_polite_refusal_and_no_generation(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await started(fake_gemini, tmp_path, DISCORD_ALLOWED_USERS="friend")
    try:
        first, sink = await core.say("a cat", key=DISCORD)
        assert first.status is TurnStatus.REFUSED
        assert sink.notices == [REFUSAL_MESSAGE] and sink.replies == []
        second, sink = await core.say("a dog", key=DISCORD)
        assert second.status is TurnStatus.REFUSED and sink.events == []
        assert fake_gemini.requests == []
    finally:
        await core.stop()


async def test_silent_refusal(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core = await started(fake_gemini, tmp_path, DISCORD_ALLOWED_GUILDS="other", REFUSE_SILENTLY="true")
    try:
        result, sink = await core.say("a cat", key=DISCORD)
        assert result.status is TurnStatus.REFUSED and sink.events == []
    finally:
        await core.stop()


async def test_hourly_limit_refuses_and_blocked_images_do_not_count(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    from tests.auxil import fake_gemini as fg

    core = await started(fake_gemini, tmp_path, USER_IMAGES_PER_HOUR="2")
    try:
        fake_gemini.enqueue(fg.finish("IMAGE_SAFETY"))
        await core.say("blocked")
        await core.say("one")
        await core.say("two")
        result, sink = await core.say("three")
        assert result.status is TurnStatus.LIMITED
        assert sink.last.text.startswith("You've made 2 images in the last hour, the limit for each person;")
        assert len(fake_gemini.requests) == 3
        other, _ = await core.say("bob's", key=ConversationKey("console", "local", "terminal", "bob"))
        assert other.status is TurnStatus.LIMITED  # same console author
    finally:
        await core.stop()


async def test_admins_bypass_per_person_limits(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core = await started(fake_gemini, tmp_path, USER_IMAGES_PER_HOUR="1", ADMIN_USERS=f"console:{ALICE.id}")
    try:
        for prompt in ("one", "two", "three"):
            result, _ = await core.say(prompt)
            assert result.status is TurnStatus.ANSWERED
    finally:
        await core.stop()


async def test_spend_cap(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core = await started(fake_gemini, tmp_path, DAILY_SPEND_CAP_USD="0.03")
    try:
        await core.say("one")
        result, sink = await core.say("two")
        assert result.status is TurnStatus.LIMITED
        assert sink.last.text.startswith("The bot has reached today's spending cap of $0.03;")
    finally:
        await core.stop()


async def test_concurrency_cap_queues_fairly_and_says_the_position(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await started(fake_gemini, tmp_path, MAX_CONCURRENT_GENERATIONS="1")
    fake_gemini.latency_s = 0.2
    try:
        keys = [ConversationKey("console", "local", "terminal", f"t{i}") for i in range(3)]
        sinks = [RecordingSink() for _ in keys]
        first = asyncio.create_task(core.say("first", key=keys[0], sink=sinks[0]))
        await fake_gemini.wait_for_requests(1)
        rest = [
            asyncio.create_task(core.say(f"p{i}", key=k, sink=s))
            for i, (k, s) in enumerate(zip(keys[1:], sinks[1:], strict=True))
        ]
        results = await asyncio.gather(first, *rest)
        assert all(r.status is TurnStatus.ANSWERED for r, _ in results)
        assert sinks[0].notices == []
        assert sinks[1].notices == [queue_position_message(1)]
        assert sinks[2].notices == [queue_position_message(2)]
    finally:
        await core.stop()


async def test_queue_bound_refuses_with_a_clear_message(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core = await started(fake_gemini, tmp_path, MAX_CONCURRENT_GENERATIONS="1", MAX_QUEUED_TURNS="1")
    fake_gemini.latency_s = 0.3
    try:
        keys = [ConversationKey("console", "local", "terminal", f"t{i}") for i in range(3)]
        running = asyncio.create_task(core.say("a", key=keys[0]))
        await fake_gemini.wait_for_requests(1)
        waiting = asyncio.create_task(core.say("b", key=keys[1]))
        await asyncio.sleep(0.05)
        refused, sink = await core.say("c", key=keys[2])
        assert refused.status is TurnStatus.LIMITED
        assert (
            sink.last.text
            == "The bot is very busy right now (1 image waiting); please try again in a few minutes."
        )
        await asyncio.gather(running, waiting)
    finally:
        await core.stop()


async def test_prompt_over_the_limit_is_refused(core: Core) -> None:
    result, sink = await core.say("x" * 20_000)
    assert result.status is TurnStatus.REJECTED
    assert sink.last.text == "That prompt is 20,000 characters long; please keep it under 4,000 characters."
    assert sink.last.text == prompt_too_long_message(20_000, 4000)
    assert core.fake.requests == []


async def test_usage_report_for_a_person_and_for_an_admin(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    core = await started(fake_gemini, tmp_path, ADMIN_USERS="console:boss")
    try:
        await core.say("one")
        await core.say("two")
        report = await core.service.usage_report(KEY, ALICE)
        assert report.splitlines() == [
            "You: 2 images today (about $0.08), 2 images this month (about $0.08).",
            "Your limits: 60 an hour and 200 a day.",
            "This conversation draws with gemini-2.5-flash-image.",
        ]
        admin = await core.service.usage_report(KEY, Author("boss"))
        assert (
            admin.splitlines()[1]
            == "Everyone: 2 images today (about $0.08), 2 images this month (about $0.08)."
        )
        assert admin.splitlines()[-2:] == [
            "This conversation draws with gemini-2.5-flash-image.",
            "You are an admin, so per-person limits don't apply to you.",
        ]
    finally:
        await core.stop()


async def test_retention_forgets_idle_conversations_and_leaves_no_image_bytes(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await started(fake_gemini, tmp_path, RETENTION_DAYS="30")
    try:
        photo = img.noise_jpeg(200, 200)
        old = ConversationKey("console", "local", "terminal", "old")
        await core.say("an old photo edit", bytes_ref("old.jpg", photo), key=old)
        await core.say("a recent one")
        generated = fake_gemini.requests[0].response_images[-1].data
        with sqlite3.connect(core.db_path) as db:
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE thread = 'old'", (time.time() - 31 * 86400,)
            )
        assert await core.retention().apply() == 1
        assert await core.store.conversation(old) is None
        assert await core.store.conversation(KEY) is not None
        await core.store.checkpoint()
        raw = await asyncio.to_thread(lambda: b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite3*")))
        assert photo[1000:1064] not in raw
        with sqlite3.connect(core.db_path) as db:
            hashes = {row[0] for row in db.execute("SELECT sha256 FROM blobs")}
        assert hashlib.sha256(generated).hexdigest() not in hashes
        assert len(hashes) == 1  # only the recent conversation's image is left
    finally:
        await core.stop()


async def test_retention_off_by_default(core: Core) -> None:
    await core.say("a cat")
    assert await core.retention().apply() == 0
