"""Forgetting a whole workspace (the bot left it): everything kept for it goes, a batch of
conversations per transaction; other workspaces, the images they hold and the usage ledger stay."""

from __future__ import annotations

import pytest

from bot.vocabulary import ConversationKey, SettingScope, Usage, WorkspaceForgotten
from storage.protocol import Store
from tests.storage.store_contract import ContractBase, make_blob


def key(workspace: str, channel: str, thread: str, platform: str = "discord") -> ConversationKey:
    return ConversationKey(platform, workspace, channel, thread)


DRAWN = Usage(100, 1290, 0, 1390, {"TEXT": 100}, {"IMAGE": 1290}, 1, cost_usd=0.039)


class WorkspacesContract(ContractBase):
    """``storage.protocol.Maintenance.forget_workspace``."""

    async def test_a_forgotten_workspace_keeps_nothing_of_its_own(self, store: Store) -> None:
        a, b, other = key("w1", "c1", "t1"), key("w1", "c2", "t2"), key("w2", "c1", "t1")
        only_a, shared, pinned_here = make_blob("only-a"), make_blob("shared"), make_blob("pinned-here")
        pinned_both, in_b_and_pinned = make_blob("pinned-both"), make_blob("in-b-and-pinned")
        first = await self.add(store, a, images=[only_a, shared], usage=DRAWN)
        second = await self.add(store, a, first, outputs=[make_blob("a-render")], usage=DRAWN)
        third = await self.add(store, b, images=[in_b_and_pinned], usage=DRAWN)
        kept = await self.add(store, other, images=[shared], usage=DRAWN)
        await store.record_posted("discord", "c1", ["posted-1"], second.id)
        await store.add_pin("discord", "w1", "here", pinned_here, "u1")
        await store.add_pin("discord", "w1", "both", pinned_both, "u1")
        await store.add_pin("discord", "w2", "both", pinned_both, "u2")
        await store.add_pin("discord", "w1", "drawn", in_b_and_pinned.sha256, "u1")
        await store.set_setting(SettingScope.everywhere(), "response_mode", "image_only")
        await store.set_setting(SettingScope.for_channel(a), "aspect_ratio", "16:9")
        await store.set_setting(SettingScope.for_thread(a), "image_size", "2K")
        await store.set_setting(SettingScope.for_thread(b), "image_size", "4K")
        await store.set_setting(SettingScope.for_channel(key("w1", "c9", "")), "model", "m")
        await store.set_setting(SettingScope.for_channel(other), "aspect_ratio", "1:1")
        ledger_before = await store.usage_since(0)
        images_before = await store.count_images(0, platform="discord", workspace="w1")

        forgotten = await store.forget_workspace("discord", "w1")

        assert forgotten == WorkspaceForgotten(conversations=2, turns=3, images=4, settings=4, pins=3)
        assert await store.conversation(a) is None and await store.conversation(b) is None
        for turn in (first, second, third):
            assert await store.turn(turn.id) is None
        assert await store.turn_for_message("discord", "c1", "posted-1") is None
        assert await store.pins("discord", "w1") == []
        assert await store.settings(a) == {"response_mode": "image_only"}
        assert await store.settings(key("w1", "c9", "x")) == {"response_mode": "image_only"}
        everything = [only_a, shared, pinned_here, pinned_both, in_b_and_pinned, make_blob("a-render")]
        left = await store.load_blobs([blob.sha256 for blob in everything])
        assert set(left) == {shared.sha256, pinned_both.sha256}
        # The other workspace has all it had.
        assert await store.history(other) == [kept]
        assert [p.name for p in await store.pins("discord", "w2")] == ["both"]
        assert await store.settings(other) == {"response_mode": "image_only", "aspect_ratio": "1:1"}
        # The usage ledger (the spend cap's and the months' totals) is kept.
        assert await store.usage_since(0) == ledger_before
        assert await store.count_images(0, platform="discord", workspace="w1") == images_before
        assert images_before[0] == 3
        assert await store.cost_since(0) == pytest.approx(4 * DRAWN.cost_usd)

        assert await store.forget_workspace("discord", "w1") == WorkspaceForgotten()

    async def test_only_that_platform_and_exactly_that_workspace(self, store: Store) -> None:
        # Look-alikes of "w1": another platform, another letter case, a longer id, LIKE's wildcards.
        look_alikes = [
            key("w1", "c1", "t", platform="slack"),
            key("W1", "c1", "t"),
            key("w10", "c1", "t"),
            key("w_", "c1", "t"),
            key("w%", "c1", "t"),
        ]
        for look_alike in look_alikes:
            await self.add(store, look_alike, images=[make_blob(str(look_alike))])
            await store.set_setting(SettingScope.for_channel(look_alike), "aspect_ratio", "3:2")
            await store.set_setting(SettingScope.for_thread(look_alike), "image_size", "2K")
            await store.add_pin(
                look_alike.platform, look_alike.workspace, "p", make_blob("p" + str(look_alike)), "u"
            )
        await self.add(store, key("w1", "c1", "t"))
        await store.set_setting(SettingScope.for_channel(key("w1", "c1", "t")), "aspect_ratio", "1:1")

        forgotten = await store.forget_workspace("discord", "w1")

        assert forgotten == WorkspaceForgotten(conversations=1, turns=1, settings=1)
        for look_alike in look_alikes:
            assert len(await store.history(look_alike)) == 1, look_alike
            assert await store.settings(look_alike) == {"aspect_ratio": "3:2", "image_size": "2K"}
            assert len(await store.pins(look_alike.platform, look_alike.workspace)) == 1
        assert await store.forget_workspace("discord", "w%") == WorkspaceForgotten(
            conversations=1, turns=1, images=2, settings=2, pins=1
        )
        assert len(await store.history(key("w_", "c1", "t"))) == 1

    async def test_the_interactions_google_keeps_are_named_for_every_branch(self, store: Store) -> None:
        a, b, other = key("w1", "c1", "t1"), key("w1", "c2", "t2"), key("w2", "c1", "t1")
        first = await self.add(store, a, interaction="v1_a1")
        await self.add(store, a, first, interaction="v1_a2")
        await self.add(store, a, first, text="another take", interaction="v1_a2b")  # a branch
        await self.add(store, a, first)  # drawn with generateContent: names none
        await self.add(store, b, interaction="v1_b1")
        await self.add(store, other, interaction="v1_other")

        forgotten = await store.forget_workspace("discord", "w1")

        assert sorted(forgotten.interactions) == ["v1_a1", "v1_a2", "v1_a2b", "v1_b1"]
        assert (forgotten.conversations, forgotten.turns) == (2, 5)
        assert await store.forget_workspace("discord", "w1") == WorkspaceForgotten()
        assert (await store.history(other))[0].model_content["interaction"]["id"] == "v1_other"

    async def test_a_large_workspace_goes_a_batch_at_a_time(self, store: Store) -> None:
        store.workspace_batch = 3  # type: ignore[attr-defined]  # every backend's SqlStore has it
        keys = [key("big", f"c{n % 2}", f"t{n}") for n in range(8)]
        for n, conversation in enumerate(keys):
            first = await self.add(store, conversation, images=[make_blob(f"big{n}")])
            await self.add(store, conversation, first)
        survivor = await self.add(store, key("small", "c1", "t1"), images=[make_blob("big0")])

        forgotten = await store.forget_workspace("discord", "big")

        # Thread settings: who started each conversation is not recorded by the store itself.
        assert forgotten == WorkspaceForgotten(conversations=8, turns=16, images=7)
        assert all([await store.conversation(k) is None for k in keys])
        assert await store.history(survivor.key) == [survivor]
        assert set(await store.load_blobs([make_blob(f"big{n}").sha256 for n in range(8)])) == {
            make_blob("big0").sha256
        }
