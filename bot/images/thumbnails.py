"""Small previews of stored images (the reference board's list), made off the event loop."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

# The longest side of a preview; small enough that ten fit in one message on every platform.
THUMBNAIL_SIDE = 256


def _thumbnail(data: bytes, side: int) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale
        preview = image.convert("RGB")
        preview.thumbnail((side, side))
        out = io.BytesIO()
        preview.save(out, "JPEG", quality=80)
        return out.getvalue()


async def thumbnail(data: bytes, side: int = THUMBNAIL_SIDE) -> bytes:
    """A JPEG no larger than ``side`` on its longest side (b"" if the bytes are not an image).
    Only stored images are previewed, which passed the attachment checks when they arrived."""
    try:
        return await asyncio.to_thread(_thumbnail, data, side)
    except (OSError, ValueError, Image.DecompressionBombError):
        return b""
