"""The region editor's routes on the bot's HTTP listener (``PORT``), served when ``PUBLIC_URL``
is set: the page, the image, the submitted edit (handed to the ``RegionEdits`` port) and how it
goes. Every response carries ``page.SECURITY_HEADERS``; a refused link gets 403 and one sentence."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from PIL import Image, UnidentifiedImageError

from bot.editing.page import SECURITY_HEADERS, editor_page, plain_page
from bot.editing.records import EditState, RegionEdit
from bot.editing.tokens import EditLinks, LinkRefused
from bot.images.budget import ImageBudget
from bot.images.canvas import binary_mask, painted_share
from bot.images.checks import ensure_plugins
from bot.ports import RegionEdits
from bot.text import editor_words

log = logging.getLogger(__name__)

EDIT_PATH = "/edit"
# A painted mask is a PNG of mostly flat areas (tens of kilobytes); the cap leaves room for a
# 4096-pixel canvas of scribbles and refuses anything like 10 MB with 413.
MAX_EDIT_BODY = 8 * 1024 * 1024
# Masks are painted at the image's own size: 4K at 16:9 is 5504 x 3072 (17 million pixels).
MAX_MASK_PIXELS = 24_000_000
# Bytes per pixel while a mask is checked: its RGBA copy, the alpha channel, the 0/255 region.
MASK_BYTES_PER_PIXEL = 6
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK = 64 * 1024
_STATIC = {
    "editor.js": "text/javascript",
    "editor.css": "text/css",
}
_SHOWN_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EditRefused(Exception):
    """A request the editor answers with one sentence and a status."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except LinkRefused as refused:
            log.info("editor link refused", extra={"reason": refused.reason.value, "path": _route(request)})
            response = plain_page(editor_words.EDIT_LINK_REFUSED[refused.reason.value], 403)
        except EditRefused as refused:
            response = plain_page(refused.sentence, refused.status)
        response.headers.update(SECURITY_HEADERS)
        return response

    return guarded


