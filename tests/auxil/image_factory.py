"""Real test images made in memory: every format and oddity that users attach."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image

Color = tuple[int, ...]

RED: Color = (255, 0, 0)
GREEN: Color = (0, 255, 0)
BLUE: Color = (0, 0, 255)


def _image(w: int, h: int, color: Color, mode: str = "RGB", left_color: Color | None = None) -> Image.Image:
    im = Image.new(mode, (w, h), color)
    if left_color is not None:  # a marker that shows which way the picture was turned
        im.paste(Image.new(mode, (w // 2, h), left_color), (0, 0))
    return im


def _save(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def png(w: int = 64, h: int = 48, color: Color = RED, alpha: bool = False) -> bytes:
    """A solid PNG; with ``alpha`` the pixels are half transparent."""
    if alpha:
        return _save(_image(w, h, (*color[:3], 128), "RGBA"), "PNG")
    return _save(_image(w, h, color), "PNG")


def png16(w: int = 32, h: int = 32, level: int = 40000) -> bytes:
    """A 16-bit greyscale PNG."""
    return _save(Image.new("I;16", (w, h), level), "PNG")


def jpeg(
    w: int = 64,
    h: int = 48,
    color: Color = RED,
    exif_orientation: int | None = None,
    left_color: Color | None = None,
    quality: int = 90,
    icc_profile: bytes | None = None,
) -> bytes:
    """A JPEG, optionally with a real EXIF Orientation tag (0x0112) and an ICC profile."""
    params: dict[str, object] = {"quality": quality}
    if icc_profile is not None:
        params["icc_profile"] = icc_profile
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        params["exif"] = exif.tobytes()
    return _save(_image(w, h, color, left_color=left_color), "JPEG", **params)


def mpo(w: int = 64, h: int = 48) -> bytes:
    """A camera-style multi-picture JPEG (MPO) with two pictures."""
    first, second = _image(w, h, RED), _image(w, h, BLUE)
    return _save(first, "MPO", save_all=True, append_images=[second])


def webp(
    w: int = 64, h: int = 48, color: Color = GREEN, alpha: bool = False, lossless: bool = False
) -> bytes:
    if alpha:
        return _save(_image(w, h, (*color[:3], 128), "RGBA"), "WEBP", lossless=lossless)
    return _save(_image(w, h, color), "WEBP", lossless=lossless, quality=90)


def animated_webp(frames: int = 3, w: int = 32, h: int = 32) -> bytes:
    colors = [RED, GREEN, BLUE]
    images = [_image(w, h, colors[i % 3]) for i in range(frames)]
    return _save(images[0], "WEBP", save_all=True, append_images=images[1:], duration=100, lossless=True)


def heic(w: int = 64, h: int = 48, color: Color = BLUE) -> bytes:
    """A real HEVC-coded HEIC, written by pillow_heif without registering its Pillow opener."""
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(_image(w, h, color)).save(buf, quality=90)
    return buf.getvalue()


def gif(frames: int = 3, w: int = 32, h: int = 32) -> bytes:
    """An animated GIF: red, green, blue, red, ... frames."""
    colors = [RED, GREEN, BLUE]
    images = [_image(w, h, colors[i % 3]).convert("P") for i in range(frames)]
    return _save(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)


def transparent_gif(w: int = 16, h: int = 16) -> bytes:
    im = Image.new("P", (w, h), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    im.paste(1, (0, 0, w // 2, h))
    return _save(im, "GIF", transparency=0)


def bmp(w: int = 40, h: int = 30, color: Color = GREEN) -> bytes:
    return _save(_image(w, h, color), "BMP")


def tiff(w: int = 40, h: int = 30, color: Color = BLUE, compression: str = "tiff_lzw") -> bytes:
    return _save(_image(w, h, color), "TIFF", compression=compression)


def tiff16(w: int = 32, h: int = 32, level: int = 40000) -> bytes:
    """A 16-bit greyscale TIFF (Pillow mode ``I;16``)."""
    return _save(Image.new("I;16", (w, h), level), "TIFF")


def srgb_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def ico(size: int = 32, color: Color = RED) -> bytes:
    return _save(_image(size, size, color), "ICO", sizes=[(size, size)])


def cmyk_jpeg(w: int = 40, h: int = 30, cmyk: Color = (0, 255, 255, 0)) -> bytes:
    """A CMYK JPEG (default colour: pure red in CMYK terms)."""
    return _save(Image.new("CMYK", (w, h), cmyk), "JPEG", quality=95)


def noise_jpeg(w: int, h: int, seed: int = 1, quality: int = 90) -> bytes:
    """Random pixels: compresses badly, so file sizes are like real photos."""
    rng = random.Random(seed)
    return _save(Image.frombytes("RGB", (w, h), rng.randbytes(w * h * 3)), "JPEG", quality=quality)


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first part of a file, as an interrupted upload leaves it."""
    return data[: max(1, int(len(data) * keep))]


def random_bytes(n: int = 4096, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


def svg_bytes() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b'<circle cx="50" cy="50" r="40" fill="red"/></svg>\n'
    )


def pdf_bytes() -> bytes:
    """A minimal one-page PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def eps_bytes() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n"
        b"newpath 10 10 moveto 90 90 lineto stroke\nshowpage\n%%EOF\n"
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(w: int = 20_000, h: int = 20_000) -> bytes:
    """A genuine decompression bomb: a valid 1-bit PNG of w×h black pixels in a few KB.

    Decoding it would need ``w * h`` bytes of memory; the zlib stream is built row by row so
    making it costs little.
    """
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" * (1 + (w + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(h)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
