"""Canvases for zoom out, pan and region edits, and compositing the model's image back so that
nothing outside the region to fill changes. Pure Pillow and CPU-bound: call from async code
through ``asyncio.to_thread``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from PIL import Image, ImageChops, ImageFilter

# The seam between kept and new pixels is blended over at most this many pixels, all of them
# inside the region to fill: outside it the original's pixels are kept exactly.
FEATHER_PX = 16
ZOOM_FACTORS = (1.5, 2.0)
PAN_GROWTH = 0.5
# A canvas whose longer side would pass this is made from a scaled-down original instead, so
# zooming out again and again does not grow the image without end.
MAX_CANVAS_SIDE = 4096
# What the model is shown in the area to fill: a flat neutral grey, easy to tell from a picture.
FILL_GREY = (128, 128, 128)
# The region as the model is shown it on the original: outlined in a colour photos rarely have.
OUTLINE_COLOUR = (255, 0, 255)


class Pan(Enum):
    LEFT = "left"
    RIGHT = "right"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Box:
    """Where the original sits on a canvas, in canvas pixels."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Extension:
    """A larger canvas around an original: ``request`` is what the model is sent (the original on
    grey), ``base`` what its answer is composited over (the original, its edges stretched into
    the new area so the feathered seam blends from the original's own colours), ``mask`` the
    area to fill (255) and ``placement`` where the original sits."""

    request: Image.Image
    base: Image.Image
    mask: Image.Image
    placement: Box
    aspect_ratio: str


@dataclass(frozen=True, slots=True)
class RegionPrompt:
    """What the model is shown for a region edit: the original, the region as a black and white
    mask (white = change), and the original with the region outlined."""

    original: Image.Image
    mask: Image.Image
    outlined: Image.Image


def working_copy(image: Image.Image) -> Image.Image:
    """The image in RGB, or RGBA when it has transparency."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    mode = "RGBA" if has_alpha else "RGB"
    return image.copy() if image.mode == mode else image.convert(mode)


def nearest_ratio(width: int, height: int, ratios: tuple[str, ...]) -> str:
    """The supported ratio closest to ``width:height`` (compared on a log scale)."""
    wanted = math.log(width / height)
    return min(ratios, key=lambda r: abs(math.log(_ratio_value(r)) - wanted))


def _ratio_value(ratio: str) -> float:
    w, _, h = ratio.partition(":")
    return float(w) / float(h)


def zoom_out(
    original: Image.Image, factor: float, ratios: tuple[str, ...], max_side: int = MAX_CANVAS_SIDE
) -> Extension:
    """The original centred on a canvas ``factor`` times its size (the same aspect ratio)."""
    if factor not in ZOOM_FACTORS:
        raise ValueError(f"zoom factor must be one of {ZOOM_FACTORS}, not {factor}")
    source = _fitting(working_copy(original), factor, factor, max_side)
    width, height = round(source.width * factor), round(source.height * factor)
    box = Box((width - source.width) // 2, (height - source.height) // 2, source.width, source.height)
    return _extend(source, (width, height), box, nearest_ratio(width, height, ratios))


def pan(
    original: Image.Image, direction: Pan, ratios: tuple[str, ...], max_side: int = MAX_CANVAS_SIDE
) -> Extension:
    """Half as much canvas again on one side, then the smallest canvas of the nearest supported
    ratio that holds it, the original against the opposite edge (centred across)."""
    across = direction in (Pan.LEFT, Pan.RIGHT)
    grow_w, grow_h = (1 + PAN_GROWTH, 1.0) if across else (1.0, 1 + PAN_GROWTH)
    source = _fitting(working_copy(original), grow_w, grow_h, max_side)
    want_w, want_h = round(source.width * grow_w), round(source.height * grow_h)
    ratio = nearest_ratio(want_w, want_h, ratios)
    value = _ratio_value(ratio)
    if want_w / want_h <= value:
        width, height = max(want_w, round(want_h * value)), want_h
    else:
        width, height = want_w, max(want_h, round(want_w / value))
    return _extend(source, (width, height), _placed(source, (width, height), direction), ratio)


def _placed(source: Image.Image, size: tuple[int, int], direction: Pan) -> Box:
    width, height = size
    left = {Pan.LEFT: width - source.width, Pan.RIGHT: 0}.get(direction, (width - source.width) // 2)
    top = {Pan.UP: height - source.height, Pan.DOWN: 0}.get(direction, (height - source.height) // 2)
    return Box(left, top, source.width, source.height)


def _fitting(image: Image.Image, grow_w: float, grow_h: float, max_side: int) -> Image.Image:
    """The image, scaled down if the canvas grown from it would pass ``max_side``."""
    longest = max(image.width * grow_w, image.height * grow_h)
    if longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _extend(source: Image.Image, size: tuple[int, int], box: Box, ratio: str) -> Extension:
    grey = FILL_GREY + ((255,) if source.mode == "RGBA" else ())
    request = Image.new(source.mode, size, grey)
    request.paste(source, (box.left, box.top))
    mask = Image.new("L", size, 255)
    mask.paste(0, (box.left, box.top, box.left + box.width, box.top + box.height))
    return Extension(request, _stretched_edges(source, size, box), mask, box, ratio)


def _stretched_edges(source: Image.Image, size: tuple[int, int], box: Box) -> Image.Image:
    """The original on the canvas, each edge row and column repeated out to the canvas edge."""
    canvas = Image.new(source.mode, size)
    canvas.paste(source, (box.left, box.top))
    right, bottom = box.left + box.width, box.top + box.height
    if box.left:
        canvas.paste(source.crop((0, 0, 1, box.height)).resize((box.left, box.height)), (0, box.top))
    if right < size[0]:
        edge = source.crop((box.width - 1, 0, box.width, box.height))
        canvas.paste(edge.resize((size[0] - right, box.height)), (right, box.top))
    if box.top:
        canvas.paste(canvas.crop((0, box.top, size[0], box.top + 1)).resize((size[0], box.top)), (0, 0))
    if bottom < size[1]:
        edge = canvas.crop((0, bottom - 1, size[0], bottom))
        canvas.paste(edge.resize((size[0], size[1] - bottom)), (0, bottom))
    return canvas


def binary_mask(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A painted mask as 0/255 at ``size``: its alpha where it has one (a browser canvas), else
    its brightness; half-covered pixels (anti-aliased brush edges) count as painted."""
    has_alpha = mask.mode in ("RGBA", "LA", "PA") or "transparency" in mask.info
    channel = mask.convert("RGBA").getchannel("A") if has_alpha else mask.convert("L")
    if channel.size != size:
        channel = channel.resize(size, Image.Resampling.NEAREST)
    return channel.point(lambda v: 255 if v >= 128 else 0)


