"""Rebuilds the bad-input corpus files deterministically: ``python -m tests.corpus.make_corpus``."""

from __future__ import annotations

import argparse
import io
import random
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.auxil import image_factory as img

CORPUS = Path(__file__).resolve().parent
PROMPT_CHARS = 20_000

# Every file is built from fixed seeds. Files marked ``exact`` are written byte for byte by this
# script (hand-made PNG chunks through the standard library's zlib, text, a stored zip), so a
# rebuild reproduces them exactly. The others go through an image codec (Pillow's JPEG, GIF and
# WebP encoders, libheif) whose output may change between library versions: a rebuild gives an
# equivalent file, not necessarily the same bytes. The 50 MB file is never committed; the tests
# make it in a temporary folder with ``write_big_png``.


@dataclass(frozen=True, slots=True)
class CorpusFile:
    """One file of the corpus: where it lives under tests/corpus and how it is made."""

    path: str
    build: Callable[[], bytes]
    # True: this script writes every byte itself, so a rebuild is byte-identical.
    exact: bool


# --- hand-made PNGs (exact) -----------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_rgb(width: int, height: int, pixel: Callable[[int, int], tuple[int, int, int]]) -> bytes:
    """An 8-bit RGB PNG, every row with filter 0, compressed at zlib level 9."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows.extend(pixel(x, y))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def solid_png(colour: tuple[int, int, int]) -> bytes:
    return png_rgb(32, 24, lambda _x, _y: colour)


def noisy_png(seed: int = 1, width: int = 128, height: int = 96) -> bytes:
    """Random pixels, so that cutting the file anywhere cuts into image data."""
    rng = random.Random(seed)
    noise = rng.randbytes(width * height * 3)
    return png_rgb(width, height, lambda x, y: tuple(noise[(y * width + x) * 3 : (y * width + x) * 3 + 3]))


def truncated_png() -> bytes:
    data = noisy_png(1)
    return data[: len(data) * 6 // 10]


def corrupt_png() -> bytes:
    """A whole PNG whose compressed pixel data has 32 bytes overwritten (a damaged download)."""
    data = bytearray(noisy_png(2))
    start = data.index(b"IDAT") + 64
    data[start : start + 32] = bytes(32)
    return bytes(data)


def write_big_png(path: Path, total_bytes: int = 50 * 1024 * 1024) -> None:
    """A valid PNG of exactly ``total_bytes``: a small picture plus one private ancillary chunk
    of zeros (decoders skip it), written in pieces so it never sits in memory whole."""
    picture = solid_png((200, 40, 40))
    end = _chunk(b"IEND", b"")
    head = picture[: len(picture) - len(end)]
    padding = total_bytes - len(head) - len(end) - 12
    crc = zlib.crc32(b"prVt")
    zeros = bytes(1024 * 1024)
    with path.open("wb") as out:
        out.write(head)
        out.write(struct.pack(">I", padding) + b"prVt")
        left = padding
        while left:
            piece = zeros[: min(left, len(zeros))]
            crc = zlib.crc32(piece, crc)
            out.write(piece)
            left -= len(piece)
        out.write(struct.pack(">I", crc) + end)


# --- other formats (exact unless a codec writes them) ---------------------------------------


def corrupt_jpeg() -> bytes:
    """A JPEG signature and APP0 marker followed by noise: the header is unreadable."""
    return b"\xff\xd8\xff\xe0" + random.Random(3).randbytes(2000)


def truncated_jpeg() -> bytes:
    data = img.noise_jpeg(128, 96, seed=4)
    return data[: len(data) // 2]


def truncated_gif() -> bytes:
    """An animated GIF of noise cut off inside its first frame."""
    rng = random.Random(5)
    from PIL import Image

    frames = [Image.frombytes("P", (96, 64), rng.randbytes(96 * 64)) for _ in range(2)]
    for frame in frames:
        frame.putpalette(bytes(range(256)) * 3)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    data = buf.getvalue()
    return data[: len(data) // 4]


def truncated_webp() -> bytes:
    data = img.webp(64, 48)
    return data[: len(data) // 2]


def animated_gif() -> bytes:
    """Three frames, red, green, blue: only the first (red) one is used."""
    return img.gif(3, 64, 48)


def notes_text() -> bytes:
    return b"Shopping list\n- bread\n- oranges\n- a new bicycle bell\n"


def zip_archive() -> bytes:
    """A zip (stored, fixed timestamp) holding a small PNG: an archive renamed to .jpg."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(
            zipfile.ZipInfo("holiday.png", date_time=(2024, 1, 1, 0, 0, 0)), solid_png((0, 90, 200))
        )
    return buf.getvalue()