def _route(request: web.Request) -> str:
    """The route without its token, for logs (a token is a credential)."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "?"


class EditorSite:
    """The editor's routes; ``install`` adds them to the application on ``PORT``."""

    def __init__(
        self,
        links: EditLinks,
        edits: RegionEdits,
        *,
        max_body: int = MAX_EDIT_BODY,
        max_instruction_chars: int = 4000,
        decodes: ImageBudget | None = None,
    ) -> None:
        self._links = links
        self._edits = edits
        # The process's decode budget: masks are decoded within it, like attachments.
        self._decodes = decodes or ImageBudget(MAX_MASK_PIXELS * MASK_BYTES_PER_PIXEL)
        self._max_body = max_body
        self._max_instruction_chars = max_instruction_chars
        folder = resources.files("bot.editing").joinpath("static")
        self._static = {name: folder.joinpath(name).read_bytes() for name in _STATIC}

    def install(self, app: web.Application) -> None:
        add = app.router
        add.add_get(f"{EDIT_PATH}/static/{{name}}", _guarded(self._static_file))
        add.add_get(f"{EDIT_PATH}/{{token}}", _guarded(self._page))
        add.add_post(f"{EDIT_PATH}/{{token}}", _guarded(self._submit))
        add.add_get(f"{EDIT_PATH}/{{token}}/image", _guarded(self._image))
        add.add_get(f"{EDIT_PATH}/{{token}}/result", _guarded(self._result))
        add.add_get(f"{EDIT_PATH}/{{token}}/result/image", _guarded(self._result_image))

    async def _static_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self._static:
            raise EditRefused(404, editor_words.EDIT_LINK_REFUSED["invalid"])
        return web.Response(body=self._static[name], content_type=_STATIC[name], charset="utf-8")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        await self._links.check(token)
        return editor_page(token, self._max_instruction_chars)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        grant = await self._links.check(request.match_info["token"])
        original = await self._edits.original(grant)
        if original is None:
            raise EditRefused(404, editor_words.EDIT_IMAGE_GONE)
        if original.mime_type not in _SHOWN_TYPES:  # HEIC and the like: browsers can't show them
            return _image_response(await asyncio.to_thread(_as_png, original.data), "image/png")
        return _image_response(original.data, original.mime_type)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self._max_body:
            raise EditRefused(413, editor_words.EDIT_TOO_LARGE)
        await self._links.check(request.match_info["token"])  # a bad link is refused before its body is read
        fields = await self._read_form(request)
        instruction = fields.get("instruction", b"").decode("utf-8", "replace").strip()
        if not instruction:
            raise EditRefused(400, editor_words.EDIT_NO_INSTRUCTION)
        instruction = instruction[: self._max_instruction_chars]
        mask = fields.get("mask", b"")
        width, height = await asyncio.to_thread(_mask_size, mask)
        async with self._decodes.reserve(width * height * MASK_BYTES_PER_PIXEL):
            await asyncio.to_thread(_check_mask, mask)
        # Used up only now, once the edit is sound: a refused submission can be sent again.
        grant = await self._links.use(request.match_info["token"])
        where = await self._edits.submit(RegionEdit(grant, mask, instruction))
        log.info("region edit submitted", extra={"conversation": str(grant.key), "turn": grant.turn_id})
        body = {
            "message": editor_words.edit_on_its_way(where),
            "result": f"{request.match_info['token']}/result",
        }
        return web.json_response(body)

    async def _read_form(self, request: web.Request) -> dict[str, bytes]:
        """The multipart form's fields, read at most ``max_body`` bytes in all."""
        if not request.content_type.startswith("multipart/"):
            raise EditRefused(400, editor_words.EDIT_BAD_MASK)
        try:
            return await self._read_parts(request)
        except (ValueError, HttpProcessingError):  # not a well-formed form
            raise EditRefused(400, editor_words.EDIT_BAD_MASK) from None

    async def _read_parts(self, request: web.Request) -> dict[str, bytes]:
        reader = await request.multipart()
        fields: dict[str, bytes] = {}
        total = 0
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise EditRefused(400, editor_words.EDIT_BAD_MASK)
            chunks = []
            while chunk := await part.read_chunk(_CHUNK):
                total += len(chunk)
                if total > self._max_body:
                    raise EditRefused(413, editor_words.EDIT_TOO_LARGE)
                chunks.append(chunk)
            if part.name in ("mask", "instruction"):
                fields[part.name] = b"".join(chunks)
        return fields

    async def _result(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        progress = await self._edits.progress(await self._links.submitted(token))
        body = {"state": progress.state.value, "message": progress.message}
        if progress.state is EditState.DONE and progress.image is not None:
            body["image"] = f"{token}/result/image"
        return web.json_response(body)

    async def _result_image(self, request: web.Request) -> web.StreamResponse:
        progress = await self._edits.progress(await self._links.submitted(request.match_info["token"]))
        if progress.image is None:
            raise EditRefused(404, progress.message)
        return _image_response(progress.image.data, progress.image.mime_type)


def _image_response(data: bytes, mime_type: str) -> web.Response:
    shown = mime_type if mime_type in _SHOWN_TYPES else "application/octet-stream"
    return web.Response(body=data, content_type=shown)


def _as_png(data: bytes) -> bytes:
    """An image browsers cannot show, as PNG (off the event loop)."""
    ensure_plugins()
    try:
        with Image.open(io.BytesIO(data)) as image:
            out = io.BytesIO()
            image.save(out, "PNG")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise EditRefused(404, editor_words.EDIT_IMAGE_GONE) from None
    return out.getvalue()


def _mask_size(data: bytes) -> tuple[int, int]:
    """A PNG mask's size from its header, refused unless sane (off the event loop)."""
    if not data.startswith(PNG_SIGNATURE):
        raise EditRefused(400, editor_words.EDIT_BAD_MASK)
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            size: tuple[int, int] = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise EditRefused(400, editor_words.EDIT_BAD_MASK) from None
    if size[0] * size[1] > MAX_MASK_PIXELS:
        raise EditRefused(413, editor_words.EDIT_TOO_LARGE)
    return size


def _check_mask(data: bytes) -> None:
    """Something painted on the mask (off the event loop, ``_mask_size`` checked first)."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            region = binary_mask(image, image.size)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise EditRefused(400, editor_words.EDIT_BAD_MASK) from None
    if painted_share(region) == 0:
        raise EditRefused(400, editor_words.EDIT_NOTHING_PAINTED)
