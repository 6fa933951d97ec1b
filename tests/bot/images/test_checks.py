"""Every way an attachment is accepted, converted or refused by ``bot.images.checks``."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

from bot.images import checks as images
from bot.images.checks import (
    ImageLimits,
    ImageRejected,
    PreparedImage,
    check_declared,
    image_dimensions,
    prepare_image,
    prepare_image_async,
    too_many_images_message,
)
from storage.content import Blob, blob_hash
from tests.auxil import image_factory as make
from tests.auxil.image_factory import BLUE, GREEN, RED

LIMITS = ImageLimits()
ROOT = Path(__file__).resolve().parents[3]


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def rejected(data: bytes, filename: str, limits: ImageLimits = LIMITS) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        prepare_image(data, filename, limits)
    return info.value


# --- accepted as they are -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "mime", "size", "source_format"),
    [
        (make.png(64, 48), "photo.png", "image/png", (64, 48), "PNG"),
        (make.png(64, 48, alpha=True), "alpha.png", "image/png", (64, 48), "PNG"),
        (make.png16(32, 32), "deep.png", "image/png", (32, 32), "PNG"),
        (make.jpeg(64, 48), "photo.jpg", "image/jpeg", (64, 48), "JPEG"),
        (make.jpeg(64, 48, exif_orientation=1), "upright.jpg", "image/jpeg", (64, 48), "JPEG"),
        (make.mpo(64, 48), "camera.jpg", "image/jpeg", (64, 48), "MPO"),
        (make.webp(64, 48), "photo.webp", "image/webp", (64, 48), "WEBP"),
        (make.webp(64, 48, alpha=True), "alpha.webp", "image/webp", (64, 48), "WEBP"),
        (make.heic(64, 48), "IMG_0001.HEIC", "image/heic", (64, 48), "HEIF"),
    ],
)
def test_supported_formats_pass_through_byte_identical(
    data: bytes, filename: str, mime: str, size: tuple[int, int], source_format: str
) -> None:
    result = prepare_image(data, filename, LIMITS)
    assert result == PreparedImage(data, mime, size[0], size[1], source_format)


def test_format_comes_from_the_bytes_not_the_name() -> None:
    data = make.jpeg(20, 10)
    result = prepare_image(data, "actually-a-jpeg.png", LIMITS)
    assert result.mime_type == "image/jpeg"
    assert result.data == data


def test_blob_carries_bytes_and_mime() -> None:
    data = make.png(8, 8)
    blob = prepare_image(data, "a.png", LIMITS).blob
    assert blob == Blob(mime_type="image/png", data=data)
    assert blob.sha256 == blob_hash(data)


def test_image_at_exactly_the_limits_is_accepted_unchanged() -> None:
    data = make.png(100, 50)
    limits = ImageLimits(max_bytes=len(data), max_pixels=100 * 50, max_side=100)
    assert prepare_image(data, "edge.png", limits).data == data


# --- converted ------------------------------------------------------------------------------


def test_animated_gif_becomes_png_of_its_first_frame() -> None:
    result = prepare_image(make.gif(frames=3, w=32, h=24), "party.gif", LIMITS)
    assert (result.mime_type, result.width, result.height) == ("image/png", 32, 24)
    assert result.source_format == "GIF"
    im = decode(result.data)
    assert im.format == "PNG"
    assert getattr(im, "n_frames", 1) == 1
    assert im.convert("RGB").getpixel((5, 5)) == RED


def test_transparent_gif_keeps_its_transparency_as_png() -> None:
    result = prepare_image(make.transparent_gif(16, 16), "sticker.gif", LIMITS)
    im = decode(result.data)
    assert result.mime_type == "image/png"
    assert im.mode == "RGBA"
    assert im.getpixel((2, 2)) == (255, 0, 0, 255)
    assert im.getpixel((12, 2))[3] == 0


@pytest.mark.parametrize(
    ("data", "filename", "source_format", "color"),
    [
        (make.bmp(40, 30, GREEN), "scan.bmp", "BMP", GREEN),
        (make.tiff(40, 30, BLUE), "scan.tiff", "TIFF", BLUE),
        (make.tiff(40, 30, RED, compression="raw"), "raw.tif", "TIFF", RED),
        (make.ico(32, RED), "favicon.ico", "ICO", RED),
    ],
)
def test_other_formats_become_lossless_png(
    data: bytes, filename: str, source_format: str, color: tuple[int, int, int]
) -> None:
    result = prepare_image(data, filename, LIMITS)
    assert result.mime_type == "image/png"
    assert result.source_format == source_format
    im = decode(result.data)
    assert im.format == "PNG"
    assert (im.width, im.height) == (result.width, result.height)
    assert im.convert("RGB").getpixel((3, 3)) == color


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped() -> None:
    result = prepare_image(make.tiff16(level=40000), "deep.tif", LIMITS)
    im = decode(result.data)
    assert result.mime_type == "image/png"
    assert im.mode == "L"
    assert im.getpixel((0, 0)) == round(40000 / 257)


def test_animated_webp_becomes_a_still_of_its_first_frame() -> None:
    result = prepare_image(make.animated_webp(frames=3), "loop.webp", LIMITS)
    assert result.mime_type in ("image/jpeg", "image/png")
    im = decode(result.data)
    assert getattr(im, "n_frames", 1) == 1
    assert close_to(im.convert("RGB").getpixel((5, 5)), RED)


def test_cmyk_jpeg_becomes_rgb_jpeg() -> None:
    data = make.cmyk_jpeg(40, 30)
    assert decode(data).mode == "CMYK"
    result = prepare_image(data, "print.jpg", LIMITS)
    im = decode(result.data)
    assert (result.mime_type, im.format, im.mode) == ("image/jpeg", "JPEG", "RGB")
    assert (result.width, result.height) == (40, 30)
    assert close_to(im.getpixel((10, 10)), RED, tolerance=20)
    assert "icc_profile" not in im.info


# --- orientation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "size", "marker_at"),
    [
        (3, (40, 20), (35, 10)),  # turned 180°: the left half is now on the right
        (6, (20, 40), (10, 5)),  # turned 90° clockwise: the left half is now on top
        (8, (20, 40), (10, 35)),  # turned 90° anticlockwise: the left half is now below
    ],
)
def test_exif_orientation_is_applied_and_the_image_re_encoded(
    orientation: int, size: tuple[int, int], marker_at: tuple[int, int]
) -> None:
    data = make.jpeg(40, 20, RED, exif_orientation=orientation, left_color=BLUE)
    result = prepare_image(data, "phone.jpg", LIMITS)
    assert result.data != data
    assert (result.mime_type, (result.width, result.height)) == ("image/jpeg", size)
    im = decode(result.data)
    assert im.size == size
    assert close_to(im.convert("RGB").getpixel(marker_at), BLUE)
    assert im.getexif().get(0x0112) is None


def test_re_encoding_keeps_the_colour_profile() -> None:
    icc = make.srgb_icc()
    data = make.jpeg(40, 20, exif_orientation=6, icc_profile=icc)
    im = decode(prepare_image(data, "p3.jpg", LIMITS).data)
    assert im.info.get("icc_profile") == icc


# --- downscaling ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("w", "h", "expected"),
    [(6000, 4000, (3072, 2048)), (4000, 6000, (2048, 3072))],
)
def test_big_photo_is_downscaled_to_max_side_keeping_ratio(w: int, h: int, expected: tuple[int, int]) -> None:
    data = make.noise_jpeg(w, h, quality=60)
    assert len(data) < LIMITS.max_bytes
    result = prepare_image(data, "camera.jpg", LIMITS)
    assert (result.width, result.height) == expected
    assert result.mime_type == "image/jpeg"
    assert decode(result.data).size == expected
    assert len(result.data) < len(data)


def test_downscale_and_orientation_together() -> None:
    data = make.jpeg(400, 200, exif_orientation=6, left_color=BLUE)
    result = prepare_image(data, "tall.jpg", ImageLimits(max_side=100))
    assert (result.width, result.height) == (50, 100)
    assert close_to(decode(result.data).convert("RGB").getpixel((25, 10)), BLUE)


def test_downscaled_opaque_png_becomes_jpeg() -> None:
    result = prepare_image(make.png(400, 300), "screen.png", ImageLimits(max_side=100))
    assert (result.mime_type, result.width, result.height) == ("image/jpeg", 100, 75)


def test_downscaled_png_with_alpha_stays_png_with_alpha() -> None:
    result = prepare_image(make.png(400, 300, alpha=True), "logo.png", ImageLimits(max_side=100))
    assert (result.mime_type, result.width, result.height) == ("image/png", 100, 75)
    im = decode(result.data)
    assert im.mode == "RGBA"
    assert im.getpixel((50, 40))[3] == 128


def test_downscaled_heic_becomes_jpeg() -> None:
    result = prepare_image(make.heic(400, 200), "IMG.HEIC", ImageLimits(max_side=100))
    assert (result.mime_type, result.width, result.height) == ("image/jpeg", 100, 50)
    assert result.source_format == "HEIF"


# --- refused --------------------------------------------------------------------------------


def test_empty_file() -> None:
    err = rejected(b"", "empty.png")
    assert err.user_message == "empty.png is empty (0 bytes); attach the image again."
    assert err.reason == "empty"
    assert str(err) == err.user_message


def test_file_over_max_bytes() -> None:
    data = make.noise_jpeg(100, 100)
    assert len(data) > 1024
    err = rejected(data, "photo.jpg", ImageLimits(max_bytes=1024))
    assert err.user_message == "photo.jpg is larger than 1 KB; attach a smaller image."
    assert err.reason == "too_large"


@pytest.mark.parametrize("filename", ["notes.txt", "notes.png"])
def test_text_is_not_an_image_whatever_its_name(filename: str) -> None:
    err = rejected(b"Shopping list:\n- milk\n- eggs\n", filename)
    assert err.user_message == (f"{filename} is not an image; attach a PNG, JPEG, WebP or HEIC photo.")
    assert err.reason == "not_image"


def test_random_bytes_are_not_an_image() -> None:
    err = rejected(make.random_bytes(), "random.jpg")
    assert err.user_message == ("random.jpg is not an image; attach a PNG, JPEG, WebP or HEIC photo.")


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (make.truncated(make.png(300, 300), 0.6), "broken.png"),
        (make.truncated(make.png(300, 300), 0.1), "cut.png"),  # cut inside the header
        (make.truncated(make.noise_jpeg(200, 200), 0.6), "broken.jpg"),
        (make.truncated(make.webp(64, 48), 0.5), "broken.webp"),
        (make.truncated(make.heic(64, 48), 0.5), "broken.heic"),
    ],
)
def test_truncated_files_could_not_be_read(data: bytes, filename: str) -> None:
    err = rejected(data, filename)
    assert err.user_message == (
        f"{filename} could not be read (the file is damaged or incomplete); attach it again."
    )
    assert err.reason == "damaged"


def test_svg_is_named_as_a_drawing() -> None:
    err = rejected(make.svg_bytes(), "drawing.svg")
    assert err.user_message == (
        "drawing.svg is an SVG drawing, not a photo; export it as PNG and attach that."
    )
    assert err.reason == "drawing"


def test_svg_without_xml_declaration() -> None:
    data = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert rejected(data, "icon.png").reason == "drawing"


def test_pdf_is_named_as_a_document() -> None:
    err = rejected(make.pdf_bytes(), "report.pdf")
    assert err.user_message == (
        "report.pdf is a PDF document, not a photo; export the page as PNG and attach that."
    )


def test_eps_is_refused_without_running_ghostscript(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ghostscript(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ghostscript must never run on an attachment")

    monkeypatch.setattr(subprocess, "check_call", no_ghostscript)
    err = rejected(make.eps_bytes(), "logo.eps")
    assert err.user_message == (
        "logo.eps is a PostScript drawing, not a photo; export it as PNG and attach that."
    )


def test_decompression_bomb_is_refused_from_its_header_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = make.bomb_png(20_000, 20_000)
    assert len(bomb) < 100_000  # a few KB that would decode to 400 million pixels

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("a bomb must be refused before any pixel is decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    err = rejected(bomb, "huge.png")
    assert err.user_message == (
        "huge.png is too large to process (20000×20000 pixels); attach an image under 50 megapixels."
    )
    assert err.reason == "too_many_pixels"


def test_bomb_check_uses_our_limit_not_pillows_global_one() -> None:
    pillow_default = Image.MAX_IMAGE_PIXELS
    bomb = make.bomb_png(10_000, 10_000)  # above Pillow's warning threshold
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        err = rejected(bomb, "big.png")
    assert "(10000×10000 pixels)" in err.user_message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert pillow_default == Image.MAX_IMAGE_PIXELS


def test_max_pixels_is_configurable() -> None:
    err = rejected(make.png(100, 100), "small.png", ImageLimits(max_pixels=5_000))
    assert err.user_message == (
        "small.png is too large to process (100×100 pixels); attach an image under 5000 pixels."
    )
    err = rejected(make.png(2000, 1000), "wide.png", ImageLimits(max_pixels=1_500_000))
    assert err.user_message.endswith("attach an image under 1.5 megapixels.")


def test_pillow_decompression_bomb_error_while_decoding_becomes_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def bomb(self: ImageFile.ImageFile) -> None:
        raise Image.DecompressionBombError("Image size exceeds limit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", bomb)
    err = rejected(make.png(30, 20), "frames.png")
    assert err.user_message == (
        "frames.png is too large to process (30×20 pixels); attach an image under 50 megapixels."
    )


def test_unexpected_decoder_error_becomes_could_not_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: ImageFile.ImageFile) -> None:
        raise KeyError("odd decoder state")

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken)
    assert rejected(make.png(30, 20), "odd.png").reason == "damaged"


def test_filename_in_messages_is_only_the_base_name() -> None:
    err = rejected(b"", "../../etc/\x1bphoto.png")
    assert err.user_message == "photo.png is empty (0 bytes); attach the image again."
    err = rejected(b"", "")
    assert err.user_message == "The attachment is empty (0 bytes); attach the image again."


# --- declared size (before download) --------------------------------------------------------


def test_check_declared_refuses_zero_bytes() -> None:
    with pytest.raises(ImageRejected) as info:
        check_declared("empty.png", 0, LIMITS)
    assert info.value.user_message == "empty.png is empty (0 bytes); attach the image again."


def test_check_declared_refuses_oversize() -> None:
    with pytest.raises(ImageRejected) as info:
        check_declared("photo.jpg", 20 * 1024 * 1024 + 1, LIMITS)
    assert info.value.user_message == "photo.jpg is larger than 20 MB; attach a smaller image."


@pytest.mark.parametrize("size", [None, 1, 20 * 1024 * 1024])
def test_check_declared_lets_unknown_and_allowed_sizes_through(size: int | None) -> None:
    check_declared("photo.jpg", size, LIMITS)


@pytest.mark.parametrize(
    ("max_bytes", "shown"),
    [
        (5 * 1024 * 1024, "5 MB"),
        (int(2.5 * 1024 * 1024), "2.5 MB"),
        (1536, "1.5 KB"),
        (500, "500 bytes"),
    ],
)
def test_size_limit_is_shown_in_plain_units(max_bytes: int, shown: str) -> None:
    with pytest.raises(ImageRejected) as info:
        check_declared("a.png", max_bytes + 1, ImageLimits(max_bytes=max_bytes))
    assert info.value.user_message == f"a.png is larger than {shown}; attach a smaller image."


# --- helpers --------------------------------------------------------------------------------


def test_too_many_images_message() -> None:
    assert too_many_images_message(5, 3, "gemini-2.5-flash-image") == (
        "You attached 5 images; gemini-2.5-flash-image takes at most 3 per turn. Attach fewer and try again."
    )


def test_image_dimensions_reads_only_the_header() -> None:
    assert image_dimensions(make.png(64, 48)) == (64, 48)
    assert image_dimensions(make.heic(64, 48)) == (64, 48)
    assert image_dimensions(make.jpeg(40, 20, exif_orientation=6)) == (40, 20)  # as stored
    assert image_dimensions(make.bomb_png(20_000, 20_000)) == (20_000, 20_000)
    with pytest.raises(ValueError):
        image_dimensions(b"not an image")


# --- threads and the event loop -------------------------------------------------------------


async def test_prepare_image_async_matches_sync_and_runs_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = make.jpeg(400, 200, exif_orientation=6)
    limits = ImageLimits(max_side=100)
    expected = prepare_image(data, "photo.jpg", limits)

    threads: list[int] = []
    header, decode = images._open_checked, images._decode_and_convert

    def probe_header(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return header(*args)

    def probe_decode(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return decode(*args)

    # Both halves (header checks; decode and conversion) run in worker threads.
    monkeypatch.setattr(images, "_open_checked", probe_header)
    monkeypatch.setattr(images, "_decode_and_convert", probe_decode)
    result = await prepare_image_async(data, "photo.jpg", limits)
    assert result == expected
    assert len(threads) == 2 and threading.get_ident() not in threads


async def test_prepare_image_async_raises_rejections() -> None:
    with pytest.raises(ImageRejected) as info:
        await prepare_image_async(b"", "empty.png", LIMITS)
    assert info.value.user_message == "empty.png is empty (0 bytes); attach the image again."


def test_heif_opener_is_registered_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import pillow_heif

    calls: list[int] = []
    real = pillow_heif.register_heif_opener

    def counting(**kwargs: object) -> None:
        calls.append(threading.get_ident())
        real(**kwargs)

    monkeypatch.setattr(pillow_heif, "register_heif_opener", counting)
    monkeypatch.setattr(images, "_plugins_ready", False)
    data = make.heic(16, 16)
    start = threading.Barrier(8)
    results: list[str] = []

    def work() -> None:
        start.wait()
        results.append(prepare_image(data, "a.heic", LIMITS).mime_type)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == ["image/heic"] * 8
    assert len(calls) == 1


def test_import_has_no_side_effects() -> None:
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "before = Image.MAX_IMAGE_PIXELS\n"
        "import bot.images.checks\n"
        "assert 'pillow_heif' not in sys.modules, 'pillow_heif imported at import time'\n"
        "assert 'HEIF' not in Image.OPEN, 'HEIF opener registered at import time'\n"
        "assert Image.MAX_IMAGE_PIXELS == before\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
