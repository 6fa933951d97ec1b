"""The image an editor link points at: the first image of its turn's answer, read from the store."""

from __future__ import annotations

from bot.editing.records import EditGrant, EditImage
from bot.ports import HistoryStore


async def turn_image(store: HistoryStore, grant: EditGrant) -> EditImage | None:
    """The first image the model answered with in the grant's turn (never a thought image), or
    None when the turn is gone or belongs to another conversation."""
    turn = await store.turn(grant.turn_id)
    if turn is None or turn.key != grant.key:
        return None
    for part in turn.model_content.get("parts") or ():
        inline = part.get("inline_data")
        if part.get("thought") or not inline or "blob" not in inline:
            continue
        found = await store.load_blobs([inline["blob"]])
        data = found.get(inline["blob"])
        return EditImage(data, str(inline.get("mime_type", "image/png"))) if data is not None else None
    return None
