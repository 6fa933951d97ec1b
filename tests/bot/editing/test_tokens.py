"""Editor links: bound to a conversation, a turn and a person, 15 minutes, used once, unforgeable."""

from __future__ import annotations

import asyncio
import string
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.editing.tokens import LINK_LIFETIME_S, EditLinks, LinkRefused, Refusal
from bot.vocabulary import ConversationKey
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import START, FakeClock

KEY = ConversationKey("discord", "guild", "chan", "thread")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "bot.sqlite3", clock=clock)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def links(store: SqliteStore, clock: FakeClock) -> EditLinks:
    return EditLinks(store, clock=clock)


async def refusal(attempt: asyncio.Future[object] | object) -> Refusal:
    with pytest.raises(LinkRefused) as caught:
        await attempt  # type: ignore[misc]
    return caught.value.reason


async def test_a_link_carries_its_conversation_turn_and_person(links: EditLinks) -> None:
    token = await links.issue(KEY, 42, "U1")
    grant = await links.check(token)
    assert (grant.key, grant.turn_id, grant.person) == (KEY, 42, "U1")
    assert grant.expires_at == START + LINK_LIFETIME_S
    assert await links.check(token, person="U1") == grant


async def test_a_link_is_used_once_even_by_two_processes_at_once(
    links: EditLinks, store: SqliteStore, clock: FakeClock
) -> None:
    token = await links.issue(KEY, 42, "U1")
    other_process = EditLinks(store, clock=clock)  # the same database, its own cache of the key
    results = await asyncio.gather(
        links.use(token), other_process.use(token), links.use(token), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert {r.reason for r in results if isinstance(r, LinkRefused)} == {Refusal.USED}
    assert await refusal(links.check(token)) is Refusal.USED
    assert (await links.submitted(token)).turn_id == 42


async def test_a_link_expires_after_15_minutes(links: EditLinks, clock: FakeClock) -> None:
    token = await links.issue(KEY, 42, "U1")
    clock.now = START + LINK_LIFETIME_S - 1
    await links.check(token)
    clock.now = START + LINK_LIFETIME_S
    assert await refusal(links.check(token)) is Refusal.EXPIRED
    assert await refusal(links.use(token)) is Refusal.EXPIRED


async def test_any_one_character_changed_is_refused(links: EditLinks) -> None:
    token = await links.issue(KEY, 42, "U1")
    alphabet = string.ascii_letters + string.digits + "-_"
    for index, char in enumerate(token):
        for other in (alphabet[(alphabet.find(char) + 1) % len(alphabet)], "A" if char != "A" else "B"):
            altered = token[:index] + other + token[index + 1 :]
            if altered != token:
                assert await refusal(links.check(altered)) is Refusal.INVALID, (index, other)
    for broken in ("", "abc", token + "x", token.replace(".", ""), token + "." + token, "é" * 10):
        assert await refusal(links.check(broken)) is Refusal.INVALID


async def test_a_link_signed_with_another_key_or_for_another_person_is_refused(
    links: EditLinks, tmp_path: Path, clock: FakeClock
) -> None:
    elsewhere = SqliteStore(tmp_path / "other.sqlite3", clock=clock)
    await elsewhere.open()
    try:
        foreign = await EditLinks(elsewhere, clock=clock).issue(KEY, 42, "U1")
    finally:
        await elsewhere.close()
    assert await refusal(links.check(foreign)) is Refusal.INVALID
    mine = await links.issue(KEY, 42, "U1")
    assert await refusal(links.check(mine, person="U2")) is Refusal.FOREIGN
    assert await refusal(links.use(mine, person="U2")) is Refusal.FOREIGN
    assert await refusal(links.submitted(mine)) is Refusal.INVALID  # not used yet: nothing to show
    await links.use(mine, person="U1")


async def test_the_key_is_kept_across_restarts(
    links: EditLinks, store: SqliteStore, clock: FakeClock
) -> None:
    token = await links.issue(KEY, 42, "U1")
    assert (await EditLinks(store, clock=clock).check(token)).turn_id == 42
