"""Discord conversations: mentions, thread replies, DMs and /imagine handed to the core as turns."""

from __future__ import annotations

import logging

import discord

from adapters.discord import words
from adapters.discord.interactions import answer_privately, author_of, echo, interaction_guard
from adapters.discord.permissions import log_if_forbidden
from adapters.discord.places import PLATFORM, mention_pattern, mentions_bot, strip_mentions, thread_name
from adapters.discord.reach import InteractionSink, reachable, reachless_key
from adapters.discord.sink import NO_MENTIONS, ChannelSink, upload_limit
from adapters.discord.surface import Surface
from adapters.discord.views import ControlKit
from bot.entry.routing import Inbound
from bot.entry.service import FAILED_MESSAGE, INTERRUPTED_MESSAGE
from bot.text.settings import SettingError, validate_aspect_ratio
from bot.vocabulary import ConversationKey, Position, Reply, SettingName, SettingScope, Trigger, Turn

log = logging.getLogger(__name__)
# Discord error code for "a thread has already been created for this message".
THREAD_ALREADY_CREATED = 160004


class Conversation:
    """Messages and /imagine -> Turns for the core, each conversation in its own thread."""

    def __init__(self, surface: Surface, kit: ControlKit) -> None:
        self._s = surface
        self._kit = kit
        self.in_flight = surface.in_flight

    async def on_message(self, message: discord.Message) -> None:
        # Bots (this one included: Discord echoes our own posts) and webhooks never start turns;
        # nor do system messages (thread created, pins, ...).
        if message.author.bot or message.webhook_id is not None or self._s.in_flight.closing:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        me = self._s.client.user
        if me is None:
            return
        async with self.in_flight.track():
            try:
                await self._route(message, me.id)
            except Exception:
                log.exception("discord message handling failed", extra={"message_id": message.id})

    async def _route(self, message: discord.Message, bot_id: int) -> None:
        place = await self._s.places.of_message(message)
        if place is None:
            return
        mentioned = mentions_bot(message, bot_id)
        trigger = Trigger.MENTION if mentioned else Trigger.MESSAGE
        if mentioned and place.threadable:
            thread = await self._open_thread(message, bot_id)
            if thread is not None:
                await self._receive(message, place.thread_key(message.id), thread, trigger, None)
            return
        if place.is_thread and not mentioned and not self._s.config.discord.message_content:
            return  # without the message-content intent an unmentioned message arrives empty
        if not (place.is_dm or place.is_thread or mentioned):
            return
        ref = message.reference
        same_channel = ref is not None and ref.message_id is not None and ref.channel_id == message.channel.id
        await self._receive(
            message,
            place.key,
            message.channel,
            trigger,
            message,
            addressed=mentioned or place.is_dm or place.bot_owned,
            # Replying to one of the bot's earlier images continues from that image.
            replying_to=str(ref.message_id) if same_channel and ref is not None else None,
        )

    def _prompt(self, message: discord.Message, bot_id: int) -> str:
        role = message.guild.self_role if message.guild else None
        return strip_mentions(message.content, mention_pattern(bot_id, role.id if role else None))

    async def _receive(
        self,
        message: discord.Message,
        key: ConversationKey,
        channel: discord.abc.Messageable,
        trigger: Trigger,
        reply_to: discord.Message | None,
        *,
        addressed: bool = True,
        replying_to: str | None = None,
    ) -> None:
        """Hand the message to the core once; it decides whether it is a turn and runs it."""
        me = self._s.client.user
        assert me is not None
        turn = Turn(
            key=key,
            message_id=str(message.id),
            author=author_of(message.author),
            text=self._prompt(message, me.id),
            images=tuple(self._s.files.ref(a) for a in message.attachments),
            trigger=trigger,
            position=Position.from_snowflake(message.id),
        )
        sink = ChannelSink(
            channel=channel,
            key=key,
            limit=upload_limit(channel),
            reply_to=reply_to,
            kit=self._kit,
        )
        turned: list[bool] = []
        try:
            await self._s.service.receive(
                Inbound(turn, addressed, replying_to), sink, on_turn=lambda: turned.append(True)
            )
        except Exception:
            if not turned:  # failed while deciding: not known to be a turn, so nobody to answer
                raise
            log.exception("discord turn failed", extra={"conversation": str(key), "message_id": message.id})
            await sink.send(Reply.error(FAILED_MESSAGE))

    async def _open_thread(self, message: discord.Message, bot_id: int) -> discord.Thread | None:
        """A thread on the user's message (its id is the message id), or None after saying why."""
        prompt = self._s.service.dialogue.title(self._prompt(message, bot_id))
        try:
            return await message.create_thread(name=thread_name(prompt))
        except discord.Forbidden as exc:
            log_if_forbidden(exc, doing="thread", channel_id=message.channel.id, in_thread=False)
            await self._say(message.channel, words.THREAD_FORBIDDEN, message)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:  # a redelivered mention: reuse its thread
                existing = message.guild.get_thread(message.id) if message.guild else None
                if existing is not None:
                    return existing
                fetched = await self._s.client.fetch_channel(message.id)
                if isinstance(fetched, discord.Thread):
                    return fetched
            log.warning("discord thread creation failed", extra={"status": exc.status, "code": exc.code})
            await self._say(message.channel, words.THREAD_FAILED, message)
        return None

    async def _say(self, channel: discord.abc.Messageable, text: str, reply_to: discord.Message) -> None:
        try:
            await channel.send(
                text,
                allowed_mentions=NO_MENTIONS,
                reference=reply_to.to_reference(fail_if_not_exists=False),
                mention_author=False,
            )
        except discord.HTTPException as exc:
            channel_id = getattr(channel, "id", None)
            if not log_if_forbidden(exc, doing="post", channel_id=channel_id, in_thread=False):
                log.warning("discord post failed", extra={"status": exc.status, "code": exc.code})

    @interaction_guard
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        aspect_ratio: str | None,
        images: list[discord.Attachment],
    ) -> None:
        if aspect_ratio:
            # Checked before anything public is posted: a stale client can send any value.
            try:
                aspect_ratio = validate_aspect_ratio(aspect_ratio, self._s.service.capabilities)
            except SettingError as exc:
                await answer_privately(interaction, exc.user_message)
                return
        # Interactions must be answered within 3 s; "thinking" shows until the echo replaces it.
        await interaction.response.defer(thinking=True)
        where = await self._imagine_where(interaction, prompt, aspect_ratio, len(images))
        if where is None:
            return
        key, sink = where
        if aspect_ratio:
            try:
                await self._s.service.change_setting(
                    SettingScope.for_thread(key), SettingName.ASPECT_RATIO, aspect_ratio
                )
            except SettingError as exc:
                await answer_privately(interaction, exc.user_message)
                return
        turn = Turn(
            key=key,
            message_id=str(interaction.id),
            author=author_of(interaction.user),
            text=prompt,
            images=tuple(self._s.files.ref(a) for a in images),
            trigger=Trigger.COMMAND,
            position=Position.from_snowflake(interaction.id),
        )
        await self._s.service.handle_turn(turn, sink)

    async def _imagine_where(
        self, interaction: discord.Interaction, prompt: str, aspect_ratio: str | None, images: int
    ) -> tuple[ConversationKey, ChannelSink] | None:
        """The echo of the prompt posted, the conversation /imagine starts or continues and where
        its reply goes: a thread on the echo, the thread or DM itself, or (where the bot cannot
        read the channel) the interaction's followups."""
        readable = reachable(interaction)
        place = await self._s.places.of_interaction(interaction) if readable else None
        if readable and place is None:
            await answer_privately(interaction, words.UNKNOWN_PLACE)
            return None
        original = await interaction.edit_original_response(
            content=echo(interaction.user, prompt, aspect_ratio, images), allowed_mentions=NO_MENTIONS
        )
        if place is None:
            key = reachless_key(interaction, interaction.id)
            return key, InteractionSink(interaction, key, self._kit)
        channel = self._s.channel(interaction, place)
        key = place.key
        if place.threadable:
            name = thread_name(self._s.service.dialogue.title(prompt))
            try:
                channel = await original.create_thread(name=name)
            except discord.Forbidden:
                await answer_privately(interaction, words.THREAD_FORBIDDEN)
                return None
            key = place.thread_key(original.id)
        return key, ChannelSink(channel=channel, key=key, limit=upload_limit(channel), kit=self._kit)

    async def announce_interrupted(self) -> None:
        """Tell each person whose turn a crash or restart cut off, replying to their message in
        the conversation (or where they posted it, if the thread was never opened)."""
        await self._s.service.announce_interrupted(PLATFORM, self._tell_interrupted)

    async def _tell_interrupted(self, key: ConversationKey, message_id: str) -> None:
        channel = await self._reachable(int(key.thread)) or await self._reachable(int(key.channel))
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            return
        # An interrupted /imagine or button was an interaction, not a message: no reference
        # target then, and fail_if_not_exists=False keeps the notice anyway.
        reference = discord.MessageReference(
            message_id=int(message_id), channel_id=channel.id, fail_if_not_exists=False
        )
        try:
            await channel.send(INTERRUPTED_MESSAGE, reference=reference, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not announce an interrupted turn", extra={"status": exc.status})

    async def _reachable(self, channel_id: int) -> object | None:
        try:
            return self._s.client.get_channel(channel_id) or await self._s.client.fetch_channel(channel_id)
        except discord.HTTPException:
            return None
