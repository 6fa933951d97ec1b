"""Turns that reframe a stored image (zoom out, pan, a painted region): what the model is sent,
and its answer composited back over the original so the original's pixels stay exactly as they
were. The Pillow work runs in threads (``asyncio.to_thread``)."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image

from bot.gemini import GenerationResult
from bot.images import canvas
from bot.text import messages
from bot.vocabulary import ImagePart, ReplyPart
from storage.content import Blob, ContentRecord, blob_refs
from storage.protocol import Store, StoredTurn

ZOOM, PAN, REGION = "zoom", "pan", "region"
# The thread setting that remembers how a stored turn was framed, so Regenerate frames it again.
SETTING_PREFIX = "frame."
_ZOOMS = {"1.5": "1.5", "1.5x": "1.5", "2": "2", "2x": "2", "2.0": "2"}
_PANS = tuple(p.value for p in canvas.Pan)
# Copies of a canvas's pixels alive at once while it is built or composited (RGBA, 4 bytes each):
# the canvas, the base, the mask, the model's image scaled, the result.
_COPIES = 5


def work_bytes(size: tuple[int, int], grow: float = 1.0) -> int:
    """Memory the canvases of an image of ``size`` take, grown ``grow`` times in area."""
    return int(size[0] * size[1] * grow * 4 * _COPIES)


def image_size(data: bytes) -> tuple[int, int]:
    """An image's size from its header, without decoding it."""
    with Image.open(io.BytesIO(data)) as opened:
        return opened.size


@dataclass(frozen=True, slots=True)
class Frame:
    """What a reframing turn does: ``zoom`` by "1.5" or "2", ``pan`` to a side, or a ``region``."""

    op: str
    value: str = ""

    @property
    def spec(self) -> str:
        return f"{self.op}:{self.value}" if self.value else self.op

    @classmethod
    def parse(cls, spec: str) -> Frame | None:
        op, _, value = spec.strip().lower().partition(":")
        if op == ZOOM:
            return zoom(value)
        if op == PAN:
            return pan(value)
        return cls(REGION) if op == REGION and not value else None


def zoom(argument: str) -> Frame | None:
    value = _ZOOMS.get(argument.strip().lower())
    return Frame(ZOOM, value) if value else None


def pan(argument: str) -> Frame | None:
    side = argument.strip().lower()
    return Frame(PAN, side) if side in _PANS else None


def setting_name(turn_id: int) -> str:
    return f"{SETTING_PREFIX}{turn_id}"


@dataclass(frozen=True, slots=True)
class FrameJob:
    """A plan's reframing: ``image_turn``'s image is framed; ``mask_png`` is a region's mask."""

    frame: Frame
    image_turn: int
    mask_png: bytes = b""


@dataclass(frozen=True, slots=True)
class Framed:
    """What the model is sent (``blobs``, in order, at ``aspect_ratio``) and what its answer is
    composited over (``base``, through ``mask``)."""

    blobs: tuple[Blob, ...]
    base: Image.Image
    mask: Image.Image
    aspect_ratio: str


def instruction(frame: Frame, text: str = "") -> str:
    """What the model is told to do with the framed images."""
    if frame.op == ZOOM:
        return messages.ZOOM_INSTRUCTION
    if frame.op == PAN:
        return messages.PAN_INSTRUCTION.format(side=messages.PAN_SIDES[frame.value])
    return messages.REGION_INSTRUCTION.format(instruction=text)


def first_image(turn: StoredTurn) -> tuple[str, str] | None:
    """The (blob, mime type) of the first image the model answered with (never a thought)."""
    for part in turn.model_content.get("parts") or ():
        inline = part.get("inline_data")
        if not part.get("thought") and inline and "blob" in inline:
            return str(inline["blob"]), str(inline.get("mime_type", "image/png"))
    return None


async def source_image(store: Store, turn_id: int) -> bytes | None:
    """The bytes of a stored turn's image, or None when the turn or its image is gone."""
    turn = await store.turn(turn_id)
    found = first_image(turn) if turn is not None else None
    if found is None:
        return None
    return (await store.load_blobs([found[0]])).get(found[0])