def feathered(mask: Image.Image, feather_px: int = FEATHER_PX) -> Image.Image:
    """How much of the model's image each pixel takes: 0 outside the mask, rising over
    ``feather_px`` pixels inside it to 255 (each step an erosion of the mask by one pixel)."""
    if feather_px <= 0:
        return mask.copy()
    step = math.ceil(255 / feather_px)
    layer, alpha = mask, Image.new("L", mask.size, 0)
    for _ in range(feather_px):
        alpha = ImageChops.add(alpha, layer.point(lambda v: step if v else 0))
        layer = layer.filter(ImageFilter.MinFilter(3))
    return alpha


def composite(
    base: Image.Image, generated: Image.Image, mask: Image.Image, feather_px: int = FEATHER_PX
) -> Image.Image:
    """The model's image scaled to ``base``'s size, over ``base`` through the feathered mask:
    every pixel outside the mask keeps ``base``'s value exactly."""
    base = working_copy(base)
    scaled = generated.convert(base.mode)
    if scaled.size != base.size:
        scaled = scaled.resize(base.size, Image.Resampling.LANCZOS)
    alpha = feathered(binary_mask(mask, base.size), feather_px)
    return Image.composite(scaled, base, alpha)


def region_prompt(original: Image.Image, mask: Image.Image) -> RegionPrompt:
    """What the model is shown for a painted region (``mask`` as painted, any size)."""
    image = working_copy(original)
    region = binary_mask(mask, image.size)
    width = max(2, max(image.size) // 256)
    ring = ImageChops.subtract(region.filter(ImageFilter.MaxFilter(2 * width + 1)), region)
    outlined = image.copy()
    colour = OUTLINE_COLOUR + ((255,) if image.mode == "RGBA" else ())
    outlined.paste(colour, (0, 0, *image.size), ring)
    return RegionPrompt(image, region, outlined)


def painted_share(mask: Image.Image) -> float:
    """The share of pixels a 0/255 mask paints (0 = nothing painted)."""
    histogram = mask.histogram()
    return histogram[255] / max(1, mask.width * mask.height)
