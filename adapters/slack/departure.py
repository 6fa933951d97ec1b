"""Leaving a Slack workspace: when the app is uninstalled (``app_uninstalled``) or its bot token is
revoked (``tokens_revoked`` naming the bot user), everything the bot kept for the team is deleted
(``bot.entry.leaving``). Bolt skips its auth.test for these two events: the token is already dead."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.surface import PLATFORM, Surface
from bot.entry.leaving import forget_workspace

log = logging.getLogger(__name__)

EVENT_TYPES = ("app_uninstalled", "tokens_revoked")


class Departure:
    """The two listeners; each deletes the installation's team data once Bolt has acknowledged."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface

    def register(self, app: AsyncApp) -> None:
        app.event("app_uninstalled")(self._on_uninstalled)
        app.event("tokens_revoked")(self._on_tokens_revoked)

    async def _on_uninstalled(self, body: dict[str, Any]) -> None:
        await self._leave(body, "app_uninstalled")

    async def _on_tokens_revoked(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        tokens = event.get("tokens")
        bots = tokens.get("bot") if isinstance(tokens, Mapping) else None
        # Only people's tokens (``oauth``) revoked: the bot still works here and keeps its data.
        if isinstance(bots, list) and self._s.bot_user_id in [str(bot) for bot in bots]:
            await self._leave(body, "tokens_revoked")

    async def _leave(self, body: Mapping[str, Any], reason: str) -> None:
        # Keys hold the installation's team (see Surface); an event about another is not ours.
        team = body.get("team_id")
        if team is not None and str(team) != self._s.team_id:
            log.warning("slack departure for another team ignored", extra={"reason": reason})
            return
        with self._s.listening():
            service = self._s.service
            await forget_workspace(
                service.store, PLATFORM, self._s.team_id, reason=reason, drop_remote=service.drop_remote
            )
