"""The conversation commands as neutral records: what a person asked for, and what to answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.turns.request import TurnRequest
from bot.vocabulary import Author, ConversationKey, ImageRef, Position, ScopeLevel


class CommandName(StrEnum):
    """Every command of the settings dialogue; adapters map their slash commands, buttons,
    selects and console lines onto these."""

    ASPECT = "aspect"
    SIZE = "size"
    MODEL = "model"
    MODE = "mode"
    THINK = "think"
    VARIATIONS = "variations"
    CONTINUE = "continue"
    REDO = "redo"
    FORGET = "forget"
    USAGE = "usage"
    ZOOM = "zoom"
    PAN = "pan"
    EDIT = "edit"
    PIN = "pin"
    PINS = "pins"
    UNPIN = "unpin"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class Command:
    """One command as a person gave it, on any platform.

    ``argument`` is what they typed or picked ("" shows a setting instead of changing it);
    ``level`` is where a setting goes (this conversation, or the channel's new ones).
    """

    name: CommandName
    key: ConversationKey
    author: Author
    argument: str = ""
    level: ScopeLevel = ScopeLevel.THREAD
    # The image a control sits on; None: the conversation's latest.
    turn_id: int | None = None
    # Claims the turn a command starts once (a click's own id); "" draws a fresh one.
    request_id: str = ""
    position: Position | None = None
    # CONTINUE from a surface that numbers takes (the console): the takes it showed, in order.
    takes_shown: tuple[int, ...] = ()
    # FORGET: a platform moderator (UNPIN: an admin of the server or workspace), and who opened
    # the thread on the platform, if known.
    moderator: bool = False
    opener: str | None = None
    # FORGET: whether the next message there starts a new image without a mention.
    next_message_is_turn: bool = True
    # How a person changes this setting where they asked, when not with the /command itself.
    changed_with: str = ""
    # HELP: the commands this surface offers (empty: all of them).
    offered: tuple[CommandName, ...] = ()
    # PIN: an image attached to the command (otherwise the conversation's latest is pinned).
    images: tuple[ImageRef, ...] = ()


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One line of the help: how to type a command and what it does."""

    usage: str
    meaning: str


@dataclass(frozen=True, slots=True)
class ShownPin:
    """One pin as /pins shows it: its name and, for the first few, a small JPEG preview."""

    name: str
    pinned_by: str
    thumbnail: bytes = b""


@dataclass(frozen=True, slots=True)
class CommandReply:
    """What to answer: the text, whether it is a refusal or a bad value (``refused``), whether
    everyone in the conversation should see it (``public``; otherwise only the person who asked),
    a turn to run with the adapter's sink, and the help and the pins as data."""

    text: str = ""
    refused: bool = False
    public: bool = False
    turn: TurnRequest | None = None
    help: tuple[HelpEntry, ...] = ()
    pins: tuple[ShownPin, ...] = ()
