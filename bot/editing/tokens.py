"""Signed, single-use editor links: HMAC-SHA256 under a key kept in the database (one key for
every process of a deployment), bound to a conversation, a turn and a person, valid 15 minutes,
used once across processes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from bot.editing.records import EditGrant
from bot.ports import SignedLinks
from bot.vocabulary import ConversationKey

SECRET_NAME = "editor-links"
LINK_LIFETIME_S = 15 * 60
# After its use a link still shows how its edit is going, for a while.
RESULT_GRACE_S = 60 * 60
MAX_TOKEN_CHARS = 1024
_FORM = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}")
# Kept apart from any other use of the same key.
_PURPOSE = b"nano-banana editor link v1\n"


class Refusal(Enum):
    """Why a link was refused."""

    INVALID = "invalid"  # not made with our key, or changed since (one character is enough)
    EXPIRED = "expired"
    USED = "used"
    FOREIGN = "foreign"  # another person's


class LinkRefused(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class EditLinks:
    """Makes and checks editor links. The key is read from the store once, on first need."""

    def __init__(
        self,
        store: SignedLinks,
        *,
        clock: Callable[[], float] = time.time,
        lifetime_s: float = LINK_LIFETIME_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lifetime_s = lifetime_s
        self._key: bytes | None = None

    async def _signing_key(self) -> bytes:
        if self._key is None:
            self._key = await self._store.secret(SECRET_NAME)
        return self._key

    async def issue(self, key: ConversationKey, turn_id: int, person: str) -> str:
        """A new link's token for ``person`` to edit ``turn_id``'s image in ``key``."""
        claims = {
            "k": [key.platform, key.workspace, key.channel, key.thread],
            "t": turn_id,
            "p": person,
            "e": int(self._clock() + self._lifetime_s),
            "n": _encode(secrets.token_bytes(16)),
        }
        payload = _encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{await self._mac(payload)}"

    async def check(self, token: str, *, person: str | None = None) -> EditGrant:
        """The grant of a valid, unexpired, unused link; raises ``LinkRefused`` otherwise."""
        grant = await self._verified(token, person)
        if self._clock() >= grant.expires_at:
            raise LinkRefused(Refusal.EXPIRED)
        if await self._store.link_used(grant.link_id):
            raise LinkRefused(Refusal.USED)
        return grant

    async def use(self, token: str, *, person: str | None = None) -> EditGrant:
        """``check``, then use the link up: of any number of uses at once, in any processes,
        exactly one gets the grant; the others are refused as used."""
        grant = await self.check(token, person=person)
        if not await self._store.use_link(grant.link_id, grant.expires_at + RESULT_GRACE_S):
            raise LinkRefused(Refusal.USED)
        return grant

    async def submitted(self, token: str) -> EditGrant:
        """The grant of a link already used for an edit, to show how the edit goes."""
        grant = await self._verified(token, None)
        used = await self._store.link_used(grant.link_id)
        if self._clock() >= grant.expires_at + (RESULT_GRACE_S if used else 0):
            raise LinkRefused(Refusal.EXPIRED)
        if not used:  # no edit was sent with it: nothing to show
            raise LinkRefused(Refusal.INVALID)
        return grant

    async def _mac(self, payload: str) -> str:
        digest = hmac.new(await self._signing_key(), _PURPOSE + payload.encode("ascii"), hashlib.sha256)
        return _encode(digest.digest())

    async def _verified(self, token: str, person: str | None) -> EditGrant:
        if len(token) > MAX_TOKEN_CHARS or not _FORM.fullmatch(token):
            raise LinkRefused(Refusal.INVALID)
        payload, _, mac = token.partition(".")
        # Compared as text: a changed last character that decodes to the same bytes still fails.
        if not hmac.compare_digest(mac.encode("ascii"), (await self._mac(payload)).encode("ascii")):
            raise LinkRefused(Refusal.INVALID)
        grant = _grant(payload)
        if person is not None and not hmac.compare_digest(person.encode(), grant.person.encode()):
            raise LinkRefused(Refusal.FOREIGN)
        return grant


def _grant(payload: str) -> EditGrant:
    """The claims of a payload our key signed (so well formed, unless the key leaked)."""
    try:
        claims: dict[str, Any] = json.loads(_decode(payload))
        platform, workspace, channel, thread = (str(part) for part in claims["k"])
        return EditGrant(
            key=ConversationKey(platform, workspace, channel, thread),
            turn_id=int(claims["t"]),
            person=str(claims["p"]),
            expires_at=float(claims["e"]),
            link_id=str(claims["n"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise LinkRefused(Refusal.INVALID) from None
