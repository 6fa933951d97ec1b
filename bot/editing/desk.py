"""The core's side of the region editor (the ``RegionEdits`` port): a submitted edit runs as a
region-edit turn of its conversation, as if its person had posted it there (in order, counted,
one reply in the thread), and the page polls how it goes."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from bot.editing.originals import turn_image
from bot.editing.records import EditGrant, EditImage, EditProgress, EditState, RegionEdit
from bot.ports import ReplySink, Store
from bot.text import editor_words, messages
from bot.turns.request import TurnKind, TurnRequest
from bot.vocabulary import Author, ConversationKey, Position, Reply
from storage.records import LinkOutcome

log = logging.getLogger(__name__)

# A platform's sink for posting into one of its conversations' threads, its notices going to
# the given person (None: it cannot).
ThreadSinks = Callable[[ConversationKey, str], ReplySink | None]
RunTurn = Callable[[TurnRequest, ReplySink], Awaitable[object]]
# Progress kept for the pages polling this process (the oldest forgotten first); how an edit
# ended is also noted in the database, for pages whose polls reach another process.
KEEP_PROGRESS = 512


class RegionDesk:
    """Takes the editor's submitted edits; adapters say how to post into their threads
    (``serve``) once they run."""

    def __init__(self, store: Store, run: RunTurn) -> None:
        self._store = store
        self._run = run
        self._sinks: dict[str, ThreadSinks] = {}
        self._progress: OrderedDict[str, EditProgress] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def serve(self, platform: str, sinks: ThreadSinks) -> None:
        self._sinks[platform] = sinks

    async def original(self, grant: EditGrant) -> EditImage | None:
        return await turn_image(self._store, grant)

    async def submit(self, edit: RegionEdit) -> str:
        grant = edit.grant
        sinks = self._sinks.get(grant.key.platform)
        sink = sinks(grant.key, grant.person) if sinks is not None else None
        if sink is None:
            await self._note(grant.link_id, EditProgress(EditState.FAILED, messages.FAILED))
            return messages.EDIT_IN_THE_CONVERSATION
        request = TurnRequest(
            kind=TurnKind.REGION_EDIT,
            key=grant.key,
            request_id=f"edit:{grant.link_id}",
            author=Author(grant.person),
            position=Position.now(),
            text=edit.instruction,
            source_turn=grant.turn_id,
            mask_png=edit.mask_png,
        )
        await self._note(grant.link_id, EditProgress(EditState.PENDING, editor_words.EDIT_WAITING))
        task = asyncio.create_task(self._edit(request, _Watching(sink, grant.link_id, self._note)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return messages.EDIT_IN_THE_CONVERSATION

    async def progress(self, grant: EditGrant) -> EditProgress:
        known = self._progress.get(grant.link_id)
        if known is not None:  # this process took the edit: it hears how it ends first-hand
            return known
        ended = await self._store.link_outcome(grant.link_id)  # taken by another process?
        if ended is None:
            return EditProgress(EditState.PENDING, editor_words.EDIT_WAITING)
        image = None
        if ended.result_sha256 is not None:
            found = await self._store.load_blobs([ended.result_sha256])
            data = found.get(ended.result_sha256)
            image = EditImage(data, ended.result_mime or "image/png") if data is not None else None
        return EditProgress(EditState(ended.outcome), ended.message, image)

    async def _edit(self, request: TurnRequest, sink: ReplySink) -> None:
        try:
            await self._run(request, sink)
        except Exception:  # the pipeline answers every failure itself; this is a bug
            log.exception("region edit crashed", extra={"conversation": str(request.key)})

    async def _note(self, link_id: str, progress: EditProgress) -> None:
        self._progress[link_id] = progress
        self._progress.move_to_end(link_id)
        while len(self._progress) > KEEP_PROGRESS:
            self._progress.popitem(last=False)
        if progress.state is EditState.PENDING:
            return
        image = progress.image
        digest = hashlib.sha256(image.data).hexdigest() if image is not None else None
        outcome = LinkOutcome(
            progress.state.value, progress.message, digest, image.mime_type if image else None
        )
        try:
            await self._store.note_link_outcome(link_id, outcome)
        except Exception:  # the page polling this process still sees it; the thread has the reply
            log.warning("edit outcome not noted", extra={"link": link_id[:8]}, exc_info=True)


class _Watching:
    """The thread's sink, telling the page what the turn posted: its image, or its one sentence."""

    def __init__(
        self, sink: ReplySink, link_id: str, note: Callable[[str, EditProgress], Awaitable[None]]
    ) -> None:
        self._sink = sink
        self._link_id = link_id
        self._note = note

    def working(self) -> AbstractAsyncContextManager[None]:
        return self._sink.working()

    async def send(self, reply: Reply) -> Sequence[str]:
        posted = await self._sink.send(reply)
        if reply.images:
            image = reply.images[0]
            done = EditProgress(
                EditState.DONE, editor_words.EDIT_READY, EditImage(image.data, image.mime_type)
            )
            await self._note(self._link_id, done)
        elif reply.is_error:
            await self._note(self._link_id, EditProgress(EditState.FAILED, reply.text))
        return posted

    async def notice(self, text: str) -> None:
        await self._sink.notice(text)
