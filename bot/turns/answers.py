"""How a turn's answer is shown: each take with its label and controls, or what it says instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.gemini import GenerationResult
from bot.gemini.capabilities import ModelCapabilities
from bot.text import messages
from bot.text.reply_actions import image_actions
from bot.turns.plan import TurnPlan
from bot.vocabulary import Action, ActionKind, ImagePart, Reply, ReplyPart, TextPart
from storage.content import ContentRecord
from storage.protocol import StoredTurn


@dataclass(frozen=True, slots=True)
class Answered:
    """A turn that produced a stored answer and was posted: ``reply`` shows ``turn_id`` (the
    head); ``more`` are posted after it (the other takes of a variations turn, each showing its
    own turn, and a sentence about takes that did not come back)."""

    reply: Reply
    # None: made and paid for, but the database stayed away too long to store it.
    turn_id: int | None
    more: tuple[Reply, ...] = ()


@dataclass(frozen=True, slots=True)
class TakenOver:
    """Another process announced the turn as cut off (its person was asked to send it again) and
    the conversation has moved on since: nothing is posted."""


@dataclass(frozen=True, slots=True)
class Failed:
    """Gemini did not give a usable answer; ``message`` says why in one sentence."""

    message: str


def answer(
    plan: TurnPlan,
    caps: ModelCapabilities,
    drawn_at: str | None,
    stored: list[StoredTurn],
    good: list[GenerationResult],
    results: list[GenerationResult],
    *,
    late: bool,
    notes: Sequence[str] = (),
    editable: bool = False,
) -> Answered:
    takes = len(stored) > 1
    replies = []
    for number, (turn, result) in enumerate(zip(stored, good, strict=True), start=1):
        parts = described(result.parts, prompt_of(turn.user_content))
        if takes:
            parts = labelled(messages.take_label(number, len(stored)), parts)
        if number == 1 and late and plan.from_head:
            parts = (TextPart(messages.LATE_ARRIVAL), *parts)
        if number == 1 and notes:  # what a switch of model reset, said with the answer
            parts = (TextPart(" ".join(notes)), *parts)
        actions = _actions(turn.id, result, caps, drawn_at, take=takes, editable=editable)
        take = (number, len(stored)) if takes else None
        replies.append(Reply(parts=parts, turn_id=turn.id, actions=actions, take=take))
    missing = [r for r in results if not (r.ok and r.model_content is not None)]
    if missing:
        reason = missing[0].message or messages.FAILED
        replies.append(Reply.note(messages.takes_missing(len(missing), len(results), reason)))
    return Answered(replies[0], stored[0].id, tuple(replies[1:]))


def unsaved(
    plan: TurnPlan, good: list[GenerationResult], results: list[GenerationResult], notes: Sequence[str]
) -> Answered:
    """The takes as made, not stored: no controls (they would point at no turn), led by a
    sentence saying the conversation will not build on them."""
    takes = len(good) > 1
    replies = []
    for number, result in enumerate(good, start=1):
        parts = described(result.parts, plan.text)
        parts = labelled(messages.take_label(number, len(good)), parts) if takes else parts
        if number == 1:
            parts = (TextPart(" ".join([*notes, messages.NOT_SAVED])), *parts)
        replies.append(Reply(parts=parts))
    missing = len(results) - len(good)
    if missing:
        reason = next((r.message for r in results if r.message), None) or messages.FAILED
        replies.append(Reply.note(messages.takes_missing(missing, len(results), reason)))
    return Answered(replies[0], None, tuple(replies[1:]))


def _actions(
    turn_id: int,
    result: GenerationResult,
    caps: ModelCapabilities,
    drawn_at: str | None,
    *,
    take: bool,
    editable: bool = False,
) -> tuple[Action, ...]:
    if not any(isinstance(p, ImagePart) for p in result.parts):
        return (Action(ActionKind.FORGET, turn_id),)
    return image_actions(turn_id, caps, drawn_at, take=take, editable=editable)


def after_all(answered: Answered) -> Answered:
    """The answer of a turn announced as cut off, led by the sentence that takes that back."""
    first = answered.reply
    return replace(answered, reply=replace(first, parts=(TextPart(messages.AFTER_ALL), *first.parts)))


def prompt_of(user_content: ContentRecord) -> str:
    """The text a stored turn sent (its prompt, or the instruction a control wrote)."""
    texts = (p.get("text") for p in user_content.get("parts") or ())
    return " ".join(t.strip() for t in texts if isinstance(t, str) and t.strip())


def described(parts: tuple[ReplyPart, ...], prompt: str) -> tuple[ReplyPart, ...]:
    """The parts with each image's alt text set to the prompt that made it."""
    return tuple(replace(p, alt=prompt) if isinstance(p, ImagePart) else p for p in parts)


def labelled(label: str, parts: tuple[ReplyPart, ...]) -> tuple[ReplyPart, ...]:
    """A take's parts led by its label, in the same paragraph as the model's first text (one
    message on platforms that start a message at each text part)."""
    if parts and isinstance(parts[0], TextPart):
        return (TextPart(f"{label}\n\n{parts[0].text}"), *parts[1:])
    return (TextPart(label), *parts)
