"""How replies are cut into Discord messages: text at 2000 characters, 10 files, the upload limit."""

from __future__ import annotations

import io

from PIL import Image

from adapters.discord.places import mention_pattern, strip_mentions, thread_name
from adapters.discord.sink import MAX_CONTENT, fit_image, plan_messages, split_text
from bot.vocabulary import ImagePart, TextPart
from tests.auxil import image_factory as img


def part(size: int, name: str = "image-1.png") -> ImagePart:
    return ImagePart(data=b"x" * size, mime_type="image/png", filename=name)


def test_text_is_cut_at_a_break_and_never_over_the_limit() -> None:
    text = ("A sentence about a harbour at dusk. " * 40).strip() + "\n\n" + "Next paragraph. " * 100
    pieces = split_text(text)
    assert all(len(p) <= MAX_CONTENT for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())
    assert pieces[0].endswith("dusk.")


def test_a_word_longer_than_a_message_is_cut_hard() -> None:
    pieces = split_text("x" * 4500)
    assert [len(p) for p in pieces] == [2000, 2000, 500]


def test_images_join_the_text_before_them_up_to_ten_files_and_the_budget() -> None:
    parts = [TextPart("Here you go."), *[part(100) for _ in range(12)], TextPart("Enjoy."), part(100)]
    planned = plan_messages(parts, budget=10_000)
    assert [(m.content, len(m.images)) for m in planned] == [
        ("Here you go.", 10),
        (None, 2),
        ("Enjoy.", 1),
    ]
    by_size = plan_messages([part(600), part(600), part(600)], budget=1000)
    assert [len(m.images) for m in by_size] == [1, 1, 1]


def test_an_image_over_the_budget_becomes_a_jpeg_that_fits() -> None:
    noisy = img.noise_jpeg(600, 400)
    png = ImagePart(data=_png_of(noisy), mime_type="image/png", filename="image-1.png")
    fitted = fit_image(png, budget=40_000)
    assert fitted.filename == "image-1.jpg" and fitted.mime_type == "image/jpeg"
    assert len(fitted.data) <= 40_000
    with Image.open(io.BytesIO(fitted.data)) as opened:
        assert opened.format == "JPEG"
    small = ImagePart(data=img.png(), mime_type="image/png", filename="image-2.png")
    assert fit_image(small, budget=40_000) is small


def test_transparent_pixels_turn_white_not_black() -> None:
    transparent = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    buffer = io.BytesIO()
    transparent.save(buffer, "PNG")
    fitted = fit_image(ImagePart(buffer.getvalue(), "image/png", "clear.png"), budget=50)
    with Image.open(io.BytesIO(fitted.data)) as opened:
        assert opened.convert("L").getextrema()[0] > 240


def test_mentions_are_stripped_and_threads_named_from_the_prompt() -> None:
    pattern = mention_pattern(42, 7)
    assert strip_mentions("<@42> a red <@!42> bicycle <@&7>\n  at dawn <@43>", pattern) == (
        "a red bicycle\nat dawn <@43>"
    )
    assert thread_name("  a   red bicycle ") == "a red bicycle"
    long_name = thread_name("word " * 40)
    assert len(long_name) <= 100 and long_name.endswith("…")
    assert thread_name("") == "Image"


def _png_of(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as opened:
        buffer = io.BytesIO()
        opened.save(buffer, "PNG")
        return buffer.getvalue()
