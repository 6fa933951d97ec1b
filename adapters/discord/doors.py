"""The message context-menu commands, on a message's first image.

Edit with Nano Banana starts a conversation seeded with the image, asking what should change in a
form. In a server text channel the conversation opens in a thread on that message; in a thread or
a DM it is the next turn there; where the bot cannot read the channel it answers through the
interaction (``adapters.discord.reach``).

Pin as reference asks for a name in a form and pins the image on the reference board as /pin
does (``adapters.discord.pins``): the same workspace, checks and private sentences.

A form names its message by ids (``adapters.discord.forms``); its submission finds the message
among the ones this process opened forms on, else over REST (after a restart), and runs the same
code either way."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from pathlib import PurePath
from typing import Any, ClassVar

import discord
from discord import app_commands

from adapters.discord import words
from adapters.discord.conversation import THREAD_ALREADY_CREATED
from adapters.discord.files import DiscordFiles
from adapters.discord.forms import EDIT, FORM_TIMEOUT_S, PIN, FormTarget, InstructionForm, message_form_id
from adapters.discord.interactions import answer_privately, author_of, echo, interaction_guard
from adapters.discord.permissions import log_if_forbidden
from adapters.discord.pins import PinCommands
from adapters.discord.places import thread_name
from adapters.discord.reach import InteractionSink, reachable, reachless_key
from adapters.discord.sink import NO_MENTIONS, ChannelSink, upload_limit
from adapters.discord.surface import Surface
from adapters.discord.views import ControlKit
from bot.ports import ReplySink
from bot.text.pin_words import MAX_NAME
from bot.vocabulary import ConversationKey, ImageRef, Position, Trigger, Turn

log = logging.getLogger(__name__)
# The messages forms were opened on lately, at most this many (older ones are fetched again).
_MAX_OPENED = 1000
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".heic", ".heif"})


def _is_image(content_type: str | None, filename: str) -> bool:
    if content_type and content_type.split(";")[0].strip().lower().startswith("image/"):
        return True
    return PurePath(filename).suffix.lower() in _IMAGE_SUFFIXES


def image_of(message: discord.Message, files: DiscordFiles) -> ImageRef | None:
    """The message's first image: an attachment, else an embed's image (through Discord's media
    proxy, never the site it came from)."""
    for attachment in message.attachments:
        if _is_image(attachment.content_type, attachment.filename):
            return files.ref(attachment)
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            url = media.proxy_url or media.url
            if url:
                return _embedded(url, files)
    return None


def _embedded(url: str, files: DiscordFiles) -> ImageRef:
    name = PurePath(url.split("?")[0]).name or "image.png"

    async def load() -> bytes:
        return await files.download(url, name)

    return ImageRef(filename=name, mime_type=None, size=None, load=load)


class _Opened:
    """The messages this process opened forms on lately, by (channel, message) id: what a
    submission uses before fetching the message again (where the bot cannot read the channel,
    the only way to it)."""

    def __init__(self) -> None:
        self._messages: OrderedDict[tuple[int, int], tuple[float, discord.Message]] = OrderedDict()

    def add(self, message: discord.Message) -> None:
        self._messages[(message.channel.id, message.id)] = (time.monotonic(), message)
        self._messages.move_to_end((message.channel.id, message.id))
        while len(self._messages) > _MAX_OPENED:
            self._messages.popitem(last=False)

    def get(self, channel_id: int, message_id: int) -> discord.Message | None:
        opened = self._messages.get((channel_id, message_id))
        if opened is None or time.monotonic() - opened[0] > FORM_TIMEOUT_S:
            return None
        return opened[1]


class _MessageDoor:
    """A message context menu (named ``menu``) on the message's first image: a form (``kind``)
    asks what to do with it (``_form``), and its submission runs ``_run``; a message without one
    is told so privately (``no_image``)."""

    menu: ClassVar[str]
    kind: ClassVar[str]
    no_image: ClassVar[str]

    def __init__(self, surface: Surface) -> None:
        self._s = surface
        self.in_flight = surface.in_flight
        self._opened = _Opened()

    def command(self) -> app_commands.ContextMenu:
        door = self

        async def on_message(interaction: discord.Interaction, message: discord.Message) -> None:
            await door.open(interaction, message)

        return app_commands.ContextMenu(name=self.menu, callback=on_message)

    @interaction_guard
    async def open(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if image_of(message, self._s.files) is None:
            await answer_privately(interaction, self.no_image)
            return
        self._opened.add(message)
        custom_id = message_form_id(self.kind, message.channel.id, message.id)
        await interaction.response.send_modal(self._form(custom_id))

    async def submitted(self, interaction: discord.Interaction, text: str, target: FormTarget) -> None:
        """A submitted form (from the desk, guarded there): the message it names, as it is now."""
        message = self._opened.get(target.channel_id, target.message_id)
        if message is None and not reachable(interaction):
            await answer_privately(interaction, words.FORM_FROM_BEFORE_RESTART)
            return
        if message is None:
            message = await self._fetch(interaction, target)
        if message is None:
            await answer_privately(interaction, words.FORM_MESSAGE_GONE)
            return
        image = image_of(message, self._s.files)
        if image is None:
            await answer_privately(interaction, self.no_image)
            return
        await self._run(interaction, text, message, image)

    async def _fetch(self, interaction: discord.Interaction, target: FormTarget) -> discord.Message | None:
        channel = self._s.client.get_partial_messageable(target.channel_id, guild_id=interaction.guild_id)
        try:
            return await channel.fetch_message(target.message_id)
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("a form's message is gone", extra={"status": exc.status, "code": exc.code})
            return None

    def _form(self, custom_id: str) -> InstructionForm:
        raise NotImplementedError

    async def _run(
        self, interaction: discord.Interaction, text: str, message: discord.Message, image: ImageRef
    ) -> None:
        raise NotImplementedError


class EditDoor(_MessageDoor):
    """Edit with Nano Banana: the context menu, its form, and the conversation it starts."""

    menu = words.EDIT_MENU
    kind = EDIT
    no_image = words.NO_IMAGE_TO_EDIT

    def __init__(self, surface: Surface, kit: ControlKit) -> None:
        super().__init__(surface)
        self._kit = kit

    def _form(self, custom_id: str) -> InstructionForm:
        return InstructionForm(
            custom_id=custom_id,
            title=words.EDIT_TITLE,
            label=words.EDIT_LABEL,
            placeholder=words.EDIT_PLACEHOLDER,
        )

    async def _run(
        self, interaction: discord.Interaction, text: str, message: discord.Message, image: ImageRef
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


class PinDoor(_MessageDoor):
    """Pin as reference: the context menu and its one-name form; /pin does the pinning."""

    menu = words.PIN_MENU
    kind = PIN
    no_image = words.NO_IMAGE_TO_PIN

    def __init__(self, surface: Surface, pins: PinCommands) -> None:
        super().__init__(surface)
        self._pins = pins

    def _form(self, custom_id: str) -> InstructionForm:
        return InstructionForm(
            custom_id=custom_id,
            title=words.PIN_MENU,
            label=words.PIN_LABEL,
            placeholder=words.PIN_PLACEHOLDER,
            short=True,
            max_length=MAX_NAME,
        )

    async def _run(
        self, interaction: discord.Interaction, text: str, message: discord.Message, image: ImageRef
    ) -> None:
        await self._pins.pin_images(interaction, text, images=(image,))
