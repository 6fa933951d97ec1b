"""The settings dialogue, written once: every conversation command with the core's rules and words."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bot.config import Config
from bot.entry.access import AccessPolicy
from bot.entry.commands import Command, CommandName, CommandReply, HelpEntry
from bot.entry.pins import PinDesk
from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.model_choice import store_model, validate_model
from bot.limits.usage_report import usage_report
from bot.text import messages, model_words, pin_words
from bot.text.conversation_settings import ConversationSettings
from bot.text.flags import MAX_TAKES, MIN_TAKES, parse_flags
from bot.text.settings import (
    EffectiveSettings,
    SettingError,
    validate_aspect_ratio,
    validate_image_size,
    validate_response_mode,
    validate_thinking_level,
)
from bot.turns import framing
from bot.turns.forgetting import Forgetting
from bot.turns.request import VARIATIONS_TAKES, TurnKind, TurnRequest
from bot.vocabulary import ConversationKey, Position, ResponseMode, ScopeLevel, SettingName, SettingScope
from storage.protocol import Store

Acknowledge = Callable[[], Awaitable[None]]
# The region editor's address for a person's new link to a turn's image (None: no editor).
EditorLink = Callable[[ConversationKey, int, str], Awaitable[str | None]]

_SETTINGS = {
    CommandName.ASPECT: SettingName.ASPECT_RATIO,
    CommandName.SIZE: SettingName.IMAGE_SIZE,
    CommandName.MODEL: SettingName.MODEL,
    CommandName.MODE: SettingName.RESPONSE_MODE,
    CommandName.THINK: SettingName.THINKING,
}
_TURNS = {
    CommandName.VARIATIONS: TurnKind.VARIATIONS,
    CommandName.CONTINUE: TurnKind.CONTINUE,
    CommandName.REDO: TurnKind.REDO_SIZE,
}
MODE_CHOICES = ("image", "text+image")
_PINS = (CommandName.PIN, CommandName.PINS, CommandName.UNPIN)
_HELP_ENTRIES = {**messages.HELP_ENTRIES, **pin_words.HELP_ENTRIES}


def scope_of(command: Command) -> SettingScope:
    if command.level is ScopeLevel.THREAD:
        return SettingScope.for_thread(command.key)
    return SettingScope.for_channel(command.key)


def _refused(text: str) -> CommandReply:
    return CommandReply(text, refused=True)


class Dialogue:
    """Takes a neutral ``Command`` and returns a neutral ``CommandReply``; adapters render it."""

    def __init__(
        self,
        *,
        store: Store,
        config: Config,
        access: AccessPolicy,
        forgetting: Forgetting,
        settings: ConversationSettings,
        editor_link: EditorLink | None = None,
        pins: PinDesk | None = None,
    ) -> None:
        self._editor_link = editor_link
        self._pins = pins
        self._store = store
        self._config = config
        self._access = access
        self._forgetting = forgetting
        self._settings = settings

    async def run(self, command: Command, acknowledge: Acknowledge | None = None) -> CommandReply:
        """The answer to ``command``. ``acknowledge`` is awaited once the quick checks passed and
        before anything that may wait (a forget waits for the conversation's turns in flight)."""
        if command.name in _SETTINGS:
            return await self._setting(command)
        if command.name in _TURNS:
            return await self._turn(command)
        if command.name is CommandName.FORGET:
            return await self._forget(command, acknowledge)
        if command.name is CommandName.USAGE:
            return CommandReply(await self._usage(command))
        if command.name in (CommandName.ZOOM, CommandName.PAN):
            return await self._frame(command)
        if command.name is CommandName.EDIT:
            return await self._edit(command)
        if command.name in _PINS and self._pins is not None:
            return await self._pins.run(command)
        return CommandReply(help=self._help(command))

    def title(self, prompt: str) -> str:
        """What a person asked for without its inline flags (``--ar 16:9``), to name a thread."""
        return parse_flags(prompt, self._settings.capabilities, models=self._settings.models).text

    async def change(self, scope: SettingScope, name: SettingName, value: str) -> str:
        """Validate and store a setting; returns the confirmation or raises SettingError.

        A ratio or size is checked against the scope's model; a model must be one this bot
        offers, and settings it cannot use are reset (the sentence says which)."""
        key = _key_of(scope)
        if name is SettingName.MODEL:
            model = validate_model(value, self._settings.allowed_models)
            notes = await store_model(self._store, scope, model, lambda: self._settings.effective(key))
            return messages.model_changed(model, scope.level, notes)
        # The settings a new turn in ``scope`` would get (a channel's: its new conversations').
        caps = (await self._settings.effective(key)).caps or self._settings.capabilities
        if name is SettingName.ASPECT_RATIO:
            cleaned = validate_aspect_ratio(value, caps)
        elif name is SettingName.IMAGE_SIZE:
            cleaned = validate_image_size(value, caps)
        elif name is SettingName.THINKING:
            cleaned = validate_thinking_level(value, caps)
        else:
            cleaned = validate_response_mode(value).value
        await self._store.set_setting(scope, name.value, cleaned)
        return messages.setting_changed(messages.now_set(name, cleaned), scope.level)

    async def _setting(self, command: Command) -> CommandReply:
        name = _SETTINGS[command.name]
        settings = await self._settings.effective(command.key)
        caps = settings.caps or self._settings.capabilities
        if name is SettingName.IMAGE_SIZE and not caps.supports_sizes():
            return _refused(messages.single_size(caps.model))
        if name is SettingName.THINKING and not caps.supports_thinking():
            return _refused(model_words.no_thinking(caps.model))
        if command.argument.strip():
            try:
                return CommandReply(await self.change(scope_of(command), name, command.argument))
            except SettingError as exc:
                return _refused(exc.user_message)
        current, choices = _current(name, settings, caps, self._settings.allowed_models)
        how = command.changed_with or f"/{command.name}"
        return CommandReply(messages.current_setting(name, current, command.level, how, choices))

    async def _turn(self, command: Command) -> CommandReply:
        kind = _TURNS[command.name]
        takes, size, source = 1, None, command.turn_id
        if kind is TurnKind.VARIATIONS:
            argument = command.argument.strip()
            takes = int(argument) if argument.isdigit() else VARIATIONS_TAKES if not argument else 0
            if not MIN_TAKES <= takes <= MAX_TAKES:
                return _refused(messages.takes_out_of_range(argument))
        elif kind is TurnKind.REDO_SIZE:
            size = command.argument.strip() or None
            if size is None:
                return _refused(messages.REDO_WHICH_SIZE)
        elif source is None:
            return _take(command)
        if source is None:
            info = await self._store.conversation(command.key)
            if info is None or info.head_turn_id is None:
                return _refused(messages.NO_IMAGE_YET)
            source = info.head_turn_id
        return CommandReply(turn=_request(command, kind, source, takes, size))

    async def _frame(self, command: Command) -> CommandReply:
        """Zoom out or pan the image a control sits on, or the conversation's latest."""
        zooming = command.name is CommandName.ZOOM
        frame = (framing.zoom if zooming else framing.pan)(command.argument)
        if frame is None:
            return _refused(messages.ZOOM_WHICH if zooming else messages.PAN_WHICH)
        source = command.turn_id if command.turn_id is not None else await self._head(command.key)
        if source is None:
            return _refused(messages.NO_IMAGE_YET)
        request = _request(command, TurnKind.FRAME, source, 1, None)
        return CommandReply(turn=replace(request, frame=frame.spec))

    async def _edit(self, command: Command) -> CommandReply:
        """The person's own link to the region editor, answered to them alone."""
        if self._editor_link is None:
            return _refused(messages.EDITOR_OFF)
        source = command.turn_id if command.turn_id is not None else await self._head(command.key)
        if source is None:
            return _refused(messages.NO_IMAGE_YET)
        url = await self._editor_link(command.key, source, command.author.id)
        return CommandReply(messages.EDITOR_LINK.format(url=url)) if url else _refused(messages.EDITOR_OFF)

    async def _head(self, key: ConversationKey) -> int | None:
        info = await self._store.conversation(key)
        return info.head_turn_id if info is not None else None

    async def _forget(self, command: Command, acknowledge: Acknowledge | None) -> CommandReply:
        allowed = await self._forgetting.may_forget(
            command.key, command.author, moderator=command.moderator, opener=command.opener
        )
        if not allowed:
            return _refused(messages.FORGET_REFUSED)
        if acknowledge is not None:
            await acknowledge()
        deleted = await self._forgetting.forget(command.key)
        return CommandReply(messages.forget_done(deleted, command.next_message_is_turn), public=True)

    async def _usage(self, command: Command) -> str:
        admin = self._access.is_admin(command.key.platform, command.author.id)
        model = (await self._settings.effective(command.key)).model or self._settings.capabilities.model
        return await usage_report(
            self._store, self._config, command.key, command.author, admin=admin, model=model
        )

    def _help(self, command: Command) -> tuple[HelpEntry, ...]:
        offered = command.offered or tuple(CommandName)
        caps = self._settings.capabilities
        hidden = {CommandName.SIZE} if not caps.supports_sizes() else set()
        if not caps.supports_thinking():
            hidden.add(CommandName.THINK)
        if len(self._settings.allowed_models) < 2:
            hidden.add(CommandName.MODEL)
        if self._editor_link is None:
            hidden.add(CommandName.EDIT)
        if self._pins is None:
            hidden.update(_PINS)
        return tuple(HelpEntry(*_HELP_ENTRIES[name]) for name in offered if name not in hidden)


def _current(
    name: SettingName, settings: EffectiveSettings, caps: ModelCapabilities, models: tuple[str, ...]
) -> tuple[str | None, tuple[str, ...]]:
    """A setting's value where it was asked, and what it may be."""
    if name is SettingName.ASPECT_RATIO:
        return settings.aspect_ratio, caps.aspect_ratios
    if name is SettingName.IMAGE_SIZE:
        return settings.image_size, caps.image_sizes
    if name is SettingName.MODEL:
        return settings.model or caps.model, models
    if name is SettingName.THINKING:
        return settings.thinking_level, caps.thinking_levels
    image_only = settings.response_mode is ResponseMode.IMAGE_ONLY
    return MODE_CHOICES[0] if image_only else MODE_CHOICES[1], MODE_CHOICES


def _take(command: Command) -> CommandReply:
    """CONTINUE by number, on a surface that numbers the takes it showed."""
    takes, argument = command.takes_shown, command.argument.strip()
    if not takes:
        return _refused(messages.NO_TAKES)
    if not argument.isdigit() or not 1 <= int(argument) <= len(takes):
        return _refused(messages.which_take(len(takes)))
    source = takes[int(argument) - 1]
    return CommandReply(turn=_request(command, TurnKind.CONTINUE, source, 1, None))


def _request(command: Command, kind: TurnKind, source: int, takes: int, size: str | None) -> TurnRequest:
    """The turn a command runs: claimed once by its request id, placed by its position."""
    return TurnRequest.on_turn(
        kind,
        command.key,
        source,
        command.author,
        command.request_id or uuid.uuid4().hex,
        takes=takes,
        image_size=size,
        position=command.position or Position.now(),
    )


def _key_of(scope: SettingScope) -> ConversationKey:
    return ConversationKey(scope.platform, scope.workspace, scope.channel, scope.thread)
