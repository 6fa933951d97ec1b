"""The one-question forms (modals): what should change in an image, what next, and a pin's name.

A form is only what Discord shows: its custom id says what its submission is for (ids only, never
text), and ``adapters.discord.desk`` answers every submission from it, so a form opened before a
restart, or on another process of the deployment, still works when it comes back."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import discord

from adapters.discord.commands import PROMPT_MAX
from bot.ids import parse_id

log = logging.getLogger(__name__)
# A form left open longer than this is forgotten (Discord lets a person keep it open for long).
FORM_TIMEOUT_S = 30 * 60.0
# Discord's limit on a custom id.
MAX_CUSTOM_ID = 100
_TEXT_INPUT = 4
# What a form is for: the message (its channel, then its id) or the stored turn it acts on.
_ON_MESSAGE = re.compile(r"nb:(?P<kind>edit|pin):(?P<channel>[^:]*):(?P<message>[^:]*)")
_ON_TURN = re.compile(r"nb:refine:(?P<turn>[^:]*)")
EDIT, PIN, REFINE = "edit", "pin", "refine"


class FormTarget(NamedTuple):
    """What a submitted form acts on: ``kind`` with a message (``channel_id``, ``message_id``) or
    a stored turn (``turn_id``)."""

    kind: str
    channel_id: int = 0
    message_id: int = 0
    turn_id: int = 0


def message_form_id(kind: str, channel_id: int, message_id: int) -> str:
    return f"nb:{kind}:{channel_id}:{message_id}"


def refine_form_id(turn_id: int | None) -> str:
    return f"nb:refine:{turn_id}"


def target_of(custom_id: str) -> FormTarget | None:
    """What a submitted form's custom id names, or None for one we did not write (a modified
    client, another version's form): ids that are not positive integers name nothing."""
    if (on_message := _ON_MESSAGE.fullmatch(custom_id)) is not None:
        channel_id, message_id = parse_id(on_message["channel"]), parse_id(on_message["message"])
        if channel_id is None or message_id is None:
            return None
        return FormTarget(on_message["kind"], channel_id=channel_id, message_id=message_id)
    if (on_turn := _ON_TURN.fullmatch(custom_id)) is not None:
        turn_id = parse_id(on_turn["turn"])
        return None if turn_id is None else FormTarget(REFINE, turn_id=turn_id)
    return None


def submitted_text(data: Mapping[str, Any] | None) -> str:
    """The first text input's value in a modal submission's data (in an action row or a label)."""

    def inputs(items: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
        for item in items:
            if not isinstance(item, Mapping):
                continue
            if item.get("type") == _TEXT_INPUT:
                yield item
            yield from inputs(item.get("components") or ())
            if isinstance(item.get("component"), Mapping):
                yield from inputs((item["component"],))

    for found in inputs((data or {}).get("components") or ()):
        value = found.get("value")
        if isinstance(value, str):
            return value.strip()
    return ""


class InstructionForm(discord.ui.Modal):
    """One paragraph of instruction (or, ``short``, one line of at most ``max_length``). discord.py
    keeps no copy of it: ``custom_id`` says what its submission is for."""

    def __init__(
        self,
        *,
        custom_id: str,
        title: str,
        label: str,
        placeholder: str,
        short: bool = False,
        max_length: int = PROMPT_MAX,
    ) -> None:
        if len(custom_id) > MAX_CUSTOM_ID:
            raise ValueError(f"a form's custom id is at most {MAX_CUSTOM_ID} characters")
        super().__init__(title=title, timeout=FORM_TIMEOUT_S, custom_id=custom_id)
        self.instruction: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=label,
            placeholder=placeholder,
            style=discord.TextStyle.short if short else discord.TextStyle.paragraph,
            min_length=1,
            max_length=max_length,
            custom_id="instruction",
        )
        self.add_item(self.instruction)
        # Stopped before it is sent, so discord.py does not hold it: the desk answers it.
        self.stop()
