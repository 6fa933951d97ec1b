"""Several takes in one Components V2 message: a container with a numbered media gallery (alt text on
every take), one row of Continue from 1..N, and the controls the takes share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

import discord

from adapters.discord import words
from adapters.discord.views import ControlKit
from bot.text import messages
from bot.vocabulary import ActionKind, ImagePart, Reply, TextPart

# Discord: at most 1024 characters of alt text (an attachment's or a gallery item's description),
# 10 items in a media gallery, 4000 characters of text display in one message.
MAX_ALT = 1024
MAX_GALLERY = 10
MAX_TEXT = 4000
# The controls that mean the same for every take (all share one prompt and one parent); Redo
# larger, Zoom, Pan and Edit region act on one image and come with the reply to a refined take.
_SHARED = (ActionKind.REGENERATE, ActionKind.VARIATIONS, ActionKind.ASPECT_RATIO, ActionKind.MODEL)


def alt_text(part: ImagePart, label: str | None = None) -> str:
    """An image's alt text: the prompt that made it, led by its take's label, within Discord's limit."""
    text = " ".join(part.alt.split()) or words.ALT_WITHOUT_PROMPT
    if label:
        text = f"{label}: {text}"
    return text if len(text) <= MAX_ALT else text[: MAX_ALT - 1] + "…"


def take_text(reply: Reply) -> str:
    """What a take says besides its image, without the label the gallery's numbers replace."""
    assert reply.take is not None
    label = messages.take_label(*reply.take)
    texts = []
    for part in reply.parts:
        if isinstance(part, TextPart):
            text = part.text.removeprefix(label).strip()
            if text:
                texts.append(text)
    return "\n\n".join(texts)


def gallery_images(takes: Sequence[Reply]) -> list[tuple[str, ImagePart, str]]:
    """(file name, image, alt text) for every take's images, numbered, at most 10."""
    found: list[tuple[str, ImagePart, str]] = []
    for reply in takes:
        assert reply.take is not None
        number, count = reply.take
        for index, image in enumerate(reply.images):
            suffix = PurePath(image.filename).suffix or ".png"
            name = f"take-{number}{f'-{index + 1}' if index else ''}{suffix}"
            found.append((name, image, alt_text(image, messages.take_label(number, count))))
    return found[:MAX_GALLERY]


def takes_layout(
    takes: Sequence[Reply], names: Sequence[tuple[str, str]], kit: ControlKit, *, refine: bool = False
) -> discord.ui.LayoutView:
    """The message: ``names`` are the (file name, alt text) of the uploaded images, in order."""
    container: discord.ui.Container[Any] = discord.ui.Container()
    said = [f"**{r.take[0]}.** {t}" for r in takes if r.take and (t := take_text(r))]
    if said:
        text = "\n".join(said)
        container.add_item(
            discord.ui.TextDisplay(text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…")
        )
    gallery: discord.ui.MediaGallery[Any] = discord.ui.MediaGallery()
    for name, alt in names:
        gallery.add_item(media=f"attachment://{name}", description=alt)
    container.add_item(gallery)
    kept = [r for r in takes if r.turn_id is not None and r.take is not None]
    for start in range(0, len(kept), 5):
        row: discord.ui.ActionRow[Any] = discord.ui.ActionRow()
        for reply in kept[start : start + 5]:
            assert reply.turn_id is not None and reply.take is not None
            row.add_item(kit.continue_(reply.turn_id, number=reply.take[0]))
        container.add_item(row)
    for row in _shared_rows(takes[0], kit, refine=refine):
        container.add_item(row)
    view = discord.ui.LayoutView(timeout=None)
    view.add_item(container)
    return view


def _shared_rows(first: Reply, kit: ControlKit, *, refine: bool) -> list[discord.ui.ActionRow[Any]]:
    """Regenerate, Variations (and Refine) in a row, the ratio select, the model's name."""
    buttons: discord.ui.ActionRow[Any] = discord.ui.ActionRow()
    rows = [buttons]
    for action in first.actions:
        if action.kind not in _SHARED:
            continue
        if action.kind is ActionKind.REGENERATE:
            buttons.add_item(kit.regenerate(action.turn_id))
        elif action.kind is ActionKind.VARIATIONS:
            buttons.add_item(kit.variations(action.turn_id))
        elif action.kind is ActionKind.ASPECT_RATIO and action.choices:
            rows.append(discord.ui.ActionRow(kit.aspect(action.turn_id, action.choices)))
        elif action.kind is ActionKind.MODEL and action.choices:
            rows.append(discord.ui.ActionRow(_model_label(action.choices[0], action.turn_id)))
    if refine and first.turn_id is not None:
        buttons.add_item(kit.refine(first.turn_id))
    return [r for r in rows if r.children]


def _model_label(model: str, turn_id: int) -> discord.ui.Button[Any]:
    return discord.ui.Button(
        label=model[:80], style=discord.ButtonStyle.secondary, custom_id=f"nb:model:{turn_id}", disabled=True
    )
