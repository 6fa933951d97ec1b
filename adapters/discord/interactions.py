"""What every Discord interaction handler shares: a count of handlers at work, a guard that
turns a crash into one private sentence, and the private answer itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import discord

from adapters.discord.sink import MAX_CONTENT, NO_MENTIONS
from adapters.discord.words import RESTARTING
from bot.text import messages
from bot.text.messages import FAILED
from bot.vocabulary import Author

log = logging.getLogger(__name__)
P = ParamSpec("P")


class Tracked(Protocol):
    in_flight: InFlight


H = TypeVar("H", bound=Tracked)


def author_of(user: discord.abc.User) -> Author:
    return Author(id=str(user.id), display_name=user.display_name)


class InFlight:
    """Counts handlers at work so shutdown can let them post their replies before disconnecting."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.closing = False

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def interaction_guard(
    func: Callable[Concatenate[H, discord.Interaction, P], Awaitable[None]],
) -> Callable[Concatenate[H, discord.Interaction, P], Awaitable[None]]:
    """Track an interaction handler and turn any crash into one plain sentence for the user."""

    async def wrapper(self: H, interaction: discord.Interaction, *args: P.args, **kwargs: P.kwargs) -> None:
        if self.in_flight.closing:
            await answer_privately(interaction, RESTARTING)
            return
        async with self.in_flight.track():
            try:
                await func(self, interaction, *args, **kwargs)
            except Exception:
                log.exception("discord interaction failed", extra={"interaction_id": interaction.id})
                await answer_privately(interaction, FAILED)

    return wrapper


async def answer_privately(interaction: discord.Interaction, text: str) -> None:
    """Tell the user privately, whether or not the interaction was answered yet."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.warning("discord interaction answer failed", extra={"status": exc.status, "code": exc.code})


def echo(user: discord.abc.User, prompt: str, aspect_ratio: str | None, images: int) -> str:
    """The public message /imagine leaves in the channel (the thread opens on it)."""
    details = []
    if aspect_ratio:
        details.append(aspect_ratio)
    if images:
        details.append(f"{messages.images(images)} attached")
    suffix = f" ({', '.join(details)})" if details else ""
    text = f"{user.mention}: {discord.utils.escape_markdown(prompt)}{suffix}"
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"
