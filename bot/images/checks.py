"""Attachment checks and normalisation: real format, byte and pixel limits, orientation, size."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import struct
import threading
from dataclasses import dataclass
from typing import Final, Literal

from PIL import ExifTags, Image, ImageFile

from bot.images.budget import ImageBudget
from bot.images.heap import MMAP_THRESHOLD_BYTES
from bot.images.modes import drop_opaque_alpha, normalise_mode, same_colour_space, upright
from bot.text import messages
from storage.content import Blob

log = logging.getLogger(__name__)

RejectReason = Literal["empty", "too_large", "not_image", "drawing", "damaged", "too_many_pixels", "other"]


@dataclass(frozen=True)
class ImageLimits:
    """What an attachment may be. Defaults suit a small team; operators may change them."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000  # decoded pixel count guard (decompression bombs)
    max_side: int = 3072  # longer side above this is downscaled


class ImageRejected(Exception):
    """An attachment that cannot be used; ``user_message`` is one sentence to show the user."""

    def __init__(self, user_message: str, reason: RejectReason = "other") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.reason: RejectReason = reason


@dataclass(frozen=True)
class PreparedImage:
    """An image ready for Gemini.

    ``source_format`` is Pillow's name for what the user sent ("PNG", "JPEG", "MPO", "WEBP",
    "HEIF", "GIF", "BMP", "TIFF", ...), whether or not ``data`` was re-encoded.
    """

    data: bytes
    mime_type: str
    width: int
    height: int
    source_format: str

    @functools.cached_property
    def blob(self) -> Blob:
        """The bytes as a content-addressed blob (hashed on first use, then kept)."""
        return Blob(mime_type=self.mime_type, data=self.data)


# Formats Gemini takes as they are (when no rotation or downscale is needed). MPO is what
# Pillow calls a camera JPEG carrying extra pictures; its first picture is a plain JPEG.
_PASS_THROUGH: Final[dict[str, str]] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "WEBP": "image/webp",
}
_HEIF_MIMES: Final[frozenset[str]] = frozenset({"image/heic", "image/heif"})
# Lossy photo formats: when they must be re-encoded, JPEG loses nothing that mattered.
_PHOTO_FORMATS: Final[frozenset[str]] = frozenset({"JPEG", "MPO", "WEBP", "HEIF", "AVIF", "JPEG2000"})
# Pillow identifies these but rasterising them runs Ghostscript on untrusted input.
_REFUSED_FORMATS: Final[frozenset[str]] = frozenset({"EPS"})
_JPEG_QUALITY: Final = 90
_ORIENTATION: Final = ExifTags.Base.Orientation
_NOT_IDENTIFIED: Final = (SyntaxError, IndexError, TypeError, struct.error)
# Signatures long and distinctive enough that a match means "this was meant to be that format".
_STRONG_SIGNATURES: Final[frozenset[str]] = frozenset(
    {"PNG", "JPEG", "GIF", "WEBP", "HEIF", "AVIF", "TIFF", "JPEG2000", "QOI", "PSD"}
)

_PIXEL_BLOCK_BYTES: Final = 2 * MMAP_THRESHOLD_BYTES
# Pillow decodes WebP through libwebp's animation decoder: its canvas, its copy of the previous
# frame and the frame handed to Pillow are each a full RGBA image, besides Pillow's own.
_WEBP_COPIES: Final = 4
_plugins_lock = threading.Lock()
_plugins_ready = False


# --- user-facing messages -------------------------------------------------------------------


