"""Who may forget a shared conversation, and forgetting it.

Anyone in a thread may add turns or press Regenerate, but Forget wipes what everyone built, so it
is for whoever started the conversation, the bot's admins (ADMIN_USERS) and the platform's
moderators (the adapter says who those are, e.g. Discord's Manage Threads).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from bot.entry.access import AccessPolicy
from bot.text.messages import FORGET_REFUSED
from bot.vocabulary import Author, ConversationKey, SettingScope
from storage.protocol import Store

log = logging.getLogger(__name__)

# A thread-scope setting holding the id of the author of the conversation's first turn. A
# regeneration of that turn by someone else starts a new branch root, so the root of the
# history is not proof of who started; this is. Forgetting deletes it with the thread's settings.
STARTED_BY = "started_by"

Hold = Callable[[ConversationKey], AbstractAsyncContextManager[object]]
# Deletes interactions stored on Google's side by id; how many went.
DropRemote = Callable[[Sequence[str]], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """How many turns were deleted, or why nothing was (``refusal``, one sentence)."""

    deleted: int = 0
    refusal: str | None = None


class Forgetting:
    """Records who started each conversation and applies the rule for who may forget it."""

    def __init__(
        self, store: Store, hold: Hold, access: AccessPolicy, drop_remote: DropRemote | None = None
    ) -> None:
        """``drop_remote``: deletes interactions stored on Google's side (the engine's
        ``forget_interactions``), for conversations drawn with GEMINI_API=interactions."""
        self._store = store
        self._hold = hold
        self._access = access
        # Public: leaving a workspace (bot.entry.leaving) deletes its interactions with it too.
        self.drop_remote = drop_remote

    async def note_first_turn(self, key: ConversationKey, author: Author) -> None:
        """Called when a turn with no history before it is stored: its author started the
        conversation, unless someone already did (a regeneration of the first turn)."""
        if STARTED_BY not in await self._store.settings(key):
            await self._store.set_setting(SettingScope.for_thread(key), STARTED_BY, author.id)

    async def starter(self, key: ConversationKey) -> str | None:
        """Who started ``key``; for conversations from before starters were recorded, the author
        of the first turn of its current branch."""
        recorded = (await self._store.settings(key)).get(STARTED_BY)
        if recorded:
            return recorded
        history = await self._store.history(key)
        return history[0].author_id if history else None

    async def may_forget(
        self, key: ConversationKey, author: Author, *, moderator: bool = False, opener: str | None = None
    ) -> bool:
        """``opener``: who opened the thread on the platform, when the adapter knows it cheaply."""
        if moderator or self._access.is_admin(key.platform, author.id) or author.id == opener:
            return True
        starter = await self.starter(key)
        return starter is None or starter == author.id

    async def forget(self, key: ConversationKey) -> int:
        """Delete a conversation's history and images; waits for a turn in flight to finish."""
        async with self._hold(key):
            remote = await self._store.interaction_ids(key)  # every branch's, not only the head's
            forgotten = await self._store.forget(key)
        if remote and self.drop_remote is not None:
            try:
                gone = await self.drop_remote(remote)
            except Exception as exc:  # forgotten here anyway; Google's copy expires on its own
                log.warning("could not delete stored interactions", extra={"error": type(exc).__name__})
            else:
                log.info("stored interactions deleted", extra={"conversation": str(key), "deleted": gone})
        return forgotten

    async def forget_as(
        self, key: ConversationKey, author: Author, *, moderator: bool = False, opener: str | None = None
    ) -> ForgetResult:
        """Forget ``key`` if ``author`` may; otherwise say who can."""
        if not await self.may_forget(key, author, moderator=moderator, opener=opener):
            log.info("forget refused", extra={"conversation": str(key), "author": author.id})
            return ForgetResult(refusal=FORGET_REFUSED)
        return ForgetResult(await self.forget(key))