def looks_framed(user_content: ContentRecord) -> bool:
    """Whether a stored turn's request reads like one this module wrote (its text one of the
    instructions above): only then is the store asked how it was framed, so Regenerate on any
    other turn costs no extra round trip."""
    texts = [str(p["text"]) for p in user_content.get("parts") or () if isinstance(p.get("text"), str)]
    starts = (
        messages.ZOOM_INSTRUCTION,
        *(messages.PAN_INSTRUCTION.format(side=s) for s in messages.PAN_SIDES.values()),
    )
    region = messages.REGION_INSTRUCTION.partition("{")[0]
    return any(t in starts or t.startswith(region) for t in texts)


def stored_mask(user_content: ContentRecord) -> str | None:
    """The blob of a stored region edit's mask: the second image it sent."""
    refs = list(blob_refs(user_content))
    return refs[1] if len(refs) > 1 else None


def framed(job: FrameJob, data: bytes, ratios: tuple[str, ...]) -> Framed:
    """The canvases for ``job`` around the image ``data`` (CPU: run in a thread)."""
    with Image.open(io.BytesIO(data)) as opened:
        original = canvas.working_copy(opened)
    if job.frame.op == REGION:
        shown = canvas.region_prompt(original, Image.open(io.BytesIO(job.mask_png)))
        ratio = canvas.nearest_ratio(original.width, original.height, ratios)
        images = (shown.original, shown.mask, shown.outlined)
        return Framed(tuple(_png(i) for i in images), shown.original, shown.mask, ratio)
    if job.frame.op == ZOOM:
        ext = canvas.zoom_out(original, float(job.frame.value), ratios)
    else:
        ext = canvas.pan(original, canvas.Pan(job.frame.value), ratios)
    return Framed((_png(ext.request), _png(ext.mask)), ext.base, ext.mask, ext.aspect_ratio)


def composited(result: GenerationResult, frame: Framed) -> GenerationResult:
    """The answer with each of its images composited over the original through the mask (CPU:
    run in a thread); text and thought signatures are kept as they came."""
    if not result.ok or result.model_content is None:
        return result
    replaced: dict[str, Blob] = {}
    for blob in result.new_blobs:
        if blob.mime_type.startswith("image/") and _is_answer_image(result.model_content, blob.sha256):
            with Image.open(io.BytesIO(blob.data)) as answer:
                replaced[blob.sha256] = _png(canvas.composite(frame.base, answer, frame.mask))
    if not replaced:
        return result
    by_data = {old.data: replaced[old.sha256] for old in result.new_blobs if old.sha256 in replaced}
    return replace(
        result,
        model_content=_swapped(result.model_content, replaced),
        new_blobs=tuple(replaced.get(b.sha256, b) for b in result.new_blobs),
        parts=tuple(_swapped_part(p, by_data) for p in result.parts),
    )


def _is_answer_image(record: ContentRecord, sha256: str) -> bool:
    return any(
        (p.get("inline_data") or {}).get("blob") == sha256 and not p.get("thought")
        for p in record.get("parts") or ()
    )


def _swapped(record: ContentRecord, replaced: dict[str, Blob]) -> ContentRecord:
    parts: list[dict[str, Any]] = []
    for part in record.get("parts") or ():
        inline = part.get("inline_data")
        new = replaced.get(inline.get("blob", "")) if inline and not part.get("thought") else None
        if new is not None:
            part = {**part, "inline_data": {**inline, "blob": new.sha256, "mime_type": new.mime_type}}
        parts.append(part)
    return {**record, "parts": parts}


def _swapped_part(part: ReplyPart, by_data: dict[bytes, Blob]) -> ReplyPart:
    if not isinstance(part, ImagePart) or part.data not in by_data:
        return part
    new = by_data[part.data]
    stem = part.filename.rsplit(".", 1)[0] or "image"
    return ImagePart(new.data, new.mime_type, f"{stem}.png")


def _png(image: Image.Image) -> Blob:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return Blob("image/png", out.getvalue())