def _display_name(filename: str) -> str:
    """The file's own name, safe to put in a sentence (no path, no control characters)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if len(name) > 80:
        name = name[:79] + "…"
    return name or "The attachment"


def _human_bytes(n: int) -> str:
    mib = 1024 * 1024
    if n >= mib:
        return f"{round(n / mib, 1):g} MB"
    if n >= 1024:
        return f"{round(n / 1024, 1):g} KB"
    return f"{n} bytes"


def _human_pixels(n: int) -> str:
    if n >= 1_000_000:
        value = f"{round(n / 1_000_000, 1):g}"
        return f"{value} megapixel" if value == "1" else f"{value} megapixels"
    return f"{n} pixels"


def _empty(filename: str) -> ImageRejected:
    return ImageRejected(messages.empty_file(_display_name(filename)), "empty")


def _too_large(filename: str, limits: ImageLimits) -> ImageRejected:
    return ImageRejected(
        messages.file_too_large(_display_name(filename), _human_bytes(limits.max_bytes)),
        "too_large",
    )


def _not_image(filename: str) -> ImageRejected:
    return ImageRejected(
        messages.not_an_image(_display_name(filename)),
        "not_image",
    )


def _drawing(filename: str, kind: str, export: str) -> ImageRejected:
    return ImageRejected(
        messages.a_drawing(_display_name(filename), kind, export),
        "drawing",
    )


def _damaged(filename: str) -> ImageRejected:
    return ImageRejected(
        messages.damaged_file(_display_name(filename)),
        "damaged",
    )


def _too_many_pixels(filename: str, size: tuple[int, int] | None, limits: ImageLimits) -> ImageRejected:
    dims = f" ({size[0]}×{size[1]} pixels)" if size else ""
    return ImageRejected(
        messages.too_many_pixels(_display_name(filename), dims, _human_pixels(limits.max_pixels)),
        "too_many_pixels",
    )


def too_many_images_message(count: int, limit: int, model: str) -> str:
    """What to tell a user who attached more images than ``model`` takes in one turn."""
    return messages.too_many_images(count, limit, model)


# --- checks ---------------------------------------------------------------------------------


def check_declared(filename: str, size: int | None, limits: ImageLimits) -> None:
    """Refuse an attachment from its platform-declared size, before downloading it.

    ``None`` means the platform did not say; the bytes are checked after download.
    """
    if size is None:
        return
    if size == 0:
        raise _empty(filename)
    if size > limits.max_bytes:
        raise _too_large(filename, limits)


def ensure_plugins() -> None:
    """Load Pillow's plugins and register the HEIF opener, once per process (thread-safe)."""
    global _plugins_ready
    if _plugins_ready:
        return
    with _plugins_lock:
        if _plugins_ready:
            return
        import pillow_heif  # imported on first use, never at import time

        Image.init()
        pillow_heif.register_heif_opener()
        # Pixel buffers in blocks larger than glibc's mmap threshold (bot.images.heap): a decoded photo
        # is then unmapped when freed instead of left in a thread's heap, where each worker
        # thread's arena would otherwise keep its own peak (twice the peak after two bombs).
        Image.core.set_block_size(_PIXEL_BLOCK_BYTES)  # type: ignore[attr-defined]  # Pillow's C core
        _plugins_ready = True


def _identify(data: bytes) -> tuple[ImageFile.ImageFile | None, bool]:
    """Open ``data`` lazily (header only), like ``Image.open`` minus its global bomb check.

    ``Image.open`` compares the size with the process-wide ``Image.MAX_IMAGE_PIXELS`` and warns
    or raises by its own rules; here the caller applies ``ImageLimits.max_pixels`` instead.
    Returns the image (or ``None``) and whether some format recognised the signature but
    could not parse the header (a damaged file rather than a foreign one).
    """
    ensure_plugins()
    prefix = data[:16]
    damaged = False
    for fmt in tuple(Image.ID):
        factory, accept = Image.OPEN[fmt]
        if accept is not None:
            verdict = accept(prefix)
            if not verdict or isinstance(verdict, str):
                continue
        try:
            return factory(io.BytesIO(data), ""), False
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise
        except Exception as exc:
            # A signature was recognised but the header is unusable: a cut-off or corrupt
            # file, unless the signature is one that random bytes match by chance.
            strong = fmt in _STRONG_SIGNATURES or not isinstance(exc, _NOT_IDENTIFIED)
            damaged = damaged or (accept is not None and strong)
    return None, damaged


