"""The console's versions of the reply controls: /model, /variations, /redo and /continue."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from bot.entry.service import ConversationService
from bot.ports import ReplySink
from bot.text.flags import MAX_TAKES, MIN_TAKES
from bot.text.messages import CONSOLE_NO_IMAGE_YET as NO_IMAGE_YET
from bot.text.settings import SettingError
from bot.turns.request import VARIATIONS_TAKES, TurnKind, TurnRequest
from bot.vocabulary import ActionKind, Author, ConversationKey, Reply, SettingName, SettingScope

Command = Callable[[str], Awaitable[bool]]


class TakesSeen:
    """The takes one turn's replies showed, in order, so /continue n can name one."""

    def __init__(self) -> None:
        self.takes: list[int] = []

    def saw(self, reply: Reply) -> None:
        if reply.turn_id is not None and any(a.kind is ActionKind.CONTINUE for a in reply.actions):
            self.takes.append(reply.turn_id)


# Turns remembered for /continue: only the latest variations turn is ever used.
_KEEP = 4


class ConsoleControls:
    """Commands added to the console's table; each returns True (keep chatting)."""

    def __init__(
        self,
        service: ConversationService,
        author: Author,
        key: Callable[[], ConversationKey],
        sink: Callable[[], ReplySink],
        say: Callable[[str], None],
    ) -> None:
        self._service = service
        self._author = author
        self._key = key
        self._sink = sink
        self._say = say
        self._seen: list[TakesSeen] = []

    def commands(self) -> dict[str, Command]:
        return {
            "/model": self._model,
            "/variations": self._variations,
            "/continue": self._continue,
            "/redo": self._redo,
        }

    def watcher(self) -> Callable[[Reply], None]:
        """What one turn's sink calls with each reply it prints."""
        seen = TakesSeen()
        self._seen = [*self._seen[-_KEEP:], seen]
        return seen.saw

    async def _model(self, argument: str) -> bool:
        service = self._service
        if not argument:
            current = (await service.effective_settings(self._key())).model
            self._say(f"Model: {current}. Choices: {', '.join(service.allowed_models)}.")
            return True
        try:
            scope = SettingScope.for_thread(self._key())
            self._say(await service.change_setting(scope, SettingName.MODEL, argument))
        except SettingError as exc:
            self._say(f"! {exc.user_message}")
        return True

    async def _head(self) -> int | None:
        info = await self._service.store.conversation(self._key())
        if info is None or info.head_turn_id is None:
            self._say(NO_IMAGE_YET)
            return None
        return info.head_turn_id

    async def _run(
        self, kind: TurnKind, turn_id: int, *, takes: int = 1, image_size: str | None = None
    ) -> None:
        request = TurnRequest.on_turn(
            kind, self._key(), turn_id, self._author, uuid.uuid4().hex, takes=takes, image_size=image_size
        )
        await self._service.run(request, self._sink())

    async def _variations(self, argument: str) -> bool:
        takes = int(argument) if argument.isdigit() else VARIATIONS_TAKES if not argument else 0
        if not MIN_TAKES <= takes <= MAX_TAKES:
            self._say(f"! /variations takes 2, 3 or 4 (how many takes to make), not {argument}.")
            return True
        if (head := await self._head()) is not None:
            await self._run(TurnKind.VARIATIONS, head, takes=takes)
        return True

    async def _redo(self, argument: str) -> bool:
        if not argument:
            self._say("! Say which size: /redo 2K or /redo 4K.")
            return True
        if (head := await self._head()) is not None:
            await self._run(TurnKind.REDO_SIZE, head, image_size=argument)
        return True

    async def _continue(self, argument: str) -> bool:
        takes = next((seen.takes for seen in reversed(self._seen) if seen.takes), [])
        if not takes:
            self._say("! There are no takes to continue from; make some with /variations or --n 3.")
            return True
        if not argument.isdigit() or not 1 <= int(argument) <= len(takes):
            self._say(f"! Say which take: /continue 1 to /continue {len(takes)}.")
            return True
        await self._run(TurnKind.CONTINUE, takes[int(argument) - 1])
        return True
