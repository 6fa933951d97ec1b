"""Signing operators in and out of the dashboard: the token compared in constant time, a growing
wait after wrong tokens, and session cookies signed with a key every process shares.

A cookie is ``expiry.nonce.mac``; the key is the database's ``admin-sessions`` secret mixed with
ADMIN_TOKEN, so a new token ends every session, and signing out marks the nonce used
(``SignedLinks.use_link``) for every process."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from storage.protocol import SignedLinks

COOKIE = "nb_admin"
SESSION_S = 12 * 3600
SECRET_NAME = "admin-sessions"
# Wrong tokens from one address: the n-th try after n wrong ones waits 2^(n-1) s, at most MAX_WAIT_S;
# an address forgiven after FORGIVE_AFTER_S without a try; at most MAX_ADDRESSES remembered.
MAX_WAIT_S = 30.0
FORGIVE_AFTER_S = 15 * 60.0
MAX_ADDRESSES = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    expires: int


def wait_after(failures: int) -> float:
    """How long a try waits after ``failures`` wrong tokens in a row."""
    return 0.0 if failures <= 0 else min(2.0 ** (failures - 1), MAX_WAIT_S)


class SignInThrottle:
    """A growing wait before each try from an address that got the token wrong. A try counts as
    wrong until it proves right, so tries sent all at once wait longer and longer too."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._failures: dict[str, tuple[int, float]] = {}

    def failures(self, address: str) -> int:
        count, last = self._failures.get(address, (0, 0.0))
        return count if self._clock() - last < FORGIVE_AFTER_S else 0

    async def admit(self, address: str) -> None:
        """Wait this address's turn; the try counts as wrong until ``succeeded``."""
        count = self.failures(address)
        self._failures.pop(address, None)
        self._failures[address] = (count + 1, self._clock())
        while len(self._failures) > MAX_ADDRESSES:  # the longest quiet go first
            del self._failures[next(iter(self._failures))]
        await self._sleep(wait_after(count))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


class AdminSessions:
    """Checks the token, and issues, checks and ends session cookies."""

    def __init__(self, token: str, links: SignedLinks, clock: Callable[[], float] = time.time) -> None:
        self._token_digest = hashlib.sha256(token.encode()).digest()
        self._token = token
        self._links = links
        self._clock = clock
        self._key: bytes | None = None

    def token_matches(self, offered: str) -> bool:
        """Constant time whatever the offered token's length or content."""
        offered_digest = hashlib.sha256(offered.encode("utf-8", "replace")).digest()
        return hmac.compare_digest(offered_digest, self._token_digest)

    async def _mac(self, text: str) -> str:
        if self._key is None:
            shared = await self._links.secret(SECRET_NAME)
            self._key = hmac.new(shared, self._token.encode(), hashlib.sha256).digest()
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    async def issue(self) -> str:
        """A new session's cookie value."""
        body = f"{int(self._clock() + SESSION_S)}.{secrets.token_urlsafe(18)}"
        return f"{body}.{await self._mac(body)}"

    async def check(self, cookie: str | None) -> Session | None:
        """The session a cookie proves, or None (missing, forged, expired or signed out)."""
        if not cookie or cookie.count(".") != 2:
            return None
        expires, nonce, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode(), (await self._mac(f"{expires}.{nonce}")).encode()):
            return None
        if not expires.isdigit() or int(expires) <= self._clock():
            return None
        if await self._links.link_used(_revoked(nonce)):
            return None
        return Session(nonce, int(expires))

    async def form_token(self, session: Session) -> str:
        """What the session's forms carry, so a page elsewhere cannot post them."""
        return await self._mac(f"form.{session.nonce}")

    async def form_token_matches(self, session: Session, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), (await self.form_token(session)).encode())

    async def end(self, session: Session) -> None:
        """Sign out: the cookie proves nothing any more, in any process."""
        await self._links.use_link(_revoked(session.nonce), float(session.expires))


def _revoked(nonce: str) -> str:
    return f"admin-session:{nonce}"