def _describe_foreign(data: bytes) -> tuple[str, str] | None:
    """(what it is, what to export) for common non-image files that users mistake for images."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "a PDF document", "the page"
    if head.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")):
        return "a PostScript drawing", "it"
    text = data[:4096].decode("latin-1").lstrip("\ufeff\u00ef\u00bb\u00bf \t\r\n").lower()
    if text.startswith("<") and "<svg" in text:
        return "an SVG drawing", "it"
    return None


def image_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height as stored (before EXIF orientation), read from the header only.

    Raises ``ValueError`` when the bytes are not an image Pillow can identify.
    """
    im, _ = _identify(data)
    if im is None:
        raise ValueError("not an image Pillow can identify")
    try:
        return im.size
    finally:
        im.close()


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except Exception:  # malformed EXIF: show the pixels as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _target_size(size: tuple[int, int], max_side: int) -> tuple[int, int] | None:
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return None
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(im: Image.Image, icc: bytes | None, source_format: str, resized: bool) -> tuple[bytes, str]:
    """PNG when there is real alpha, or a lossless source kept at full size; else JPEG q90."""
    out = io.BytesIO()
    if im.mode in ("RGBA", "LA") or (source_format not in _PHOTO_FORMATS and not resized):
        im.save(out, "PNG", icc_profile=icc)
        return out.getvalue(), "image/png"
    im.save(out, "JPEG", quality=_JPEG_QUALITY, icc_profile=icc)
    return out.getvalue(), "image/jpeg"


@dataclass(slots=True)
class _Opened:
    """An attachment whose header passed every check, not yet decoded, and what decoding costs."""

    im: ImageFile.ImageFile
    source_format: str
    width: int  # as stored, before any draft scaling
    height: int
    target: tuple[int, int] | None  # stored-orientation size to downscale to, if any
    decode_bytes: int  # memory the decode and conversion need at their peak, estimated


