"""The fault suite's database check finds each kind of damage a crash could leave, so a clean
result after a kill means something."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from bot.vocabulary import ConversationKey, Usage
from storage.content import Blob, image_part, user_record
from storage.protocol import NewTurn
from storage.sqlite_store import SqliteStore
from tests.auxil.image_factory import png
from tests.faults.harness import database_problems, read_turns

KEY = ConversationKey("slack", "T0FAKE", "C0FAULTS", "1760000001.000001")


@pytest.fixture
async def healthy(tmp_path: Path) -> Path:
    """A database with two whole turns, the second continuing the first, each with an image."""
    path = tmp_path / "healthy.sqlite3"
    store = SqliteStore(path)
    await store.open()
    parent = None
    for n in range(2):
        blob = Blob("image/png", png(8 + n, 8))
        model = {"role": "model", "parts": [{"text": f"image {n}"}, image_part(blob.sha256, "image/png")]}
        turn = await store.append_turn(
            NewTurn(
                key=KEY,
                parent_id=parent,
                user_content=user_record(f"prompt {n}", []),
                model_content=model,
                model="m",
                author_id="U1",
                usage=Usage(images_generated=1),
                blobs=(blob,),
            ),
            expected_head=parent,
        )
        parent = turn.id
    await store.close()
    return path


DAMAGE = {
    "image bytes missing": ("DELETE FROM blobs WHERE rowid = 1", "references missing image"),
    "image bytes damaged": ("UPDATE blobs SET data = x'00' WHERE rowid = 1", "is damaged"),
    "model answer without parts": (
        """UPDATE turns SET model_content = '{"role": "model", "parts": []}' WHERE id = 2""",
        "turn 2 has no model parts",
    ),
    "head on a missing turn": (
        "UPDATE conversations SET head_turn_id = 99",
        "head 99 is not one of its turns",
    ),
    "usage row missing": ("DELETE FROM usage_log WHERE turn_id = 1", "turn 1 has no usage row"),
    "image not linked to its turn": (
        "DELETE FROM turn_blobs WHERE turn_id = 2",
        "turn 2 does not link image",
    ),
    "parent missing": ("DELETE FROM turns WHERE id = 1", "foreign key violation"),
}


def test_a_healthy_database_has_no_problems(healthy: Path) -> None:
    assert database_problems(healthy) == []
    assert [(t.prompt, t.parent_id) for t in read_turns(healthy)] == [("prompt 0", None), ("prompt 1", 1)]


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_each_kind_of_damage_is_found(healthy: Path, tmp_path: Path, damage: str) -> None:
    statement, expected = DAMAGE[damage]
    path = tmp_path / "damaged.sqlite3"
    shutil.copy(healthy, path)
    with sqlite3.connect(path) as conn:  # foreign keys are off by default: damage goes through
        conn.execute(statement)
    problems = database_problems(path)
    assert any(expected in p for p in problems), problems
