"""The adapters' bounded memories (cachetools): what they forget, and when."""

from __future__ import annotations

from pathlib import Path

from adapters.slack.delivery import PAIRING_TTL_S, RECENT_TTL_S, MentionPairing, RecentSet
from tests.auxil.discord_bot import start_bot
from tests.auxil.fake_discord import FakeDiscord
from tests.auxil.fake_gemini import FakeGemini


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_recently_answered_thread_is_forgotten_after_its_time() -> None:
    clock = Clock()
    recent = RecentSet(clock=clock)
    recent.add("thread")
    clock.now += RECENT_TTL_S - 1
    assert "thread" in recent
    recent.add("thread")  # answered again: remembered afresh
    clock.now += RECENT_TTL_S - 1
    assert "thread" in recent
    clock.now += 2
    assert "thread" not in recent


def test_a_full_recent_set_forgets_the_oldest_only() -> None:
    recent = RecentSet(capacity=3)
    for item in ("a", "b", "c", "a", "d"):
        recent.add(item)
    assert [item in recent for item in ("a", "b", "c", "d")] == [True, False, True, True]


async def test_a_mention_pairs_with_a_message_copy_within_the_pairing_time() -> None:
    clock = Clock()
    pairing = MentionPairing(grace_s=0.01, clock=clock)
    pairing.message_arrived("C1", "1.1")
    clock.now += PAIRING_TTL_S - 1
    assert await pairing.wait_for_message("C1", "1.1") is True


async def test_a_mention_long_after_its_message_copy_is_no_longer_paired() -> None:
    clock = Clock()
    pairing = MentionPairing(grace_s=0.01, clock=clock)
    pairing.message_arrived("C1", "1.1")
    clock.now += PAIRING_TTL_S + 1
    assert await pairing.wait_for_message("C1", "1.1") is False


async def test_a_full_pairing_forgets_the_oldest_message_copy() -> None:
    pairing = MentionPairing(grace_s=0.01, capacity=2)
    for ts in ("1.1", "2.2", "3.3"):
        pairing.message_arrived("C1", ts)
    assert await pairing.wait_for_message("C1", "3.3") is True
    assert await pairing.wait_for_message("C1", "2.2") is True
    assert await pairing.wait_for_message("C1", "1.1") is False


async def test_an_uncached_discord_thread_is_looked_up_once(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        db = tmp_path / "bot.sqlite3"
        bot = await start_bot(fake, fake_gemini, db)
        _, thread_id = await bot.mention("a red bicycle")
        await bot.replies(thread_id)
        await bot.stop()
        fake.announce_threads = False  # after the restart the thread reaches the bot uncached
        bot = await start_bot(fake, fake_gemini, db)
        try:
            for count, text in enumerate(("make it blue", "add a bell"), start=2):
                await fake.post(thread_id, text)
                await bot.replies(thread_id, count)
            assert fake.requests.count(("GET", f"/channels/{thread_id}")) == 1
            assert [r.prompt for r in fake_gemini.requests[1:]] == ["make it blue", "add a bell"]
        finally:
            await bot.stop()
