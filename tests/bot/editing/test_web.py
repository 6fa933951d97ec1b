"""The editor's routes over HTTP: what a valid link gets, what a bad one gets (403, nothing
submitted), the body cap (413), and the headers every answer carries."""

from __future__ import annotations

import asyncio
import html
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image, ImageDraw

from bot.editing.page import CONTENT_SECURITY_POLICY
from bot.editing.web import MASK_BYTES_PER_PIXEL
from bot.images.budget import ImageBudget
from bot.text import editor_words
from tests.auxil import image_factory
from tests.auxil.editor import KEY, WHERE, Editor, serving_editor
from tests.auxil.waiting import settled

GUARDS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@pytest.fixture
async def editor(tmp_path: Path) -> AsyncIterator[Editor]:
    async with serving_editor(tmp_path) as serving:
        yield serving


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def mask_png(painted: bool = True, size: tuple[int, int] = (640, 480)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    if painted:
        ImageDraw.Draw(image).ellipse((100, 100, 200, 180), fill=(255, 40, 120, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def form(mask: bytes | None = None, instruction: str = "a red umbrella") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field(
        "mask", mask if mask is not None else mask_png(), filename="mask.png", content_type="image/png"
    )
    data.add_field("instruction", instruction)
    return data


def assert_guarded(response: aiohttp.ClientResponse) -> None:
    assert {name: response.headers.get(name) for name in GUARDS} == GUARDS


async def test_a_valid_link_gets_the_page_its_assets_and_the_image(
    editor: Editor, http: aiohttp.ClientSession
) -> None:
    url = await editor.link()
    async with http.get(url) as page:
        assert page.status == 200 and page.content_type == "text/html"
        assert_guarded(page)
        html = await page.text()
    assert '<script src="static/editor.js"></script>' in html and "<script>" not in html
    assert "http" not in html.replace(url, "")  # nothing from another host
    for name, kind in (("editor.js", "text/javascript"), ("editor.css", "text/css")):
        async with http.get(f"{editor.base_url}/edit/static/{name}") as asset:
            assert asset.status == 200 and asset.content_type == kind
            assert_guarded(asset)
    async with http.get(f"{url}/image") as image:
        assert image.status == 200 and image.content_type == "image/png"
        assert await image.read() == editor.edits.image
        assert_guarded(image)
    async with http.get(f"{editor.base_url}/edit/static/secrets.py") as missing:
        assert missing.status == 404


async def test_a_submitted_edit_reaches_the_port_once_and_says_where_to_look(
    editor: Editor, http: aiohttp.ClientSession
) -> None:
    url = await editor.link(turn_id=9, person="U77")
    async with http.post(url, data=form()) as sent:
        assert sent.status == 200
        assert_guarded(sent)
        answer = await sent.json()
    assert answer["message"] == editor_words.edit_on_its_way(WHERE)
    [edit] = editor.edits.submitted
    assert (edit.grant.key, edit.grant.turn_id, edit.grant.person) == (KEY, 9, "U77")
    assert edit.instruction == "a red umbrella" and edit.mask_png == mask_png()
    async with http.get(f"{editor.base_url}/edit/{answer['result']}") as waiting:
        assert (await waiting.json())["state"] == "pending"
    editor.edits.results[edit.grant.link_id] = b"result-bytes"
    async with http.get(f"{editor.base_url}/edit/{answer['result']}") as done:
        body = await done.json()
    assert body["state"] == "done"
    async with http.get(f"{editor.base_url}/edit/{body['image']}") as result:
        assert await result.read() == b"result-bytes"
    # Used up: the page, its image and a second submission are refused.
    for method, target in (("GET", url), ("GET", f"{url}/image"), ("POST", url)):
        async with http.request(method, target, data=form() if method == "POST" else None) as again:
            assert again.status == 403
            assert editor_words.EDIT_LINK_REFUSED["used"] in await again.text()
    assert len(editor.edits.submitted) == 1


async def test_bad_links_get_403_one_sentence_and_submit_nothing(
    editor: Editor, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    good = await editor.link()
    token = good.rsplit("/", 1)[1]
    flipped = token[:5] + ("B" if token[5] != "B" else "C") + token[6:]
    async with serving_editor(tmp_path / "elsewhere") as other:
        foreign = (await other.link()).rsplit("/", 1)[1]
    editor.links._lifetime_s = -1  # a link that expired the moment it was made
    expired = (await editor.link()).rsplit("/", 1)[1]
    bad = {flipped: "invalid", foreign: "invalid", expired: "expired", "nonsense": "invalid"}
    for bad_token, reason in bad.items():
        for method, suffix in (("GET", ""), ("GET", "/image"), ("POST", ""), ("GET", "/result")):
            target = f"{editor.base_url}/edit/{bad_token}{suffix}"
            async with http.request(method, target, data=form() if method == "POST" else None) as refused:
                assert refused.status == 403, (reason, method, suffix)
                assert_guarded(refused)
                text = await refused.text()
            assert text.count("<p>") == 1 and editor_words.EDIT_LINK_REFUSED[reason] in html.unescape(text)
    assert editor.edits.submitted == []


async def test_a_10_mb_body_is_refused_with_413_and_the_link_still_works(
    editor: Editor, http: aiohttp.ClientSession
) -> None:
    url = await editor.link()
    async with http.post(url, data=form(mask=b"\x89PNG\r\n\x1a\n" + bytes(10 * 1000 * 1000))) as big:
        assert big.status == 413
        assert_guarded(big)
        assert editor_words.EDIT_TOO_LARGE in await big.text()

    async def chunked(first: bytes) -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield first
        for _ in range(10):
            yield b"\r\n" * 500_000

    headers = {"Content-Type": "multipart/form-data; boundary=zz"}
    async with http.post(url, data=chunked(b"x" * 1_000_000), headers=headers) as garbage:
        assert garbage.status == 400
    part = b'--zz\r\nContent-Disposition: form-data; name="mask"; filename="m.png"\r\n\r\n\x89PNG'
    async with http.post(url, data=chunked(part + b"\r\n" * 500_000), headers=headers) as streamed:
        assert streamed.status == 413
    assert editor.edits.submitted == []
    async with http.post(url, data=form()) as sent:
        assert sent.status == 200


@pytest.mark.parametrize(
    ("mask", "instruction", "sentence"),
    [
        (mask_png(painted=False), "a hat", editor_words.EDIT_NOTHING_PAINTED),
        (mask_png(), "   ", editor_words.EDIT_NO_INSTRUCTION),
        (b"GIF89a not a png", "a hat", editor_words.EDIT_BAD_MASK),
        (b"\x89PNG\r\n\x1a\n broken", "a hat", editor_words.EDIT_BAD_MASK),
    ],
)
async def test_an_unsound_edit_is_refused_without_using_the_link(
    editor: Editor, http: aiohttp.ClientSession, mask: bytes, instruction: str, sentence: str
) -> None:
    url = await editor.link()
    async with http.post(url, data=form(mask, instruction)) as refused:
        assert refused.status == 400
        assert sentence in html.unescape(await refused.text())
    async with http.get(url) as page:
        assert page.status == 200
    assert editor.edits.submitted == []


async def test_the_result_is_only_for_a_link_that_was_used(
    editor: Editor, http: aiohttp.ClientSession
) -> None:
    url = await editor.link()
    async with http.get(f"{url}/result") as early:
        assert early.status == 403


async def test_healthz_is_still_served_beside_the_editor(editor: Editor, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{editor.base_url}/healthz") as health:
        assert health.status == 200


async def test_an_image_browsers_cannot_show_is_served_as_png(
    editor: Editor, http: aiohttp.ClientSession
) -> None:
    editor.edits.image, editor.edits.mime_type = image_factory.heic(64, 48), "image/heic"
    async with http.get(f"{await editor.link()}/image") as image:
        assert image.status == 200 and image.content_type == "image/png"
        with Image.open(io.BytesIO(await image.read())) as shown:
            assert shown.format == "PNG" and shown.size == (64, 48)


async def test_masks_are_checked_within_the_process_image_memory(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Many submissions at once cannot decode many large masks at once: each waits for room in
    the decode budget the turns and attachments share."""
    budget = ImageBudget(640 * 480 * MASK_BYTES_PER_PIXEL)
    async with serving_editor(tmp_path, decodes=budget) as editor:
        url = await editor.link()
        async with budget.reserve(budget.capacity):  # the process is decoding something else
            sending = asyncio.create_task(http.post(url, data=form()))
            assert await settled(lambda: budget.waiting == 1)
            assert not sending.done() and editor.edits.submitted == []
        async with await sending as sent:
            assert sent.status == 200
        assert len(editor.edits.submitted) == 1 and budget.in_use == 0
