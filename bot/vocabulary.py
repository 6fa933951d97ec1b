"""The neutral vocabulary adapters and the conversation core speak: keys, turns, replies, sinks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from storage.records import DISCORD_EPOCH_MS as DISCORD_EPOCH_MS
from storage.records import ConversationKey as ConversationKey
from storage.records import Position as Position
from storage.records import ScopeLevel as ScopeLevel
from storage.records import SettingScope as SettingScope
from storage.records import Usage as Usage
from storage.records import WorkspaceForgotten as WorkspaceForgotten


class SettingName(StrEnum):
    """Conversation settings users can change."""

    ASPECT_RATIO = "aspect_ratio"
    IMAGE_SIZE = "image_size"
    RESPONSE_MODE = "response_mode"
    MODEL = "model"
    THINKING = "thinking_level"


class ResponseMode(StrEnum):
    """What the model is asked to return."""

    TEXT_AND_IMAGE = "text_image"
    IMAGE_ONLY = "image_only"


@dataclass(frozen=True, slots=True)
class Author:
    """Who wrote a turn, as the platform identifies them."""

    id: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An attachment not yet downloaded; ``load`` is bound to the adapter that made it.

    ``size`` and ``mime_type`` are what the platform claims, checked before loading; the bytes
    are checked again once loaded.
    """

    filename: str
    mime_type: str | None
    size: int | None
    load: Callable[[], Awaitable[bytes]]


class AttachmentUnavailable(Exception):
    """Raised by an adapter's ``ImageRef.load`` when a file cannot be downloaded. ``reason`` is
    a short fixed word for operators' metrics (``status``, ``unreachable``, ``deleted``...),
    never the file's name."""

    def __init__(self, user_message: str, *, reason: str = "unavailable") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.reason = reason


class Trigger(StrEnum):
    """What made a turn happen."""

    MESSAGE = "message"
    MENTION = "mention"
    COMMAND = "command"
    REGENERATE = "regenerate"


@dataclass(frozen=True, slots=True)
class Turn:
    """One inbound user message, already translated by an adapter."""

    key: ConversationKey
    message_id: str
    author: Author
    text: str
    images: tuple[ImageRef, ...] = ()
    # Continue from this stored turn (a reply to an earlier image) instead of the latest one.
    continue_from: int | None = None
    trigger: Trigger = Trigger.MESSAGE
    # The message's place in its conversation's order; None = the moment it reached the core.
    position: Position | None = None
    # One of several deliveries of the same message (Slack's app_mention beside its message
    # copy), possibly to another process: if the database cannot be reached to tell which copy
    # is the turn, the other copy says so, and this one stays quiet.
    echo: bool = False


@dataclass(frozen=True, slots=True)
class TextPart:
    """Visible model text."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """A generated image, ready to upload; ``alt`` is the prompt that made it (alt text)."""

    data: bytes
    mime_type: str
    filename: str
    alt: str = ""


ReplyPart = TextPart | ImagePart


class ActionKind(StrEnum):
    """Controls an adapter may attach to an image reply."""

    REGENERATE = "regenerate"
    ASPECT_RATIO = "aspect_ratio"
    FORGET = "forget"
    VARIATIONS = "variations"  # several takes of the turn at once
    REDO_SIZE = "redo_size"  # draw the turn again at a larger size (choices: the sizes offered)
    CONTINUE = "continue"  # make this take the conversation's head
    MODEL = "model"  # names the model that drew the reply (choices: its id)
    ZOOM = "zoom"  # zoom out of the image (choices: the factors, "1.5" and "2")
    PAN = "pan"  # extend the image on one side (choices: left, right, up, down)
    EDIT = "edit"  # a private link to the region editor (only with PUBLIC_URL)


@dataclass(frozen=True, slots=True)
class Action:
    """A control on a reply; ``turn_id`` lets it work after a restart."""

    kind: ActionKind
    turn_id: int
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """What the core hands back: parts in the model's order, plus controls."""

    parts: tuple[ReplyPart, ...]
    turn_id: int | None = None
    actions: tuple[Action, ...] = ()
    is_error: bool = False
    # (number, count) when this reply is one take of several sent one after another: a platform
    # that can may show them together once the last one arrives.
    take: tuple[int, int] | None = None

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.parts if isinstance(p, TextPart))

    @classmethod
    def error(cls, message: str) -> Reply:
        return cls(parts=(TextPart(message),), is_error=True)

    @classmethod
    def note(cls, message: str) -> Reply:
        return cls(parts=(TextPart(message),))


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One generation as operators count it (see ``bot.observing``): bounded values only.

    ``model`` is a known model id or ``other``; ``outcome`` how the call ended; tokens by type
    as billed (output image tokens estimated from the size when the answer has no breakdown);
    ``cost_usd`` the estimate from the price table; ``image_size`` the size it was drawn at."""

    model: str
    outcome: str
    seconds: float
    input_tokens: int = 0
    output_image_tokens: int = 0
    output_text_tokens: int = 0
    thinking_tokens: int = 0
    cost_usd: float = 0.0
    images: int = 0
    image_size: str = "1K"
    # The API's word for why the answer ended (``STOP``, ``IMAGE_SAFETY``...), when it said one.
    finish_reason: str | None = None


# Conversations outside any workspace (Discord DMs and group DMs) all carry this workspace.
PRIVATE_WORKSPACE = "dm"


def pin_board(key: ConversationKey, person: str) -> str:
    """The reference board a person uses in ``key``'s place: its workspace's, or, outside any
    workspace, their own (a pin made in one DM must not show in strangers' DMs)."""
    return f"{PRIVATE_WORKSPACE}:{person}" if key.workspace == PRIVATE_WORKSPACE else key.workspace
