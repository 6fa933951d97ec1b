"""Discord events and interactions translated into turns for the conversation service."""

from __future__ import annotations

import logging
from typing import ParamSpec

import discord
from discord import app_commands

from adapters.discord.commands import MalformedOptions
from adapters.discord.files import DiscordFiles
from adapters.discord.interactions import InFlight, answer_privately, author_of, echo, interaction_guard
from adapters.discord.permissions import log_if_forbidden
from adapters.discord.places import (
    PLATFORM,
    Place,
    PlaceResolver,
    mention_pattern,
    mentions_bot,
    strip_mentions,
    thread_name,
)
from adapters.discord.sink import MAX_CONTENT, NO_MENTIONS, ChannelSink, upload_limit
from adapters.discord.variations import control_request, describe_model
from bot.config import Config
from bot.entry.routing import Inbound
from bot.entry.service import (
    FAILED_MESSAGE,
    INTERRUPTED_MESSAGE,
    UNKNOWN_TURN_MESSAGE,
    ConversationService,
)
from bot.text import messages
from bot.text.flags import parse_flags
from bot.text.messages import DISCORD_FORGET_WHERE as FORGET_WHERE
from bot.text.messages import DISCORD_HELP as HELP
from bot.text.messages import DISCORD_MALFORMED_COMMAND as MALFORMED_COMMAND
from bot.text.messages import DISCORD_THREAD_FAILED as THREAD_FAILED
from bot.text.messages import DISCORD_THREAD_FORBIDDEN as THREAD_FORBIDDEN
from bot.text.messages import DISCORD_UNKNOWN_PLACE as UNKNOWN_PLACE
from bot.text.settings import SettingError, validate_aspect_ratio
from bot.turns.forgetting import FORGET_REFUSED
from bot.turns.request import TurnKind, TurnRequest
from bot.vocabulary import (
    ConversationKey,
    Position,
    Reply,
    SettingName,
    SettingScope,
    Trigger,
    Turn,
)

log = logging.getLogger(__name__)
# Discord error code for "a thread has already been created for this message".
THREAD_ALREADY_CREATED = 160004
P = ParamSpec("P")


