"""The reference board on Slack (/pin, /pins, /unpin): slash commands mapped onto the core's dialogue.

Slack runs slash commands only outside threads and they carry no files, so /pin pins the latest
image of the channel's latest image conversation. Workspace admins and owners (``users.info``,
which needs the ``users:read`` scope; without it only the bot's ADMIN_USERS) may unpin anybody's
pin. /pins is a text list: pinned images live in the bot's database and have no Slack URL that
an image block could show.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from adapters.slack.respond import respond_privately
from adapters.slack.surface import Surface
from bot.entry.commands import Command, CommandName
from bot.vocabulary import Author

log = logging.getLogger(__name__)

COMMANDS = ("/pin", "/pins", "/unpin")


class PinCommands:
    """Each acks first (within Slack's 3 s) and answers privately through the response URL."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface

    def register(self, app: AsyncApp) -> None:
        app.command("/pin")(self._on_pin)
        app.command("/pins")(self._on_pins)
        app.command("/unpin")(self._on_unpin)

    async def _on_pin(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.PIN, ack, respond, command)

    async def _on_pins(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.PINS, ack, respond, command)

    async def _on_unpin(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.UNPIN, ack, respond, command)

    async def _answer(
        self, name: CommandName, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]
    ) -> None:
        await ack()
        user = str(command.get("user_id") or "")
        with self._s.listening():
            request = Command(
                name,
                self._s.key(str(command.get("channel_id") or ""), ""),
                Author(user),
                str(command.get("text") or "").strip(),
                moderator=name is CommandName.UNPIN and await self._workspace_admin(user),
            )
            reply = await self._s.service.dialogue.run(request)
        await respond_privately(respond, reply.text)

    async def _workspace_admin(self, user: str) -> bool:
        try:
            found = await self._s.client.users_info(user=user)
        except SlackApiError as exc:
            log.info("slack users.info failed", extra={"error": str(exc.response.get("error"))})
            return False
        person = found.get("user") or {}
        return bool(person.get("is_admin") or person.get("is_owner"))
