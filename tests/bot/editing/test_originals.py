"""The image an editor link points at comes from its turn, never from another conversation's."""

from __future__ import annotations

from pathlib import Path

from bot.editing.originals import turn_image
from bot.editing.records import EditGrant
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.storage.store_contract import make_blob, make_key, model_record, user_content


async def test_the_first_answered_image_of_the_turn_and_only_in_its_conversation(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bot.sqlite3")
    await store.open()
    try:
        first, second = make_blob("first"), make_blob("second", mime_type="image/jpeg")
        key = make_key()
        turn = await store.append_turn(
            NewTurn(
                key,
                None,
                user_content("draw"),
                model_record("here", [first, second]),
                "m",
                "U1",
                blobs=(first, second),
            ),
            expected_head=None,
        )
        grant = EditGrant(key, turn.id, "U1", 0.0, "link")
        image = await turn_image(store, grant)
        assert image is not None and (image.data, image.mime_type) == (first.data, "image/png")
        assert await turn_image(store, EditGrant(make_key("other"), turn.id, "U1", 0.0, "link")) is None
        assert await turn_image(store, EditGrant(key, turn.id + 1, "U1", 0.0, "link")) is None
    finally:
        await store.close()