def html_page() -> bytes:
    """What a "save image" of a web page sometimes produces: the page, named .jpg."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>Beach photo</title></head>\n"
        b'<body><img src="https://example.com/beach.jpg" alt="beach"></body></html>\n'
    )


def random_bytes() -> bytes:
    return random.Random(6).randbytes(4096)


# --- prompts (exact) ------------------------------------------------------------------------


def long_prompt() -> bytes:
    """Exactly 20,000 visible characters on one line (a pasted essay)."""
    sentence = "a lighthouse on a cliff at dawn, waves below, gulls overhead, warm light; "
    text = (sentence * (PROMPT_CHARS // len(sentence) + 1))[:PROMPT_CHARS]
    return (text[:-1] + ".").encode()


def rtl_prompt() -> bytes:
    """Arabic and Hebrew: right-to-left text is a prompt like any other."""
    return "ارسم قطة على دراجة حمراء عند الفجر — צייר חתול על אופניים".encode()


def bidi_prompt() -> bytes:
    """Direction overrides and isolates around words: what Gemini reads would differ from what
    people see, so these controls are removed (the words stay)."""
    return "a red \u202egod\u202c on a \u2066bicycle\u2069 at \u202bdawn\u202c".encode()


def zero_width_prompt() -> bytes:
    """Only invisible characters: zero-width space, non-joiner, joiner, word joiner, BOM."""
    return "\u200b\u200c\u200d\u2060\ufeff\u200b".encode()


def everyone_prompt() -> bytes:
    return b"@everyone @here <!channel> <!here> <@U0SOMEONE> a party poster with balloons"


# --- the corpus -----------------------------------------------------------------------------

FILES: tuple[CorpusFile, ...] = (
    CorpusFile("images/red.png", lambda: solid_png((220, 30, 30)), exact=True),
    CorpusFile("images/green.png", lambda: solid_png((30, 200, 60)), exact=True),
    CorpusFile("images/blue.png", lambda: solid_png((30, 60, 220)), exact=True),
    CorpusFile("images/yellow.png", lambda: solid_png((240, 220, 40)), exact=True),
    CorpusFile("images/truncated.png", truncated_png, exact=True),
    CorpusFile("images/corrupt.png", corrupt_png, exact=True),
    CorpusFile("images/corrupt.jpg", corrupt_jpeg, exact=True),
    CorpusFile("images/truncated.jpg", truncated_jpeg, exact=False),
    CorpusFile("images/truncated.gif", truncated_gif, exact=False),
    CorpusFile("images/truncated.webp", truncated_webp, exact=False),
    CorpusFile("images/empty.png", lambda: b"", exact=True),
    CorpusFile("images/bomb.png", img.bomb_png, exact=True),
    CorpusFile("images/animated.gif", animated_gif, exact=False),
    CorpusFile("images/photo.heic", img.heic, exact=False),
    CorpusFile("images/drawing.svg", img.svg_bytes, exact=True),
    CorpusFile("images/document.pdf", img.pdf_bytes, exact=True),
    CorpusFile("images/notes.png", notes_text, exact=True),
    CorpusFile("images/archive.jpg", zip_archive, exact=True),
    CorpusFile("images/page.jpg", html_page, exact=True),
    CorpusFile("images/noise.webp", random_bytes, exact=True),
    CorpusFile("prompts/long_20000.txt", long_prompt, exact=True),
    CorpusFile("prompts/rtl.txt", rtl_prompt, exact=True),
    CorpusFile("prompts/bidi.txt", bidi_prompt, exact=True),
    CorpusFile("prompts/zero_width.txt", zero_width_prompt, exact=True),
    CorpusFile("prompts/everyone.txt", everyone_prompt, exact=True),
)


def build(root: Path = CORPUS) -> list[Path]:
    """Write every generated file under ``root``; returns the paths written."""
    written = []
    for item in FILES:
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.build())
        written.append(target)
    return written


def differences(root: Path = CORPUS) -> list[str]:
    """Files under ``root`` that a rebuild would change (exact files: any byte; codec files:
    only when missing)."""
    out = []
    for item in FILES:
        target = root / item.path
        if not target.is_file():
            out.append(f"{item.path}: missing")
        elif item.exact and target.read_bytes() != item.build():
            out.append(f"{item.path}: differs from a rebuild")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild (or --check) the bad-input corpus files.")
    parser.add_argument("--check", action="store_true", help="report files a rebuild would change")
    args = parser.parse_args(argv)
    if args.check:
        problems = differences()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    for path in build():
        print(path.relative_to(CORPUS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
