"""An observer that sees nothing: the default of parts built without one (tests, tools)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.observing.watch import Watch, following
from bot.vocabulary import ModelCall


class Nobody:
    """Follows turns (so code inside one finds its turn) and counts nothing."""

    @contextmanager
    def turn(self, platform: str, kind: str, conversation: str = "") -> Iterator[Watch]:
        with following(Watch(self, platform, kind)) as watch:
            yield watch

    def model_called(self, call: ModelCall) -> None:
        return None

    def queue_waited(self, seconds: float) -> None:
        return None

    def store_round_trip(self, operation: str, seconds: float) -> None:
        return None

    def download_failed(self, platform: str, reason: str) -> None:
        return None

    def downloaded(self, platform: str, seconds: float, failure: str | None) -> None:
        return None

    def posted(self, platform: str, what: str, seconds: float, failed: bool) -> None:
        return None

    def platform_error(self, platform: str, method: str, status: str) -> None:
        return None

    def sample(self, gauge: str, read: Callable[[], float]) -> None:
        return None


NOBODY = Nobody()
