"""The reference board's commands (/pin, /pins, /unpin), written once for every surface.

A pin names an image for a whole Discord server, Slack workspace or console (the conversation
key's platform and workspace). A name is taken once per workspace: pinning a taken name is
refused with one sentence, so nobody replaces somebody else's reference by accident; its pinner
(or an admin) unpins it first. Admins are the bot's (ADMIN_USERS) and the platform's (the
adapter says: Discord's Manage Server, Slack's workspace admins and owners).
"""

from __future__ import annotations

import logging

from bot.entry.access import AccessPolicy
from bot.entry.commands import Command, CommandName, CommandReply, ShownPin
from bot.images.budget import ImageBudget
from bot.images.checks import ImageLimits, ImageRejected, check_declared, prepare_image_async
from bot.images.thumbnails import thumbnail
from bot.text import pin_words
from bot.text.settings import SettingError
from bot.turns import framing
from bot.vocabulary import AttachmentUnavailable, ConversationKey
from storage.content import Blob
from storage.protocol import Store

log = logging.getLogger(__name__)

# /pins previews this many pins (the first by name); the rest are listed by name only.
PREVIEWS = 10


def _refused(text: str) -> CommandReply:
    return CommandReply(text, refused=True)


class PinDesk:
    """Pins, lists and unpins; the dialogue hands it PIN, PINS and UNPIN."""

    def __init__(
        self, store: Store, access: AccessPolicy, limits: ImageLimits, decodes: ImageBudget | None = None
    ) -> None:
        self._store = store
        self._access = access
        self._limits = limits
        self._decodes = decodes

    async def run(self, command: Command) -> CommandReply:
        if command.name is CommandName.PINS:
            return await self._list(command.key)
        if not command.argument.strip():
            which = (
                pin_words.PIN_WHICH_NAME if command.name is CommandName.PIN else pin_words.UNPIN_WHICH_NAME
            )
            return _refused(which)
        try:
            name = pin_words.clean_name(command.argument)
        except SettingError as exc:
            return _refused(exc.user_message)
        if command.name is CommandName.PIN:
            return await self._pin(command, name)
        return await self._unpin(command, name)

    async def _pin(self, command: Command, name: str) -> CommandReply:
        key = command.key
        if await self._store.pins(key.platform, key.workspace, [name]):
            return _refused(pin_words.name_taken(name))
        if len(command.images) > 1:
            return _refused(pin_words.ONE_IMAGE_TO_PIN)
        image: Blob | str | None
        try:
            image = await self._attached(command) if command.images else await self._latest(key)
        except (ImageRejected, AttachmentUnavailable) as exc:
            return _refused(exc.user_message)
        if image is None:
            return _refused(pin_words.NOTHING_TO_PIN)
        try:
            pin = await self._store.add_pin(key.platform, key.workspace, name, image, command.author.id)
        except ValueError:  # the conversation was forgotten while this looked at it
            return _refused(pin_words.NOTHING_TO_PIN)
        if pin.sha256 != (image if isinstance(image, str) else image.sha256):  # pinned meanwhile
            return _refused(pin_words.name_taken(name))
        log.info("pinned", extra={"platform": key.platform, "workspace": key.workspace, "pin": name})
        return CommandReply(pin_words.pinned(name), public=True)

    async def _attached(self, command: Command) -> Blob:
        ref = command.images[0]
        check_declared(ref.filename, ref.size, self._limits)
        prepared = await prepare_image_async(await ref.load(), ref.filename, self._limits, self._decodes)
        return prepared.blob

    async def _latest(self, key: ConversationKey) -> str | None:
        """The hash of the conversation's latest image; outside a conversation (a Slack slash
        command, a Discord channel), the latest image of the channel's latest conversation."""
        info = await self._store.conversation(key)
        if info is None or info.head_turn_id is None:
            info = await self._store.latest_conversation(key.platform, key.workspace, key.channel)
        if info is None or info.head_turn_id is None:
            return None
        turn = await self._store.turn(info.head_turn_id)
        found = framing.first_image(turn) if turn is not None else None
        return found[0] if found is not None else None

    async def _list(self, key: ConversationKey) -> CommandReply:
        pins = await self._store.pins(key.platform, key.workspace)
        if not pins:
            return CommandReply(pin_words.NO_PINS)
        shown = pins[:PREVIEWS]
        data = await self._store.load_blobs(p.sha256 for p in shown)
        previews = [await thumbnail(data[p.sha256]) if p.sha256 in data else b"" for p in shown]
        listed = [
            ShownPin(p.name, p.pinned_by, previews[i] if i < len(previews) else b"")
            for i, p in enumerate(pins)
        ]
        text = "\n".join([pin_words.PINS_HEADING, *(f"• {p.name}" for p in pins)])
        return CommandReply(text, pins=tuple(listed))

    async def _unpin(self, command: Command, name: str) -> CommandReply:
        key = command.key
        found = await self._store.pins(key.platform, key.workspace, [name])
        if not found:
            return _refused(pin_words.unknown_pin(name))
        admin = command.moderator or self._access.is_admin(key.platform, command.author.id)
        if found[0].pinned_by != command.author.id and not admin:
            return _refused(pin_words.unpin_refused(name))
        await self._store.remove_pin(key.platform, key.workspace, name)
        log.info("unpinned", extra={"platform": key.platform, "workspace": key.workspace, "pin": name})
        return CommandReply(pin_words.unpinned(name), public=True)
