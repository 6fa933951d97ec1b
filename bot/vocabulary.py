"""The neutral vocabulary adapters and the conversation core speak: keys, turns, replies, sinks."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Identifies one conversation: a Discord thread, a Slack thread, a console session.

    Discord: the thread id equals the id of the message it was started from, so the key is
    known before the thread exists. Slack: ``thread`` is the root message ``ts``.
    """

    platform: str
    workspace: str
    channel: str
    thread: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"


class ScopeLevel(StrEnum):
    """How wide a stored setting applies; narrower wins (thread > channel > global)."""

    THREAD = "thread"
    CHANNEL = "channel"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class SettingScope:
    """Where a setting is stored: one thread, one channel, or everywhere."""

    level: ScopeLevel
    platform: str = ""
    workspace: str = ""
    channel: str = ""
    thread: str = ""

    @classmethod
    def for_thread(cls, key: ConversationKey) -> SettingScope:
        return cls(ScopeLevel.THREAD, key.platform, key.workspace, key.channel, key.thread)

    @classmethod
    def for_channel(cls, key: ConversationKey) -> SettingScope:
        return cls(ScopeLevel.CHANNEL, key.platform, key.workspace, key.channel)

    @classmethod
    def everywhere(cls) -> SettingScope:
        return cls(ScopeLevel.GLOBAL)

    def as_text(self) -> str:
        """A stable, unambiguous string form used as a storage key."""
        if self.level is ScopeLevel.GLOBAL:
            return "global"
        parts = [self.level.value, self.platform, self.workspace, self.channel]
        if self.level is ScopeLevel.THREAD:
            parts.append(self.thread)
        return "|".join(parts)


class SettingName(StrEnum):
    """Conversation settings users can change."""

    ASPECT_RATIO = "aspect_ratio"
    IMAGE_SIZE = "image_size"
    RESPONSE_MODE = "response_mode"
    MODEL = "model"


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


_SLACK_TS = re.compile(r"([0-9]{1,12})\.([0-9]{1,6})", re.ASCII)
# Discord snowflakes carry milliseconds since 2015-01-01 in their top 42 bits.
DISCORD_EPOCH_MS = 1_420_070_400_000


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a message sits in its conversation's order: when the platform says it was posted
    (microseconds since the Unix epoch) and a tie-break among messages of the same instant."""

    posted_us: int
    tiebreak: int = 0
    # Whether an earlier message may still be in transit when this one arrives, so the turn
    # waits a moment after its posting time for stragglers (see bot.turn_order): true for
    # platform stamps (Slack retries, replicas and Socket Mode connections deliver in any order;
    # Discord resumes and rolling deploys replay), false for a stamp taken on arrival.
    settle: bool = field(default=False, compare=False)

    @property
    def posted_at(self) -> float:
        return self.posted_us / 1_000_000

    @classmethod
    def now(cls, clock: Callable[[], float] = time.time) -> Position:
        return cls(int(clock() * 1_000_000))

    @classmethod
    def from_slack_ts(cls, ts: str) -> Position:
        """A Slack ``ts`` ("1700000000.000100", unique per channel); now if it is malformed."""
        match = _SLACK_TS.fullmatch(ts)
        if match is None:
            return cls.now()
        seconds, fraction = match.groups()
        return cls(int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")), settle=True)

    @classmethod
    def from_snowflake(cls, snowflake: int) -> Position:
        """A Discord id: its timestamp, then its worker/process/increment bits as the tie-break."""
        if not 0 < snowflake < 2**63:
            return cls.now()
        return cls(((snowflake >> 22) + DISCORD_EPOCH_MS) * 1000, snowflake & 0x3FFFFF, settle=True)


class AttachmentUnavailable(Exception):
    """Raised by an adapter's ``ImageRef.load`` when a file cannot be downloaded."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


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
    """A generated image, ready to upload."""

    data: bytes
    mime_type: str
    filename: str


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
class Usage:
    """Tokens the model billed for one turn, by modality where the API reports it."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thought_tokens: int = 0
    total_tokens: int = 0
    prompt_by_modality: dict[str, int] = field(default_factory=dict)
    output_by_modality: dict[str, int] = field(default_factory=dict)
    images_generated: int = 0
    # Estimated from the model's list prices when the turn was recorded.
    cost_usd: float = 0.0


class ReplySink(Protocol):
    """How the core talks back to the place a turn came from."""

    def working(self) -> AbstractAsyncContextManager[None]:
        """Show a working indicator (typing, reaction, spinner) while the block runs."""
        ...

    async def send(self, reply: Reply) -> Sequence[str]:
        """Post a reply in the conversation, parts in order; returns the ids of the platform
        messages that show it (the core remembers them, so replying to one continues from it)."""
        ...

    async def notice(self, text: str) -> None:
        """Tell the author something short (privately where the platform can)."""
        ...
