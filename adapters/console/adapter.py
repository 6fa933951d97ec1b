"""Console adapter: a terminal chat on the conversation core; images are saved to a folder."""

from __future__ import annotations

import asyncio
import getpass
import itertools
import re
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from adapters.console.controls import ConsoleControls
from bot.entry.service import INTERRUPTED_MESSAGE, AttachmentUnavailable, ConversationService
from bot.gemini.capabilities import ModelCapabilities
from bot.text import messages
from bot.text.messages import CONSOLE_CONTROLS_HELP as CONTROLS_HELP
from bot.text.messages import CONSOLE_NEW_CONVERSATION as NEW_CONVERSATION
from bot.text.settings import SettingError
from bot.vocabulary import (
    Author,
    ConversationKey,
    ImagePart,
    ImageRef,
    Reply,
    SettingName,
    SettingScope,
    TextPart,
    Turn,
)

PLATFORM = "console"
WORKSPACE = "local"
CHANNEL = "terminal"

HELP = f"""\
Type a prompt and press Enter to make an image; keep typing to refine it.
  @photo.jpg            attach a photo (quote paths with spaces: @"my photo.jpg")
  --ar 16:9 / --size 2K set this conversation's aspect ratio / image size inline
  /aspect [ratio]       show or set the aspect ratio
  /size [size]          show or set the image size (models that have sizes)
  /mode [image|text]    images only, or text and images
  /new                  start a new conversation
  /forget               delete this conversation's history and images
  /usage                images made and estimated cost, today and this month
{CONTROLS_HELP}
  /help                 this help
  /quit                 leave (Ctrl-D works too); the conversation is kept for next time"""

# "@path" or '@"path with spaces"'; an "@" inside a word (an e-mail address) is not a token.
_ATTACHMENT = re.compile(r"""(?<!\S)@(?:"(?P<quoted>[^"]+)"|'(?P<single>[^']+)'|(?P<bare>\S+))""")
_PATHLIKE = re.compile(r"[/\\]|\.[A-Za-z0-9]{2,5}$")
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_COMMANDS = {
    SettingName.ASPECT_RATIO: "/aspect",
    SettingName.IMAGE_SIZE: "/size",
    SettingName.RESPONSE_MODE: "/mode",
}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True, slots=True)
class ParsedInput:
    """A console line split into prompt text, files to attach, and unresolvable @paths."""

    text: str
    files: tuple[Path, ...]
    missing: tuple[str, ...]


def parse_attachments(line: str, cwd: Path) -> ParsedInput:
    """Pull ``@path`` tokens naming files out of a line; other ``@words`` stay in the prompt."""
    files: list[Path] = []
    missing: list[str] = []

    def take(match: re.Match[str]) -> str:
        raw = match.group("quoted") or match.group("single") or match.group("bare") or ""
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else cwd / path
        if path.is_file():
            files.append(path)
            return " "
        if match.group("bare") is None or _PATHLIKE.search(raw):
            missing.append(raw)
            return " "
        return match.group(0)

    text = _ATTACHMENT.sub(take, line)
    return ParsedInput(" ".join(text.split()), tuple(files), tuple(missing))


def file_ref(path: Path) -> ImageRef:
    """An ImageRef that reads a local file off the event loop."""

    async def load() -> bytes:
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise AttachmentUnavailable(f"I couldn't read {path.name} ({exc.strerror}).") from exc

    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return ImageRef(filename=path.name, mime_type=None, size=size, load=load)


class LineReader:
    """Reads stdin lines on a daemon thread so a pending read never blocks the loop or exit."""

    def __init__(self, stream: IO[str], prompt: Callable[[], None]) -> None:
        self._stream = stream
        self._prompt = prompt
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._wanted = threading.Event()
        threading.Thread(target=self._run, name="console-stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            line = self._stream.readline()
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line if line else None)
            if not line:
                return

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        self._prompt()
        self._wanted.set()
        line = await self._queue.get()
        return None if line is None else line.rstrip("\r\n")


class ConsoleSink:
    """Prints replies, saves images under the output folder, and spins while working."""

    def __init__(
        self,
        out: IO[str],
        folder: Path,
        interactive: bool,
        seen: Callable[[Reply], None] | None = None,
    ) -> None:
        self._out = out
        self._folder = folder
        self._interactive = interactive
        self._seen = seen

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        if not self._interactive:
            self._print("… generating")
            yield
            return
        started = time.monotonic()
        stop = asyncio.Event()

        async def spin() -> None:
            for frame in itertools.cycle(_SPINNER):
                elapsed = int(time.monotonic() - started)
                self._out.write(f"\r{frame} generating… {elapsed}s ")
                self._out.flush()
                try:
                    await asyncio.wait_for(stop.wait(), 0.1)
                    return
                except TimeoutError:
                    continue

        task = asyncio.create_task(spin())
        try:
            yield
        finally:
            stop.set()
            await task
            self._out.write("\r\033[K")
            self._out.flush()

    async def send(self, reply: Reply) -> list[str]:
        """Prints text and saves images; a terminal has no messages to reply to, so no ids."""
        image_number = 0
        for part in reply.parts:
            if isinstance(part, TextPart):
                self._print(("! " if reply.is_error else "") + part.text)
            elif isinstance(part, ImagePart):
                image_number += 1
                path = await asyncio.to_thread(self._save, part, reply.turn_id, image_number)
                self._print(f"[image] {path}")
        if self._seen is not None:
            self._seen(reply)
        return []

    async def notice(self, text: str) -> None:
        self._print(text)

    def _save(self, part: ImagePart, turn_id: int | None, number: int) -> Path:
        self._folder.mkdir(parents=True, exist_ok=True)
        extension = _EXTENSIONS.get(part.mime_type, "png")
        path = self._folder / f"turn-{turn_id or 0}-{number}.{extension}"
        path.write_bytes(part.data)
        return path


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
        self._key = ConversationKey(PLATFORM, WORKSPACE, CHANNEL, _new_thread_id())
        self._commands: dict[str, Callable[[str], Awaitable[bool]]] = {
            "/help": self._help,
            "/aspect": self._aspect,
            "/ar": self._aspect,
            "/size": self._size,
            "/mode": self._mode,
            "/new": self._new,
            "/forget": self._forget,
            "/usage": self._usage,
            "/quit": self._quit,
            "/exit": self._quit,
        }
        self._controls = ConsoleControls(service, self._author, lambda: self._key, self._sink, self._print)
        self._commands.update(self._controls.commands())

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
            if line.startswith("/"):
                name, _, argument = line.partition(" ")
                command = self._commands.get(name.lower())
                if command is None:
                    self._print(f"! Unknown command {name}; type /help for the list.")
                    continue
                if not await command(argument.strip()):
                    break
                continue
            await self._turn(line)
        self._print("Bye. Your conversation is saved; run the bot again to continue it.")

    async def _resume(self) -> None:
        latest = await self._service.store.latest_conversation(PLATFORM, WORKSPACE, CHANNEL)
        caps = self._service.capabilities
        self._print(f"Nano Banana console · model {caps.model} · type /help for commands")
        if not caps.known:
            self._print(
                f"Note: {caps.model} is not a model this version knows; its aspect ratios, sizes "
                "and photo limits are not checked, so Gemini will say if something is unsupported."
            )
        if latest is not None:
            self._key = latest.key
            self._print(
                f"Continuing your conversation ({latest.turn_count} turn"
                f"{'' if latest.turn_count == 1 else 's'}); /new starts a fresh one."
            )
        else:
            self._print(NEW_CONVERSATION)
        told: list[str] = []

        async def tell(_key: object, message_id: str) -> None:
            if not told:  # one person, one terminal: once is enough
                self._print(f"! {INTERRUPTED_MESSAGE}")
            told.append(message_id)

        await self._service.announce_interrupted(PLATFORM, tell)

    def _sink(self) -> ConsoleSink:
        folder = self._output_dir / self._key.thread
        return ConsoleSink(self._out, folder, self._interactive, self._controls.watcher())

    async def _turn(self, line: str) -> None:
        parsed = parse_attachments(line, Path.cwd())
        if parsed.missing:
            names = ", ".join(parsed.missing)
            self._print(f"! I can't find {names}; check the path after @ and try again.")
            return
        turn = Turn(
            key=self._key,
            message_id=uuid.uuid4().hex,
            author=self._author,
            text=parsed.text,
            images=tuple(file_ref(p) for p in parsed.files),
        )
        await self._service.handle_turn(turn, self._sink())

    async def _setting(self, name: SettingName, argument: str, choices: tuple[str, ...]) -> bool:
        current = await self._service.effective_settings(self._key)
        if not argument:
            value = {
                SettingName.ASPECT_RATIO: current.aspect_ratio,
                SettingName.IMAGE_SIZE: current.image_size,
                SettingName.RESPONSE_MODE: current.response_mode.value,
            }[name]
            scope = SettingScope.for_thread(self._key)
            self._print(messages.current_setting(name, value, scope.level, _COMMANDS[name], choices))
            return True
        try:
            self._print(
                await self._service.change_setting(SettingScope.for_thread(self._key), name, argument)
            )
        except SettingError as exc:
            self._print(f"! {exc.user_message}")
        return True

    async def _caps(self) -> ModelCapabilities:
        return (await self._service.effective_settings(self._key)).caps or self._service.capabilities

    async def _aspect(self, argument: str) -> bool:
        return await self._setting(SettingName.ASPECT_RATIO, argument, (await self._caps()).aspect_ratios)

    async def _size(self, argument: str) -> bool:
        caps = await self._caps()
        if not caps.supports_sizes():
            self._print(f"! {messages.single_size(caps.model)}")
            return True
        return await self._setting(SettingName.IMAGE_SIZE, argument, caps.image_sizes)

    async def _mode(self, argument: str) -> bool:
        return await self._setting(SettingName.RESPONSE_MODE, argument, ("image", "text+image"))

    async def _new(self, argument: str) -> bool:
        self._key = ConversationKey(PLATFORM, WORKSPACE, CHANNEL, _new_thread_id())
        self._print(NEW_CONVERSATION)
        return True

    async def _forget(self, argument: str) -> bool:
        deleted = await self._service.forget(self._key)
        done = messages.forgotten(deleted) if deleted else messages.NOTHING_TO_FORGET
        self._print(f"{done} Describe a new image to start again.")
        self._key = ConversationKey(PLATFORM, WORKSPACE, CHANNEL, _new_thread_id())
        return True

    async def _usage(self, argument: str) -> bool:
        self._print(await self._service.usage_report(self._key, self._author))
        return True

    async def _help(self, argument: str) -> bool:
        self._print(HELP)
        return True

    async def _quit(self, argument: str) -> bool:
        return False


def _new_thread_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "console"
