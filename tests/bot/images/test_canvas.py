"""Zoom out, pan and region edits: canvas sizes, where the original sits, and compositing that
leaves every pixel outside the region to fill exactly as it was."""

from __future__ import annotations

import random

import pytest
from PIL import Image, ImageChops, ImageDraw

from bot.gemini.registry import shipped
from bot.images import canvas
from bot.images.canvas import FEATHER_PX, Box, Pan

# The shipped registry's ratios: what every model takes, and the extreme ones only 3.1 flash adds.
BASE_RATIOS = shipped().capabilities_for("gemini-3-pro-image").aspect_ratios
EXTREME_RATIOS = tuple(
    r for r in shipped().capabilities_for("gemini-3.1-flash-image").aspect_ratios if r not in BASE_RATIOS
)


def photo(width: int = 400, height: int = 300, seed: int = 1) -> Image.Image:
    """Noise over a gradient: every pixel differs from its neighbours, so any drift shows."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            (x * 255 // width, y * 255 // height, rng.randrange(256))
            for y in range(height)
            for x in range(width)
        ]
    )
    return image


def model_answer(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """What a model might return: another picture entirely, at its own size."""
    return photo(*size, seed=seed).transpose(Image.Transpose.ROTATE_180)


def changed_outside(result: Image.Image, base: Image.Image, mask: Image.Image) -> int:
    """Pixels that differ from ``base`` where ``mask`` is 0."""
    differ = ImageChops.difference(result.convert("RGB"), base.convert("RGB")).convert("L")
    differ = differ.point(lambda v: 255 if v else 0)
    outside = ImageChops.invert(mask.point(lambda v: 255 if v else 0))
    return ImageChops.multiply(differ, outside).histogram()[255]


@pytest.mark.parametrize(
    ("factor", "size", "box"), [(1.5, (600, 450), (100, 75)), (2.0, (800, 600), (200, 150))]
)
def test_zoom_out_centres_the_original_on_a_canvas_of_the_same_shape(
    factor: float, size: tuple[int, int], box: tuple[int, int]
) -> None:
    original = photo()
    ext = canvas.zoom_out(original, factor, BASE_RATIOS)
    assert ext.request.size == ext.base.size == ext.mask.size == size
    assert ext.placement == Box(*box, 400, 300)
    assert ext.aspect_ratio == "4:3"
    inside = (box[0], box[1], box[0] + 400, box[1] + 300)
    assert ext.request.crop(inside).tobytes() == original.tobytes()
    assert ext.request.getpixel((0, 0)) == canvas.FILL_GREY
    assert ext.mask.crop(inside).getextrema() == (0, 0)
    assert canvas.painted_share(ext.mask) == pytest.approx(1 - 1 / factor**2, abs=0.01)


def test_zoom_out_takes_only_the_two_factors() -> None:
    with pytest.raises(ValueError):
        canvas.zoom_out(photo(), 3.0, BASE_RATIOS)


@pytest.mark.parametrize(
    ("direction", "size", "box"),
    [
        (Pan.LEFT, (600, 300), (200, 0)),
        (Pan.RIGHT, (600, 300), (0, 0)),
        (Pan.UP, (400, 450), (0, 150)),
        (Pan.DOWN, (400, 450), (0, 0)),
    ],
)
def test_pan_adds_half_again_on_that_side_at_a_supported_ratio(
    direction: Pan, size: tuple[int, int], box: tuple[int, int]
) -> None:
    # 400x300 panned sideways wants 600x300 (2:1): the nearest supported ratio is 16:9, whose
    # smallest canvas holding 600x300 is 600x338; upwards wants 400x450 (8:9), nearest 4:5: 400x500.
    ext = canvas.pan(photo(), direction, BASE_RATIOS)
    if direction in (Pan.LEFT, Pan.RIGHT):
        assert ext.aspect_ratio == "16:9"
        assert ext.request.size == (600, 338)
        assert ext.placement == Box(box[0], 19, 400, 300)
    else:
        assert ext.aspect_ratio == "4:5"
        assert ext.request.size == (400, 500)
        assert ext.placement == Box(0, box[1] + (50 if direction is Pan.UP else 0), 400, 300)
    p = ext.placement
    assert ext.request.crop((p.left, p.top, p.left + 400, p.top + 300)).tobytes() == photo().tobytes()


def test_pan_keeps_at_least_half_again_when_the_nearest_ratio_is_narrower() -> None:
    # 21:9 panned left wants 3.5:1; the nearest ratio (21:9) is narrower, so the canvas grows
    # down and up as well rather than giving the new side less than half again.
    ext = canvas.pan(photo(420, 180), Pan.LEFT, BASE_RATIOS)
    assert ext.aspect_ratio == "21:9"
    assert ext.request.size == (630, 270)
    assert ext.placement == Box(210, 45, 420, 180)
    ext = canvas.pan(photo(420, 180), Pan.LEFT, BASE_RATIOS + EXTREME_RATIOS)
    assert ext.aspect_ratio == "4:1"
    assert ext.request.size == (720, 180)
    assert ext.placement == Box(300, 0, 420, 180)


def test_a_canvas_past_the_largest_side_is_made_from_a_smaller_original() -> None:
    ext = canvas.zoom_out(photo(300, 200), 2.0, BASE_RATIOS, max_side=400)
    assert ext.request.size == (400, 266)
    assert ext.placement.width == 200


@pytest.mark.parametrize(
    "make", [lambda o: canvas.zoom_out(o, 2.0, BASE_RATIOS), lambda o: canvas.pan(o, Pan.UP, BASE_RATIOS)]
)
def test_compositing_an_extension_keeps_every_original_pixel(make: object) -> None:
    original = photo()
    ext = make(original)  # type: ignore[operator]
    result = canvas.composite(ext.base, model_answer((1024, 1024)), ext.mask)
    assert result.size == ext.request.size
    p = ext.placement
    kept = result.crop((p.left, p.top, p.left + p.width, p.top + p.height))
    assert kept.tobytes() == original.tobytes()  # 0 pixels changed
    assert changed_outside(result, ext.base, ext.mask) == 0


def test_region_edit_changes_nothing_outside_the_painted_region() -> None:
    original = photo()
    painted = Image.new("RGBA", (200, 150), (0, 0, 0, 0))  # painted at half size, as a browser may
    ImageDraw.Draw(painted).ellipse((40, 30, 120, 100), fill=(255, 60, 60, 255))
    mask = canvas.binary_mask(painted, original.size)
    result = canvas.composite(original, model_answer((1024, 768)), painted)
    assert changed_outside(result, original, mask) == 0
    # Deep inside the region the model's image is taken as it is.
    scaled = model_answer((1024, 768)).resize(original.size, Image.Resampling.LANCZOS)
    assert result.getpixel((160, 130)) == scaled.getpixel((160, 130))
    assert result.getpixel((10, 10)) == original.getpixel((10, 10))


def test_the_seam_is_feathered_over_at_most_16_pixels_inside_the_region() -> None:
    mask = Image.new("L", (100, 60), 0)
    mask.paste(255, (50, 0, 100, 60))
    alpha = canvas.feathered(mask)
    row = [alpha.getpixel((x, 30)) for x in range(100)]
    assert row[:50] == [0] * 50
    assert row[50] > 0 and row[50 + FEATHER_PX - 1] == 255 and row[50 + FEATHER_PX - 2] < 255
    assert row == sorted(row)


def test_transparency_is_kept_through_a_composite() -> None:
    original = photo().convert("RGBA")
    original.putpixel((5, 5), (1, 2, 3, 0))
    mask = Image.new("L", original.size, 0)
    mask.paste(255, (200, 0, 400, 300))
    result = canvas.composite(original, model_answer((512, 512)), mask)
    assert result.mode == "RGBA"
    assert result.getpixel((5, 5)) == (1, 2, 3, 0)
    assert changed_outside(result, original, mask) == 0


def test_the_model_is_shown_the_original_a_mask_and_the_region_outlined() -> None:
    original = photo()
    painted = Image.new("RGBA", original.size, (0, 0, 0, 0))
    ImageDraw.Draw(painted).rectangle((100, 100, 199, 199), fill=(0, 0, 255, 255))
    shown = canvas.region_prompt(original, painted)
    assert shown.original.tobytes() == original.tobytes()
    assert shown.mask.getpixel((150, 150)) == 255 and shown.mask.getpixel((50, 50)) == 0
    assert shown.outlined.getpixel((98, 150)) == canvas.OUTLINE_COLOUR
    assert shown.outlined.getpixel((150, 150)) == original.getpixel((150, 150))
    assert shown.outlined.getpixel((20, 20)) == original.getpixel((20, 20))