class DiscordHandlers:
    """Messages, slash commands and reply controls -> Turns and service calls; nothing else."""

    def __init__(self, client: discord.Client, service: ConversationService, config: Config) -> None:
        self._client = client
        self._service = service
        self._config = config
        self._places = PlaceResolver(client)
        self.in_flight = InFlight()
        self.files = DiscordFiles(
            api_url=config.discord.api_url, max_bytes=config.images.max_attachment_bytes
        )

    # -- messages ----------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        # Bots (this one included: Discord echoes our own posts) and webhooks never start turns;
        # nor do system messages (thread created, pins, ...).
        if message.author.bot or message.webhook_id is not None or self.in_flight.closing:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        me = self._client.user
        if me is None:
            return
        async with self.in_flight.track():
            try:
                await self._route(message, me.id)
            except Exception:
                log.exception("discord message handling failed", extra={"message_id": message.id})

    async def _route(self, message: discord.Message, bot_id: int) -> None:
        place = await self._places.of_message(message)
        if place is None:
            return
        mentioned = mentions_bot(message, bot_id)
        trigger = Trigger.MENTION if mentioned else Trigger.MESSAGE
        if mentioned and place.threadable:
            thread = await self._open_thread(message, bot_id)
            if thread is not None:
                await self._receive(message, place.thread_key(message.id), thread, trigger, None)
            return
        if place.is_thread and not mentioned and not self._config.discord.message_content:
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
        me = self._client.user
        assert me is not None
        turn = Turn(
            key=key,
            message_id=str(message.id),
            author=author_of(message.author),
            text=self._prompt(message, me.id),
            images=tuple(self.files.ref(a) for a in message.attachments),
            trigger=trigger,
            position=Position.from_snowflake(message.id),
        )
        sink = ChannelSink(
            channel=channel,
            key=key,
            limit=upload_limit(channel),
            reply_to=reply_to,
        )
        turned: list[bool] = []
        try:
            await self._service.receive(
                Inbound(turn, addressed, replying_to), sink, on_turn=lambda: turned.append(True)
            )
        except Exception:
            if not turned:  # failed while deciding: not known to be a turn, so nobody to answer
                raise
            log.exception("discord turn failed", extra={"conversation": str(key), "message_id": message.id})
            await sink.send(Reply.error(FAILED_MESSAGE))

    async def _open_thread(self, message: discord.Message, bot_id: int) -> discord.Thread | None:
        """A thread on the user's message (its id is the message id), or None after saying why."""
        prompt = parse_flags(self._prompt(message, bot_id), self._service.capabilities).text
        try:
            return await message.create_thread(name=thread_name(prompt))
        except discord.Forbidden as exc:
            log_if_forbidden(exc, doing="thread", channel_id=message.channel.id, in_thread=False)
            await self._say(message.channel, THREAD_FORBIDDEN, message)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:  # a redelivered mention: reuse its thread
                existing = message.guild.get_thread(message.id) if message.guild else None
                if existing is not None:
                    return existing
                fetched = await self._client.fetch_channel(message.id)
                if isinstance(fetched, discord.Thread):
                    return fetched
            log.warning("discord thread creation failed", extra={"status": exc.status, "code": exc.code})
            await self._say(message.channel, THREAD_FAILED, message)
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

    # -- interactions ------------------------------------------------------------------------

    def _channel(self, interaction: discord.Interaction, place: Place) -> discord.abc.Messageable:
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            return channel
        return self._client.get_partial_messageable(place.channel_id, guild_id=place.guild_id)

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
                aspect_ratio = validate_aspect_ratio(aspect_ratio, self._service.capabilities)
            except SettingError as exc:
                await answer_privately(interaction, exc.user_message)
                return
        # Interactions must be answered within 3 s; "thinking" shows until the echo replaces it.
        await interaction.response.defer(thinking=True)
        place = await self._places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, UNKNOWN_PLACE)
            return
        original = await interaction.edit_original_response(
            content=echo(interaction.user, prompt, aspect_ratio, len(images)), allowed_mentions=NO_MENTIONS
        )
        channel = self._channel(interaction, place)
        key = place.key
        if place.threadable:
            name = thread_name(parse_flags(prompt, self._service.capabilities).text)
            try:
                channel = await original.create_thread(name=name)
            except discord.Forbidden:
                await answer_privately(interaction, THREAD_FORBIDDEN)
                return
            key = place.thread_key(original.id)
        if aspect_ratio:
            try:
                await self._service.change_setting(
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
            images=tuple(self.files.ref(a) for a in images),
            trigger=Trigger.COMMAND,
            position=Position.from_snowflake(interaction.id),
        )
        sink = ChannelSink(channel=channel, key=key, limit=upload_limit(channel), reply_to=None)
        await self._service.handle_turn(turn, sink)

    @interaction_guard
    async def regenerate(
        self, interaction: discord.Interaction, turn_id: int | None, aspect_ratio: str | None
    ) -> None:
        if turn_id is None:  # a custom id we did not write (a modified client)
            log.warning("a control without a valid turn id", extra={"interaction_id": interaction.id})
            await answer_privately(interaction, UNKNOWN_TURN_MESSAGE)
            return
        # Acknowledge the click at once (no visible change); the new image is posted in the thread.
        await interaction.response.defer()
        place = await self._places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, UNKNOWN_PLACE)
            return
        channel = self._channel(interaction, place)
        sink = ChannelSink(
            channel=channel,
            key=place.key,
            limit=upload_limit(channel),
            private=interaction.followup,
        )
        request = TurnRequest.regenerate(
            place.key,
            turn_id,
            author_of(interaction.user),
            request_id=str(interaction.id),
            position=Position.from_snowflake(interaction.id),
            aspect_ratio=aspect_ratio,
        )
        await self._service.run(request, sink)

    @interaction_guard
    async def turn_control(
        self, interaction: discord.Interaction, kind: TurnKind, turn_id: int, image_size: str | None
    ) -> None:
        """Variations, Continue from this one, Redo at a size: a turn of its kind, like Regenerate."""
        await interaction.response.defer()
        place = await self._places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, UNKNOWN_PLACE)
            return
        channel = self._channel(interaction, place)
        sink = ChannelSink(
            channel=channel, key=place.key, limit=upload_limit(channel), private=interaction.followup
        )
        author = author_of(interaction.user)
        await self._service.run(
            control_request(kind, place.key, turn_id, author, interaction.id, image_size), sink
        )

    @interaction_guard
    async def setting(self, interaction: discord.Interaction, name: SettingName, value: str | None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        place = await self._places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, UNKNOWN_PLACE)
            return
        key = place.key
        in_conversation = place.is_thread or place.is_dm
        if value is None:
            text = await self._describe_setting(key, name, in_conversation)
        else:
            scope = SettingScope.for_thread(key) if in_conversation else SettingScope.for_channel(key)
            try:
                text = await self._service.change_setting(scope, name, value)
            except SettingError as exc:
                text = exc.user_message
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def _describe_setting(self, key: ConversationKey, name: SettingName, in_conversation: bool) -> str:
        settings = await self._service.effective_settings(key)
        caps = settings.caps or self._service.capabilities
        scope = SettingScope.for_thread(key) if in_conversation else SettingScope.for_channel(key)
        if name is SettingName.MODEL:
            where = "this conversation" if in_conversation else "new conversations in this channel"
            return describe_model(settings, self._service.allowed_models, where)
        if name is SettingName.IMAGE_SIZE:
            current, choices, command = settings.image_size, caps.image_sizes, "/size"
        else:
            current, choices, command = settings.aspect_ratio, caps.aspect_ratios, "/aspect"
        return messages.current_setting(name, current, scope.level, command, choices)

    @interaction_guard
    async def forget(self, interaction: discord.Interaction) -> None:
        place = await self._places.of_interaction(interaction)
        if place is None or place.threadable:
            await answer_privately(interaction, UNKNOWN_PLACE if place is None else FORGET_WHERE)
            return
        channel = interaction.channel
        # Members who may manage threads here are the server's moderators; a person who made a
        # thread themselves (not one the bot opened) opened it.
        opener = str(channel.owner_id) if isinstance(channel, discord.Thread) and channel.owner_id else None
        allowed = await self._service.may_forget(
            place.key,
            author_of(interaction.user),
            moderator=interaction.permissions.manage_threads,
            opener=opener,
        )
        if not allowed:
            await answer_privately(interaction, FORGET_REFUSED)
            return
        # Forgetting waits for a turn in flight; the interaction must be answered within 3 s.
        await interaction.response.defer(thinking=True)
        deleted = await self._service.forget(place.key)
        if not deleted:
            text = messages.NOTHING_TO_FORGET
        else:
            text = messages.forgotten(deleted) + " "
            continues = place.is_dm or (place.bot_owned and self._config.discord.message_content)
            text += "Your next message starts a new image." if continues else messages.MENTION_TO_RESTART
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    async def announce_interrupted(self) -> None:
        """Tell each person whose turn a crash or restart cut off, replying to their message in
        the conversation (or where they posted it, if the thread was never opened)."""
        await self._service.announce_interrupted(PLATFORM, self._tell_interrupted)

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
            return self._client.get_channel(channel_id) or await self._client.fetch_channel(channel_id)
        except discord.HTTPException:
            return None

    @interaction_guard
    async def usage(self, interaction: discord.Interaction) -> None:
        place = await self._places.of_interaction(interaction)
        if place is None:
            await answer_privately(interaction, UNKNOWN_PLACE)
            return
        report = await self._service.usage_report(place.key, author_of(interaction.user))
        await answer_privately(interaction, report)

    async def command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Answer what discord.py could not run instead of leaving "The application did not
        respond". Clients cache the command list, so a command this bot no longer registers (/size
        after a switch to a model without sizes) can still arrive."""
        if isinstance(error, app_commands.CommandNotFound):
            caps = self._service.capabilities
            if error.name == "size" and not caps.supports_sizes():
                text = messages.single_size(caps.model)
            else:
                text = f"/{error.name} is not one of my commands any more; type / to see the current ones."
            log.info("discord command not registered", extra={"command": error.name})
        elif isinstance(
            error, (MalformedOptions, app_commands.CommandSignatureMismatch, app_commands.TransformerError)
        ):
            # Options missing or of the wrong type: a forged or out-of-date client, not a bug here.
            log.warning(
                "discord command with malformed options",
                extra={"interaction_id": interaction.id, "error": type(error).__name__},
            )
            text = MALFORMED_COMMAND
        else:
            log.error("discord command failed", extra={"interaction_id": interaction.id}, exc_info=error)
            text = FAILED_MESSAGE
        await answer_privately(interaction, text)

    @interaction_guard
    async def help(self, interaction: discord.Interaction) -> None:
        caps = self._service.capabilities
        me = self._client.user
        name = me.display_name if me else "bot"
        refine = (
            "just keep talking in the thread, e.g. `make the sky warmer`."
            if self._config.discord.message_content
            else f"mention me again in the thread, e.g. `@{name} make the sky warmer`."
        )
        text = HELP.format(
            name=name,
            refine=refine,
            max_images=caps.max_input_images,
            size_flag=" or `--size 2K`" if caps.supports_sizes() else "",
            size_command=" and `/size`" if caps.supports_sizes() else "",
            ratios=", ".join(caps.aspect_ratios),
        )
        await interaction.response.send_message(text[:MAX_CONTENT], ephemeral=True)
