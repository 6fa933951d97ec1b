"""Pixel modes brought to what Gemini takes: 8-bit grey or RGB, with alpha only when it is real."""

from __future__ import annotations

import io
import logging

from PIL import Image

log = logging.getLogger(__name__)


def _scale_levels(im: Image.Image, factor: float) -> Image.Image:
    return im.point(lambda v: v * factor + 0.5)  # + 0.5: the conversion to L truncates


def to_8bit_gray(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey (``I;16*``, ``I``, ``F``) to ``L``, scaled rather than clipped."""
    wide = im.convert("F")
    high = wide.getextrema()[1]
    if not isinstance(high, int | float):
        high = 255
    if im.mode == "F" and 0 < high <= 1.0:
        factor = 255.0
    elif im.mode.startswith("I;16") or 255 < high <= 65535:
        factor = 1 / 257
    elif high > 65535:
        factor = 255 / high
    else:
        factor = 1.0
    return _scale_levels(wide, factor).convert("L")


def cmyk_to_rgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms  # needs littlecms; only CMYK uses it

            converted = ImageCms.profileToProfile(
                im,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            if converted is not None:
                return converted
        except Exception:  # unusable profile: fall back to Pillow's plain conversion
            log.debug("CMYK profile conversion failed", exc_info=True)
    return im.convert("RGB")


def normalise_mode(im: Image.Image) -> Image.Image:
    """Bring any decoded mode to L, LA, RGB or RGBA."""
    mode = im.mode
    if mode in ("RGB", "L") and "transparency" in im.info:
        return im.convert("RGBA" if mode == "RGB" else "LA")
    if mode in ("RGB", "RGBA", "L", "LA"):
        return im
    if mode == "1":
        return im.convert("L")
    if mode in ("P", "PA"):
        return im.convert("RGBA" if im.has_transparency_data else "RGB")
    if mode == "CMYK":
        return cmyk_to_rgb(im)
    if mode.startswith("I") or mode == "F":
        return to_8bit_gray(im)
    if mode == "La":
        return im.convert("LA")
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def drop_opaque_alpha(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA"):
        low, _ = im.getchannel("A").getextrema()
        if low == 255:
            return im.convert("RGB" if im.mode == "RGBA" else "L")
    return im


def same_colour_space(source_mode: str, output_mode: str) -> bool:
    grey = source_mode in ("1", "L", "LA", "La", "F") or source_mode.startswith("I")
    return grey == (output_mode in ("L", "LA")) and source_mode not in ("CMYK", "LAB", "HSV")


_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """``im`` turned as its EXIF Orientation (1-8) says it should be shown."""
    method = _TRANSPOSE.get(orientation)
    return im if method is None else im.transpose(method)
