"""Console ``/command`` lines mapped onto the core's conversation commands, and their replies printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from adapters.console import words
from bot.entry.commands import Command, CommandName, CommandReply, HelpEntry
from bot.entry.service import ConversationService
from bot.ports import ReplySink
from bot.vocabulary import ActionKind, Author, ConversationKey, ImageRef, Reply

# What each console command is (aliases included); /new and /quit are the console's own.
COMMANDS = {f"/{name}": name for name in CommandName} | {"/ar": CommandName.ASPECT}
LOCAL = ("/new", "/quit", "/exit")
# Turns remembered for /continue: only the latest variations turn is ever used.
_KEEP = 4


class TakesSeen:
    """The takes one turn's replies showed, in order, so /continue n can name one."""

    def __init__(self) -> None:
        self.takes: list[int] = []

    def saw(self, reply: Reply) -> None:
        if reply.turn_id is not None and any(a.kind is ActionKind.CONTINUE for a in reply.actions):
            self.takes.append(reply.turn_id)


def help_text(entries: tuple[HelpEntry, ...]) -> str:
    rows = [*words.HELP_BEFORE, *((e.usage, e.meaning) for e in entries), *words.HELP_AFTER]
    return "\n".join([words.HELP_INTRO, *(f"  {usage:<21} {meaning}" for usage, meaning in rows)])


class ConsoleCommands:
    """Runs one typed command through the core's dialogue and prints what it answers."""

    def __init__(self, service: ConversationService, author: Author, out: IO[str]) -> None:
        self._service = service
        self._author = author
        self._out = out
        self._seen: list[TakesSeen] = []

    def watcher(self) -> Callable[[Reply], None]:
        """What one turn's sink calls with each reply it prints."""
        seen = TakesSeen()
        self._seen = [*self._seen[-_KEEP:], seen]
        return seen.saw

    async def run(
        self,
        name: CommandName,
        argument: str,
        key: ConversationKey,
        sink: ReplySink,
        images: tuple[ImageRef, ...] = (),
    ) -> bool:
        """Whether the command left the conversation in place (False: a forget cleared it).
        ``images``: files attached to the command (``/pin name @photo.png``)."""
        takes = next((seen.takes for seen in reversed(self._seen) if seen.takes), [])
        # One person at one terminal: they are its moderator, so may always forget or unpin.
        command = Command(
            name, key, self._author, argument, takes_shown=tuple(takes), moderator=True, images=images
        )
        reply = await self._service.dialogue.run(command)
        self.show(reply)
        if reply.turn is not None:
            await self._service.run(reply.turn, sink)
        return not (name is CommandName.FORGET and not reply.refused)

    def _say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def show(self, reply: CommandReply) -> None:
        if reply.help:
            self._say(help_text(reply.help))
        elif reply.text:
            self._say(("! " if reply.refused else "") + reply.text)
