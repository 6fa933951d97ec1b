"""Who may forget a shared conversation: its starter, admins and moderators; nobody else."""

from __future__ import annotations

from pathlib import Path

from bot.turns.forgetting import FORGET_REFUSED, STARTED_BY, ForgetResult
from bot.vocabulary import Author, ConversationKey, SettingScope
from tests.auxil.core import ALICE, Core
from tests.auxil.fake_gemini import FakeGemini

KEY = ConversationKey("slack", "T1", "C1", "1700000000.000100")
BOB = Author("bob", "Bob")


async def test_only_the_starter_admins_moderators_and_the_opener_may_forget(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await Core(fake_gemini, tmp_path / "db.sqlite3", {"ADMIN_USERS": "slack:carol"}).start()
    try:
        service = core.service
        await core.say("a castle", key=KEY)
        await core.say("add a moat", key=KEY)
        assert (await core.store.settings(KEY)).get(STARTED_BY) == ALICE.id
        assert not await service.may_forget(KEY, BOB)
        assert await service.may_forget(KEY, BOB, moderator=True)
        assert await service.may_forget(KEY, BOB, opener=BOB.id)
        assert await service.may_forget(KEY, Author("carol"))
        assert await service.forget_as(KEY, BOB) == ForgetResult(refusal=FORGET_REFUSED)
        assert await core.store.conversation(KEY) is not None
        assert await service.forget_as(KEY, ALICE) == ForgetResult(deleted=2)
        assert await core.store.conversation(KEY) is None
        # Forgetting cleared the starter: whoever starts next owns the thread.
        assert STARTED_BY not in await core.store.settings(KEY)
        assert await service.may_forget(KEY, BOB)
    finally:
        await core.stop()


async def test_conversations_from_before_starters_were_recorded_use_their_first_turn(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    core = await Core(fake_gemini, tmp_path / "db.sqlite3").start()
    try:
        await core.say("a castle", key=KEY)
        await core.store.set_setting(SettingScope.for_thread(KEY), STARTED_BY, None)
        assert await core.service.may_forget(KEY, ALICE)
        assert not await core.service.may_forget(KEY, BOB)
    finally:
        await core.stop()
