"""Which stored turns are re-sent to Gemini: a bounded number of images, whole turns only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.content import ContentRecord, image_count
from storage.protocol import StoredTurn


@dataclass(frozen=True, slots=True)
class ContextWindow:
    """The history to send, and images to re-seed into the new user turn when no turn fits."""

    history: tuple[ContentRecord, ...]
    seed_images: tuple[tuple[str, str], ...]  # (sha256, mime_type) of images to re-attach
    dropped_turns: int


def select_context(turns: Sequence[StoredTurn], max_images: int | None) -> ContextWindow:
    """Keep the newest whole turns whose images fit in ``max_images`` (None = keep everything).

    Turns are dropped whole (user and model content together) so every model part that is
    sent keeps its thought signature next to the content it belongs to; Gemini rejects a model
    turn whose signed parts were altered. When even the newest turn holds more images than the
    budget, the thread is re-seeded: its latest visible model images go into the new user turn
    as ordinary user images, which need no signature.
    """
    if max_images is None or not turns:
        return ContextWindow(_flatten(turns), (), 0)
    kept: list[StoredTurn] = []
    used = 0
    for turn in reversed(turns):
        cost = image_count(turn.user_content) + image_count(turn.model_content)
        if used + cost > max_images:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    dropped = len(turns) - len(kept)
    seeds: tuple[tuple[str, str], ...] = ()
    if not kept and max_images > 0:
        seeds = _latest_visible_images(turns[-1].model_content, max_images)
    return ContextWindow(_flatten(kept), seeds, dropped)


def model_window(
    turns: Sequence[StoredTurn], model: str | None, max_images: int | None, max_seed: int
) -> ContextWindow:
    """The window for a turn drawn by ``model``: only the trailing run of turns that model made.

    Thought signatures are only valid for the model that made them, so the first turn after a
    switch of model sends none of the old model's turns and re-seeds from the latest visible
    images instead; later turns send the run that begins with that seeded turn.
    """
    if model is None:
        return select_context(turns, max_images)
    start = len(turns)
    while start > 0 and turns[start - 1].model == model:
        start -= 1
    if start == 0 or start < len(turns):
        window = select_context(turns[start:], max_images)
        return ContextWindow(window.history, window.seed_images, window.dropped_turns + start)
    limit = max_seed if max_images is None else min(max_images, max_seed)
    seeds = _latest_visible_images(turns[-1].model_content, limit) if limit > 0 else ()
    return ContextWindow((), seeds, len(turns))


def _flatten(turns: Sequence[StoredTurn]) -> tuple[ContentRecord, ...]:
    records: list[ContentRecord] = []
    for turn in turns:
        records.append(turn.user_content)
        records.append(turn.model_content)
    return tuple(records)


def _latest_visible_images(record: ContentRecord, limit: int) -> tuple[tuple[str, str], ...]:
    images = [
        (part["inline_data"]["blob"], part["inline_data"]["mime_type"])
        for part in record.get("parts") or ()
        if part.get("inline_data") and "blob" in part["inline_data"] and not part.get("thought")
    ]
    return tuple(images[-limit:])
