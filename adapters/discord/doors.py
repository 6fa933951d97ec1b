"""Edit with Nano Banana: the message context-menu command that starts a conversation seeded with a
message's image, asking what should change in a form. In a server text channel the conversation
opens in a thread on that message; in a thread or a DM it is the next turn there; where the bot
cannot read the channel it answers through the interaction (``adapters.discord.reach``)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import PurePath
from typing import Any

import discord
from discord import app_commands

from adapters.discord import words
from adapters.discord.conversation import THREAD_ALREADY_CREATED
from adapters.discord.forms import InstructionForm
from adapters.discord.interactions import answer_privately, author_of, echo, interaction_guard
from adapters.discord.permissions import log_if_forbidden
from adapters.discord.places import thread_name
from adapters.discord.reach import InteractionSink, reachable, reachless_key
from adapters.discord.sink import NO_MENTIONS, ChannelSink, upload_limit
from adapters.discord.surface import Surface
from adapters.discord.views import ControlKit
from bot.ports import ReplySink
from bot.vocabulary import ConversationKey, ImageRef, Position, Trigger, Turn

log = logging.getLogger(__name__)
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".heic", ".heif"})


def _is_image(content_type: str | None, filename: str) -> bool:
    if content_type and content_type.split(";")[0].strip().lower().startswith("image/"):
        return True
    return PurePath(filename).suffix.lower() in _IMAGE_SUFFIXES


class EditDoor:
    """The context menu, its form, and the conversation it starts."""

    def __init__(self, surface: Surface, kit: ControlKit) -> None:
        self._s = surface
        self._kit = kit
        self.in_flight = surface.in_flight

    def command(self) -> app_commands.ContextMenu:
        door = self

        async def edit_with(interaction: discord.Interaction, message: discord.Message) -> None:
            await door.open(interaction, message)

        return app_commands.ContextMenu(name=words.EDIT_MENU, callback=edit_with)

    def image_of(self, message: discord.Message) -> ImageRef | None:
        """The message's first image: an attachment, else an embed's image (through Discord's
        media proxy, never the site it came from)."""
        for attachment in message.attachments:
            if _is_image(attachment.content_type, attachment.filename):
                return self._s.files.ref(attachment)
        for embed in message.embeds:
            for media in (embed.image, embed.thumbnail):
                url = media.proxy_url or media.url
                if url:
                    return self._embedded(url)
        return None

    def _embedded(self, url: str) -> ImageRef:
        name = PurePath(url.split("?")[0]).name or "image.png"

        async def load() -> bytes:
            return await self._s.files.download(url, name)

        return ImageRef(filename=name, mime_type=None, size=None, load=load)

    @interaction_guard
    async def open(self, interaction: discord.Interaction, message: discord.Message) -> None:
        image = self.image_of(message)
        if image is None:
            await answer_privately(interaction, words.NO_IMAGE_TO_EDIT)
            return
        form = InstructionForm(
            title=words.EDIT_TITLE,
            label=words.EDIT_LABEL,
            placeholder=words.EDIT_PLACEHOLDER,
            submitted=partial(self.submitted, message=message, image=image),
        )
        await interaction.response.send_modal(form)

    @interaction_guard
    async def submitted(
        self, interaction: discord.Interaction, text: str, *, message: discord.Message, image: ImageRef
    ) -> None:
        place = await self._s.places.of_interaction(interaction) if reachable(interaction) else None
        turn_at: tuple[ConversationKey, ReplySink] | None
        if not reachable(interaction):
            turn_at = await self._in_place(
                interaction, text, reachless_key(interaction, interaction.id), None
            )
        elif place is None:
            await answer_privately(interaction, words.UNKNOWN_PLACE)
            return
        elif place.threadable:
            turn_at = await self._in_thread(interaction, text, message, place.thread_key(message.id))
        else:
            channel = self._s.channel(interaction, place)
            turn_at = await self._in_place(interaction, text, place.key, channel)
        if turn_at is None:
            return
        key, sink = turn_at
        turn = Turn(
            key=key,
            message_id=str(interaction.id),
            author=author_of(interaction.user),
            text=text,
            images=(image,),
            trigger=Trigger.COMMAND,
            position=Position.from_snowflake(interaction.id),
        )
        await self._s.service.handle_turn(turn, sink)

    async def _in_place(
        self,
        interaction: discord.Interaction,
        text: str,
        key: ConversationKey,
        channel: discord.abc.Messageable | None,
    ) -> tuple[ConversationKey, ReplySink] | None:
        """A DM, a thread, or (``channel`` None) where the bot cannot read: the instruction is the
        interaction's public answer, the image follows it."""
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(
            content=echo(interaction.user, text, None, 1), allowed_mentions=NO_MENTIONS
        )
        if channel is None:
            return key, InteractionSink(interaction, key, self._kit)
        return key, ChannelSink(channel=channel, key=key, limit=upload_limit(channel), kit=self._kit)

    async def _in_thread(
        self, interaction: discord.Interaction, text: str, message: discord.Message, key: ConversationKey
    ) -> tuple[ConversationKey, ReplySink] | None:
        """A thread on the message (or the one it has), the instruction posted first in it."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        thread = await self._thread_on(interaction, message, text)
        if thread is None:
            return None
        await thread.send(echo(interaction.user, text, None, 1), allowed_mentions=NO_MENTIONS)
        await interaction.followup.send(words.edit_started(thread.mention), ephemeral=True)
        return key, ChannelSink(channel=thread, key=key, limit=upload_limit(thread), kit=self._kit)

    async def _thread_on(
        self, interaction: discord.Interaction, message: discord.Message, text: str
    ) -> discord.Thread | None:
        name = thread_name(self._s.service.dialogue.title(text))
        try:
            return await message.create_thread(name=name)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:
                existing: Any = message.guild.get_thread(message.id) if message.guild else None
                existing = existing or await self._s.client.fetch_channel(message.id)
                if isinstance(existing, discord.Thread):
                    return existing
            if not log_if_forbidden(exc, doing="thread", channel_id=message.channel.id, in_thread=False):
                log.warning("discord thread creation failed", extra={"status": exc.status, "code": exc.code})
            await answer_privately(
                interaction, words.THREAD_FORBIDDEN if exc.status == 403 else words.THREAD_FAILED
            )
        return None
