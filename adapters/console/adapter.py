"""Console adapter: a terminal chat on the conversation core; images are saved to a folder."""

from __future__ import annotations

import getpass
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from adapters.console import words
from adapters.console.commands import COMMANDS, LOCAL, ConsoleCommands
from adapters.console.files import file_ref, parse_attachments
from adapters.console.sink import ConsoleSink, LineReader
from bot.entry.commands import CommandName
from bot.entry.service import INTERRUPTED_MESSAGE, ConversationService
from bot.vocabulary import Author, ConversationKey, ImageRef, Turn

__all__ = ["ConsoleAdapter", "parse_attachments"]

PLATFORM = "console"
WORKSPACE = "local"
CHANNEL = "terminal"


class ConsoleAdapter:
    """A terminal chat: each line is a turn, ``/commands`` change settings, ``@path`` attaches."""

    def __init__(
        self,
        service: ConversationService,
        output_dir: Path,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        interactive: bool | None = None,
    ) -> None:
        self._service = service
        self._output_dir = output_dir
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._interactive = self._in.isatty() if interactive is None else interactive
        self._author = Author(id=_user_name(), display_name=_user_name())
        self._key = _new_key()
        self._commands = ConsoleCommands(service, self._author, self._out)

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def _prompt(self) -> None:
        if self._interactive:
            self._out.write("> ")
            self._out.flush()

    @property
    def key(self) -> ConversationKey:
        return self._key

    async def run(self) -> None:
        """Chat until end of input or /quit."""
        await self._resume()
        reader = LineReader(self._in, self._prompt)
        while (line := await reader.readline()) is not None:
            line = line.strip()
            if not line:
                continue
            if not line.startswith("/"):
                await self._turn(line)
            elif not await self._command(line):
                break
        self._print(words.BYE)

    async def _command(self, line: str) -> bool:
        """Run a ``/command`` line; False when it ends the chat."""
        name, _, argument = line.partition(" ")
        name = name.lower()
        if name in LOCAL:
            if name == "/new":
                self._key = _new_key()
                self._print(words.NEW_CONVERSATION)
            return name == "/new"
        command = COMMANDS.get(name)
        images: tuple[ImageRef, ...] = ()
        if command is CommandName.PIN:  # /pin name @photo.png pins a file
            parsed = parse_attachments(argument, Path.cwd())
            if parsed.missing:
                self._print(f"! {words.not_found(', '.join(parsed.missing))}")
                return True
            argument, images = parsed.text, tuple(file_ref(p) for p in parsed.files)
        if command is None:
            self._print(f"! {words.unknown_command(name)}")
        elif not await self._commands.run(command, argument.strip(), self._key, self._sink(), images):
            self._key = _new_key()  # forgotten: the next prompt starts a new conversation
        return True

    async def _resume(self) -> None:
        latest = await self._service.store.latest_conversation(PLATFORM, WORKSPACE, CHANNEL)
        caps = self._service.capabilities
        self._print(words.banner(caps.model))
        if not caps.known:
            self._print(words.unknown_model(caps.model))
        if latest is not None:
            self._key = latest.key
            self._print(words.continuing(latest.turn_count))
        else:
            self._print(words.NEW_CONVERSATION)
        told: list[str] = []

        async def tell(_key: object, message_id: str) -> None:
            if not told:  # one person, one terminal: once is enough
                self._print(f"! {INTERRUPTED_MESSAGE}")
            told.append(message_id)

        await self._service.announce_interrupted(PLATFORM, tell)

    def thread_sinks(self) -> tuple[str, Callable[[ConversationKey, str], ConsoleSink | None]]:
        """Where a region edit of this chat's images is printed (the chat it was made in)."""
        return PLATFORM, lambda key, _person: self._sink() if key == self._key else None

    def _sink(self) -> ConsoleSink:
        folder = self._output_dir / self._key.thread
        return ConsoleSink(self._out, folder, self._interactive, self._commands.watcher())

    async def _turn(self, line: str) -> None:
        parsed = parse_attachments(line, Path.cwd())
        if parsed.missing:
            self._print(f"! {words.not_found(', '.join(parsed.missing))}")
            return
        turn = Turn(
            key=self._key,
            message_id=uuid.uuid4().hex,
            author=self._author,
            text=parsed.text,
            images=tuple(file_ref(p) for p in parsed.files),
        )
        await self._service.handle_turn(turn, self._sink())


def _new_key() -> ConversationKey:
    return ConversationKey(PLATFORM, WORKSPACE, CHANNEL, _new_thread_id())


def _new_thread_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "console"
