"""The dashboard's reads (``storage.protocol.Reports``): each figure is the ledger's or the turn
log's, summed in the database, on both backends."""

from __future__ import annotations

import pytest

from bot.vocabulary import ConversationKey, Usage
from storage.protocol import Store
from storage.reports import DayLatency, OutcomeCount, Spender, TurnRecord
from tests.storage.store_contract import START, ContractBase, FakeClock, make_blob, make_key

DAY = 86400.0
BOUNDS = [START, START + DAY, START + 2 * DAY, START + 3 * DAY]


def logged(at: float, outcome: str = "image", latency_s: float = 1.0, reason: str = "") -> TurnRecord:
    return TurnRecord(at, "discord", "new", outcome, reason or outcome, latency_s)


class ReportsContract(ContractBase):
    """``usage_by_day``, ``latency_by_day``, ``outcome_counts``, ``top_people``, ``top_channels``,
    ``processes``, ``recent_conversations``."""

    async def test_usage_by_day_sums_the_ledger_by_day_model_and_platform(
        self, store: Store, clock: FakeClock
    ) -> None:
        slack = ConversationKey("slack", "T1", "C1", "1.2")
        seeds = [
            (START - 1, make_key("before"), "gemini-2.5-flash-image", 5, 0.5),  # before the first day
            (START, make_key("a"), "gemini-2.5-flash-image", 1, 0.039),  # the first instant counts
            (START + 100, make_key("b"), "gemini-2.5-flash-image", 2, 0.078),
            (START + 200, make_key("c"), "gemini-3-pro-image", 1, 0.134),
            (START + DAY - 0.5, slack, "gemini-2.5-flash-image", 1, 0.039),
            (START + DAY, make_key("d"), "gemini-2.5-flash-image", 3, 0.117),  # the second day
            (START + 3 * DAY, make_key("after"), "gemini-2.5-flash-image", 7, 0.7),  # past the last
        ]
        for at, key, model, images, cost in seeds:
            clock.now = at
            await self.add(store, key, model=model, usage=Usage(images_generated=images, cost_usd=cost))
        days = await store.usage_by_day(BOUNDS)
        assert [(d.day, d.model, d.platform, d.images) for d in days] == [
            (0, "gemini-2.5-flash-image", "discord", 3),
            (0, "gemini-2.5-flash-image", "slack", 1),
            (0, "gemini-3-pro-image", "discord", 1),
            (1, "gemini-2.5-flash-image", "discord", 3),
        ]
        assert [d.cost_usd for d in days] == pytest.approx([0.117, 0.039, 0.134, 0.117])
        await store.forget(make_key("a"))  # the ledger outlives forgetting
        assert await store.usage_by_day(BOUNDS) == days
        assert await store.usage_by_day([START + 5 * DAY, START + 6 * DAY]) == []
        with pytest.raises(ValueError):
            await store.usage_by_day([START])

    async def test_latency_by_day_is_the_nearest_rank_of_answered_turns(self, store: Store) -> None:
        first = [logged(START + i, latency_s=float(s)) for i, s in enumerate([5, 1, 3, 2, 4])]
        second = [logged(START + DAY + i, latency_s=s) for i, s in enumerate([0.5 * n for n in range(1, 21)])]
        others = [
            logged(START + 10, "text_only", 9.0),
            logged(START + 11, "failed", 100.0, "timeout"),  # failures do not count
            logged(START + 12, "refused_by_limit", 0.01),
        ]
        await store.record_turns([*first, *second, *others])
        assert await store.latency_by_day(BOUNDS) == [
            DayLatency(0, 6, 3.0, 9.0),  # 1 2 3 4 5 9: ceil(3) = 3rd, ceil(5.7) = 6th
            DayLatency(1, 20, 5.0, 9.5),  # 0.5 .. 10: 10th and 19th
        ]

    async def test_outcome_counts_by_outcome_and_reason(self, store: Store) -> None:
        await store.record_turns(
            [
                logged(START - 5, "failed", reason="timeout"),  # before the window
                logged(START, "failed", reason="timeout"),
                logged(START + 1, "failed", reason="timeout"),
                logged(START + 2, "failed", reason="server_error"),
                logged(START + 3, "blocked_by_safety", reason="image_blocked"),
                logged(START + 4),
            ]
        )
        assert await store.outcome_counts(START) == [
            OutcomeCount("failed", "timeout", 2),
            OutcomeCount("blocked_by_safety", "image_blocked", 1),
            OutcomeCount("failed", "server_error", 1),
            OutcomeCount("image", "image", 1),
        ]
        await store.record_turns([])
        assert len(await store.outcome_counts(0)) == 4

    async def test_top_people_and_channels_by_cost_since(self, store: Store, clock: FakeClock) -> None:
        seeds = [
            (START - 10, "carol", "c9", 9, 9.0),  # last month
            (START, "alice", "c1", 1, 0.04),
            (START + 1, "bob", "c1", 2, 0.24),
            (START + 2, "alice", "c2", 2, 0.08),
            (START + 3, "dave", "c2", 0, 0.0),
        ]
        for n, (at, author, channel, images, cost) in enumerate(seeds):
            clock.now = at
            key = make_key(f"t{n}", channel=channel)
            await self.add(store, key, author=author, usage=Usage(images_generated=images, cost_usd=cost))
        people = await store.top_people(START, limit=2)
        assert [(p.platform, p.author_id, p.images) for p in people] == [
            ("discord", "bob", 2),
            ("discord", "alice", 3),
        ]
        assert [p.cost_usd for p in people] == pytest.approx([0.24, 0.12])
        channels = await store.top_channels(START)
        assert [(c.workspace, c.channel, c.images) for c in channels] == [("w1", "c1", 3), ("w1", "c2", 2)]
        assert channels[0] == Spender("discord", "w1", "c1", "", 3, pytest.approx(0.28))

    async def test_recent_conversations_newest_first_with_their_latest_image(
        self, store: Store, clock: FakeClock
    ) -> None:
        old, new, words = make_key("old"), make_key("new"), make_key("words")
        first, second = make_blob("first"), make_blob("second")
        clock.now = START
        turn = await self.add(store, old, outputs=[first])
        clock.now = START + 10
        await self.add(store, new, outputs=[make_blob("a"), second])
        clock.now = START + 20
        await self.add(store, old, turn, outputs=[])  # a text-only answer: no image at its head
        clock.now = START + 30
        await self.add(store, words)
        await store.forget(words)
        recent = await store.recent_conversations(limit=5)
        assert [(r.key, r.turn_count, r.updated_at, r.image) for r in recent] == [
            (old, 2, START + 20, None),
            (new, 1, START + 10, second.sha256),
        ]
        assert [r.key for r in await store.recent_conversations(limit=1)] == [old]