def _pixel_bytes(mode: str) -> int:
    """Bytes per pixel in Pillow's memory (RGB is stored in 4 bytes, like RGBA)."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def _decode_cost(im: Image.Image, target: tuple[int, int] | None) -> int:
    """Peak bytes of decoding ``im`` and turning it into the image Gemini gets."""
    pixels = im.width * im.height
    cost = pixels * _pixel_bytes(im.mode) * (_WEBP_COPIES if im.format == "WEBP" else 1)
    if im.mode not in ("RGB", "RGBA", "L", "LA") or "transparency" in im.info:
        cost += pixels * 4  # a full-size converted copy
    if target is not None:
        cost += pixels + target[0] * target[1] * 4 * 3  # reduce() step, resize passes, transpose
    else:  # EXIF orientation is known only after decoding (a PNG's may follow its pixels)
        cost += pixels * 4  # a full-size rotated copy
    return cost


def _open_checked(data: bytes, filename: str, limits: ImageLimits) -> _Opened:
    """Read the header and apply every check that needs no pixels (CPU-light; sync).

    For JPEG the decoder is told to decode at a reduced DCT scale when the result is
    downscaled anyway, so ``decode_bytes`` is what decoding really takes.
    """
    if not data:
        raise _empty(filename)
    if len(data) > limits.max_bytes:
        raise _too_large(filename, limits)
    try:
        im, damaged = _identify(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(filename, None, limits) from None
    if im is None:
        foreign = _describe_foreign(data)
        if foreign is not None:
            raise _drawing(filename, *foreign)
        raise _damaged(filename) if damaged else _not_image(filename)
    try:
        return _checked_header(im, filename, limits)
    except BaseException:
        im.close()
        raise


def _checked_header(im: ImageFile.ImageFile, filename: str, limits: ImageLimits) -> _Opened:
    source_format = im.format or "unknown"
    if source_format in _REFUSED_FORMATS:
        raise _drawing(filename, "a PostScript drawing", "it")
    width, height = im.size
    if width <= 0 or height <= 0:
        raise _damaged(filename)
    if width * height > limits.max_pixels:  # from the header, before any pixel is decoded
        raise _too_many_pixels(filename, (width, height), limits)
    target = _target_size(im.size, limits.max_side)
    if target is not None and source_format in ("JPEG", "MPO"):
        im.draft(im.mode, (target[0] * 2, target[1] * 2))
    return _Opened(im, source_format, width, height, target, _decode_cost(im, target))


def prepare_image(data: bytes, filename: str, limits: ImageLimits) -> PreparedImage:
    """Check an attachment and turn it into something Gemini accepts (CPU-bound; sync).

    The format comes from the bytes, never the name. PNG, JPEG, WebP, HEIC and HEIF that need
    no rotation or downscale are returned byte for byte; everything else is re-encoded.
    Raises ``ImageRejected`` with a message for the user.
    """
    return _decode_and_convert(_open_checked(data, filename, limits), data, filename, limits)


def _decode_and_convert(opened: _Opened, data: bytes, filename: str, limits: ImageLimits) -> PreparedImage:
    """Decode and convert a checked attachment; closes its image, freeing the pixels, when done."""
    im = opened.im
    with im:
        try:
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(filename, (opened.width, opened.height), limits) from None
        except Exception:  # truncated, corrupt, or a decoder Pillow lacks
            log.debug("could not decode %r", filename, exc_info=True)
            raise _damaged(filename) from None
        mime = _PASS_THROUGH.get(opened.source_format)
        if opened.source_format == "HEIF":
            heif_mime = im.get_format_mimetype()
            mime = heif_mime if heif_mime in _HEIF_MIMES else None
        animated_webp = opened.source_format == "WEBP" and getattr(im, "is_animated", False)
        orientation = _orientation(im)
        plain = orientation == 1 and opened.target is None and im.mode != "CMYK"
        if mime is not None and plain and not animated_webp:
            return PreparedImage(data, mime, opened.width, opened.height, opened.source_format)
        try:
            return _converted(opened, orientation)
        except (OSError, ValueError) as exc:
            log.debug("could not convert %r: %s", filename, exc)
            raise _damaged(filename) from None


def _converted(opened: _Opened, orientation: int) -> PreparedImage:
    """Normalise, downscale, rotate and encode, in the order that keeps the fewest full-size
    copies alive: the decoded pixels are released as soon as a smaller image replaces them."""
    im = opened.im
    icc = im.info.get("icc_profile") or None
    source_mode = im.mode
    out: Image.Image = normalise_mode(im)
    if out is not im:
        im.close()
    if opened.target is not None:
        # reducing_gap: a cheap box reduce() to within 2x of the target first, then Lanczos.
        smaller = out.resize(opened.target, Image.Resampling.LANCZOS, reducing_gap=2.0)
        out.close()
        im.close()
        out = smaller
    out = upright(out, orientation)
    out = drop_opaque_alpha(out)
    keep_icc = icc if same_colour_space(source_mode, out.mode) else None
    encoded, mime_type = _encode(out, keep_icc, opened.source_format, opened.target is not None)
    return PreparedImage(encoded, mime_type, out.width, out.height, opened.source_format)


def _finish_and_hash(opened: _Opened, data: bytes, filename: str, limits: ImageLimits) -> PreparedImage:
    prepared = _decode_and_convert(opened, data, filename, limits)
    _ = prepared.blob  # SHA-256 of up to 20 MB: here in the worker, not on the event loop
    return prepared


async def prepare_image_async(
    data: bytes, filename: str, limits: ImageLimits, budget: ImageBudget | None = None
) -> PreparedImage:
    """``prepare_image`` (and the blob's hash) in worker threads, so the event loop never waits
    on Pillow or hashing. With a ``budget``, the decode waits until the memory it needs (known
    from the header) is free, and holds it until the pixels are released."""
    opened: _Opened | None = await asyncio.to_thread(_open_checked, data, filename, limits)
    assert opened is not None
    try:
        async with budget.reserve(opened.decode_bytes) if budget else contextlib.nullcontext():
            work = asyncio.ensure_future(asyncio.to_thread(_finish_and_hash, opened, data, filename, limits))
            opened = None  # the worker closes it
            return await _to_the_end(work)
    finally:
        if opened is not None:
            opened.im.close()


async def _to_the_end(work: asyncio.Future[PreparedImage]) -> PreparedImage:
    """``work``'s result; when cancelled, still waits for the thread to finish before raising,
    so the memory it uses stays reserved as long as it is in use."""
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise
