"""Console input: ``@path`` attachments pulled out of a typed line, read lazily off the loop."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from adapters.console.words import unreadable
from bot.vocabulary import AttachmentUnavailable, ImageRef

# "@path" or '@"path with spaces"'; an "@" inside a word (an e-mail address) is not a token.
_ATTACHMENT = re.compile(r"""(?<!\S)@(?:"(?P<quoted>[^"]+)"|'(?P<single>[^']+)'|(?P<bare>\S+))""")
_PATHLIKE = re.compile(r"[/\\]|\.[A-Za-z0-9]{2,5}$")


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
            raise AttachmentUnavailable(unreadable(path.name, exc.strerror)) from exc

    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    return ImageRef(filename=path.name, mime_type=None, size=size, load=load)
