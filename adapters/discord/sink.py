"""Posts neutral replies to Discord: images batched and fitted to the upload limit, text split."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import PurePath

import discord
from PIL import Image

from adapters.discord.gallery import alt_text, gallery_images, takes_layout
from adapters.discord.permissions import log_if_forbidden
from adapters.discord.views import DRAWING_ONLY, ControlKit, controls_for
from adapters.discord.words import POST_FAILED, UPLOAD_FAILED
from bot.vocabulary import ConversationKey, ImagePart, Reply, TextPart

log = logging.getLogger(__name__)

# Discord: at most 10 attachments and 2000 characters of content per message.
MAX_FILES = 10
MAX_CONTENT = 2000
# The upload limit covers the whole multipart request, so leave room for payload_json,
# boundaries and part headers.
UPLOAD_MARGIN = 64 * 1024
# Prompts may contain @everyone or role mentions; the bot must never ping anyone.
NO_MENTIONS = discord.AllowedMentions.none()
# How long a turn waits for the first typing indicator before going on without it.
TYPING_WAIT_S = 3.0
_JPEG_QUALITIES = (90, 80, 70, 60)


@dataclass
class Outgoing:
    """One Discord message to post: optional content above up to 10 images."""

    content: str | None = None
    images: list[ImagePart] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(p.data) for p in self.images)


def split_text(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Cut text into pieces of at most ``limit`` characters, at a paragraph, line or word break
    where there is one."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        # The last paragraph break in the second half of the window, else a line break, else a
        # space; a single endless word is cut hard.
        breaks = (window.rfind(sep) for sep in ("\n\n", "\n", " "))
        cut = next((b for b in breaks if b >= limit // 2), limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def plan_messages(parts: Sequence[TextPart | ImagePart], budget: int) -> list[Outgoing]:
    """Messages for a reply, in the model's order.

    Text starts a new message (content shows above attachments); images join the message
    before them while it has fewer than 10 and the total stays within ``budget`` bytes.
    """
    out: list[Outgoing] = []
    for part in parts:
        if isinstance(part, TextPart):
            out.extend(Outgoing(content=piece) for piece in split_text(part.text))
            continue
        last = out[-1] if out else None
        if last is None or len(last.images) >= MAX_FILES or last.size + len(part.data) > budget:
            last = Outgoing()
            out.append(last)
        last.images.append(part)
    return out


def fit_image(part: ImagePart, budget: int) -> ImagePart:
    """The image itself if it fits ``budget`` bytes, else a JPEG re-encoding (smaller quality,
    then smaller pixels) that does. CPU-heavy: call it off the event loop."""
    if len(part.data) <= budget:
        return part
    with Image.open(io.BytesIO(part.data)) as opened:
        opened.load()
        if opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info:
            # JPEG has no alpha: flatten onto white rather than letting transparent pixels go black.
            rgba = opened.convert("RGBA")
            picture = Image.new("RGB", rgba.size, (255, 255, 255))
            picture.paste(rgba, mask=rgba.getchannel("A"))
        else:
            picture = opened.convert("RGB")
    name = PurePath(part.filename).stem + ".jpg"
    data = part.data
    while True:
        for quality in _JPEG_QUALITIES:
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=quality, optimize=True)
            data = buffer.getvalue()
            if len(data) <= budget:
                return ImagePart(data=data, mime_type="image/jpeg", filename=name)
        if max(picture.size) <= 256:
            return ImagePart(data=data, mime_type="image/jpeg", filename=name)
        width, height = picture.size
        picture = picture.resize((max(1, width * 3 // 4), max(1, height * 3 // 4)), Image.Resampling.LANCZOS)


async def fit_images(parts: Sequence[TextPart | ImagePart], budget: int) -> list[TextPart | ImagePart]:
    """``fit_image`` for every image over the budget, in a worker thread."""
    if all(isinstance(p, TextPart) or len(p.data) <= budget for p in parts):
        return list(parts)
    return await asyncio.to_thread(
        lambda: [p if isinstance(p, TextPart) else fit_image(p, budget) for p in parts]
    )


def upload_limit(channel: object) -> int:
    """Bytes one message may upload here: the guild's limit (boost tier), or Discord's default."""
    guild = getattr(channel, "guild", None)
    limit = getattr(guild, "filesize_limit", None)
    return limit if isinstance(limit, int) and limit > 0 else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


class ChannelSink:
    """A ReplySink that posts into one Discord channel or thread.

    ``reply_to`` makes the first message a reply to the user's message (same channel only).
    ``private`` is an interaction's followup webhook: with it, errors and notices go to the
    person who clicked, ephemerally, instead of to the whole thread.
    """

    def __init__(
        self,
        *,
        channel: discord.abc.Messageable,
        key: ConversationKey,
        limit: int,
        reply_to: discord.Message | None = None,
        private: discord.Webhook | None = None,
        kit: ControlKit = DRAWING_ONLY,
    ) -> None:
        self._kit = kit
        self._channel = channel
        self._key = key
        self._budget = max(1024, limit - UPLOAD_MARGIN)
        self._reply_to = reply_to
        self._private = private
        self._takes: list[Reply] = []

    # Whether images get a Refine button (where the conversation goes on through its controls alone).
    refine = False

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        # discord.py's Typing re-sends the indicator every 5 s (it lapses after 10 s) until exit.
        async with AsyncExitStack() as stack:
            try:
                # discord.py retries a 5xx up to five times (about 25 s): the indicator is
                # cosmetic, so the turn waits for it only briefly.
                async with asyncio.timeout(TYPING_WAIT_S):
                    await stack.enter_async_context(self._channel.typing())
            except (discord.HTTPException, TimeoutError) as exc:
                status = getattr(exc, "status", None)
                log.warning("discord typing failed", extra={"status": status, "error": type(exc).__name__})
            yield

    async def send(self, reply: Reply) -> list[str]:
        if reply.is_error and self._private is not None:
            await self._tell_privately(reply.text)
            return []
        if reply.take is not None:
            # The takes of a variations turn arrive one after another: shown together once the
            # last one is here (the core still holds the conversation until then).
            self._takes.append(reply)
            number, count = reply.take
            if number < count:
                return []
            takes, self._takes = self._takes, []
            return await self._send_takes(takes)
        return await self._send_one(reply)

    async def _send_one(self, reply: Reply) -> list[str]:
        parts = await fit_images(reply.parts, self._budget)
        messages = plan_messages(parts, self._budget)
        view = controls_for(reply, self._kit, refine=self.refine)
        posted: list[discord.Message] = []
        for index, item in enumerate(messages):
            last = index == len(messages) - 1
            message = await self._post(
                item, view if last else None, self._reply_to if index == 0 else None, reply.turn_id
            )
            if message is None:
                break
            posted.append(message)
        if messages and not posted and self._private is not None:
            # Nothing reached the thread; the person who clicked can still be told.
            await self._tell_privately(POST_FAILED)
        return [str(m.id) for m in posted]

    async def _send_takes(self, takes: list[Reply]) -> list[str]:
        """One Components V2 message for all the takes; where the channel refuses those (HTTP 400),
        each take as its own message, as before."""
        images = gallery_images(takes)
        fitted = await fit_images(
            [image for _, image, _ in images], max(1024, self._budget // max(1, len(images)))
        )
        files = [
            discord.File(
                io.BytesIO(part.data),
                filename=f"{PurePath(name).stem}{PurePath(part.filename).suffix}",
                description=alt,
            )
            for (name, _, alt), part in zip(images, fitted, strict=True)
            if isinstance(part, ImagePart)
        ]
        layout = takes_layout(
            takes, [(f.filename, f.description or "") for f in files], self._kit, refine=self.refine
        )
        try:
            message = await self._send_layout(files, layout)
        except discord.HTTPException as exc:
            if exc.status != 400:
                return await self._takes_failed(exc, takes)
            log.info(
                "discord refused a components v2 message; posting takes one by one", extra={"code": exc.code}
            )
            posted: list[str] = []
            for reply in takes:
                posted = await self._send_one(reply)
            # Only the last take's messages can be remembered as showing its turn (earlier ones
            # went by before it); replying to an earlier take continues from the first one.
            return posted
        return [str(message.id)]

    async def _takes_failed(self, exc: discord.HTTPException, takes: list[Reply]) -> list[str]:
        if not log_if_forbidden(
            exc, doing="post", channel_id=self._channel_id(), in_thread=self._in_thread(), files=True
        ):
            log.warning(
                "discord post failed",
                extra={
                    "conversation": str(self._key),
                    "turn_id": takes[0].turn_id,
                    "status": exc.status,
                    "code": exc.code,
                },
            )
        await self._fallback(UPLOAD_FAILED)
        return []

    async def notice(self, text: str) -> None:
        if self._private is not None:
            await self._tell_privately(text)
            return
        await self._post(Outgoing(content=text), None, self._reply_to, None)

    async def _post(
        self,
        item: Outgoing,
        view: discord.ui.View | None,
        reply_to: discord.Message | None,
        turn_id: int | None,
    ) -> discord.Message | None:
        # A discord.File is consumed by sending it, so files are built per attempt.
        files = [
            discord.File(io.BytesIO(p.data), filename=p.filename, description=alt_text(p))
            for p in item.images
        ]
        try:
            return await self._send_message(content=item.content, files=files, view=view, reference=reply_to)
        except discord.HTTPException as exc:
            channel_id, in_thread = self._channel_id(), self._in_thread()
            if not log_if_forbidden(
                exc, doing="post", channel_id=channel_id, in_thread=in_thread, files=bool(files)
            ):
                log.warning(
                    "discord post failed",
                    extra={
                        "conversation": str(self._key),
                        "turn_id": turn_id,
                        "status": exc.status,
                        "code": exc.code,
                        "files": len(files),
                        "bytes": item.size,
                    },
                )
            if files:
                await self._fallback(UPLOAD_FAILED)
            return None

    async def _send_message(
        self,
        *,
        content: str | None,
        files: list[discord.File],
        view: discord.ui.View | None,
        reference: discord.Message | None,
    ) -> discord.Message:
        """Post one message where the conversation is (an interaction's sink posts followups)."""
        return await self._channel.send(
            content=content,
            files=files or None,
            view=view,
            allowed_mentions=NO_MENTIONS,
            reference=reference.to_reference(fail_if_not_exists=False) if reference else None,
            mention_author=False,
        )

    async def _send_layout(self, files: list[discord.File], layout: discord.ui.LayoutView) -> discord.Message:
        """Post one Components V2 message (its text is in its components) where the conversation is."""
        return await self._channel.send(files=files, view=layout, allowed_mentions=NO_MENTIONS)

    def _channel_id(self) -> int | None:
        return getattr(self._channel, "id", None)

    def _in_thread(self) -> bool:
        # An uncached thread is a PartialMessageable: a thread's key has its parent as channel.
        key = self._key
        return isinstance(self._channel, discord.Thread) or key.channel != key.thread

    async def _fallback(self, text: str) -> None:
        try:
            await self._send_message(content=text, files=[], view=None, reference=None)
        except discord.HTTPException as exc:
            log.warning("discord fallback post failed", extra={"status": exc.status, "code": exc.code})

    async def _tell_privately(self, text: str) -> None:
        assert self._private is not None
        try:
            await self._private.send(content=text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("discord followup failed", extra={"status": exc.status, "code": exc.code})
