"""The conversation commands on Slack (/aspect, /size, /model, /think, /usage, /forget): slash
commands mapped onto the core's dialogue. Slack does not run slash commands inside threads, so they set
and show the channel's defaults; each answer says how to change a thread's instead."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from adapters.slack import words
from adapters.slack.respond import respond_privately
from adapters.slack.surface import Surface
from adapters.slack.text import prompt_from_slack
from bot.entry.commands import Command, CommandName
from bot.vocabulary import Author, ScopeLevel

COMMANDS = ("/aspect", "/size", "/forget", "/usage", "/model", "/think")
# What each setting's answer adds: how to change it inside a thread.
_HINTS = {
    CommandName.ASPECT: words.THREAD_HINT,
    CommandName.SIZE: words.SIZE_HINT,
    CommandName.MODEL: words.MODEL_HINT,
    CommandName.THINK: words.THINK_HINT,
}


class SlashCommands:
    """Each acks first (within Slack's 3 s, before any database work) and answers privately
    through the response URL (adapters/slack/respond.py)."""

    def __init__(self, surface: Surface) -> None:
        self._s = surface

    def register(self, app: AsyncApp) -> None:
        app.command("/aspect")(self._on_aspect)
        app.command("/size")(self._on_size)
        app.command("/model")(self._on_model)
        app.command("/think")(self._on_think)
        app.command("/usage")(self._on_usage)
        app.command("/forget")(self._on_forget)

    async def _on_aspect(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.ASPECT, ack, respond, command)

    async def _on_size(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.SIZE, ack, respond, command)

    async def _on_model(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.MODEL, ack, respond, command)

    async def _on_think(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.THINK, ack, respond, command)

    async def _on_usage(self, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await self._answer(CommandName.USAGE, ack, respond, command)

    async def _on_forget(self, ack: AsyncAck) -> None:
        await ack(text=words.FORGET_COMMAND_REPLY)

    async def _answer(
        self, name: CommandName, ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]
    ) -> None:
        await ack()
        request = Command(
            name,
            self._s.key(str(command.get("channel_id") or ""), ""),
            Author(str(command.get("user_id") or "")),
            prompt_from_slack(str(command.get("text") or ""), self._s.bot_user_id),
            level=ScopeLevel.CHANNEL,
        )
        with self._s.listening():
            reply = await self._s.service.dialogue.run(request)
        hint = _HINTS.get(name)
        text = f"{reply.text} {hint}" if hint and not reply.refused else reply.text
        await respond_privately(respond, text)
