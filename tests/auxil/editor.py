"""The region editor served as a deployment serves it (HealthServer on a free port with the
editor's routes), links from a real SQLite store, and a fake ``RegionEdits`` port that records
what reached it; and Debian's headless Chromium for the tests that drive the page."""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bot.editing.records import EditGrant, EditImage, EditProgress, EditState, RegionEdit
from bot.editing.tokens import EditLinks
from bot.editing.web import EditorSite
from bot.health import Health, HealthServer
from bot.images.budget import ImageBudget
from bot.vocabulary import ConversationKey
from storage.sqlite_store import SqliteStore

KEY = ConversationKey("discord", "guild-1", "chan-1", "thread-1")
WHERE = "in the thread “bicycle at dawn”"


def picture(width: int = 640, height: int = 480) -> bytes:
    """A small scene to paint on: sky, sun, hills, a house."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line((0, y, width, y), fill=(90 + y * 100 // height, 150 + y * 60 // height, 235))
    draw.ellipse((460, 50, 560, 150), fill=(255, 210, 80))
    draw.polygon([(0, 360), (220, 280), (420, 350), (640, 300), (640, 480), (0, 480)], fill=(70, 140, 70))
    draw.rectangle((240, 300, 360, 400), fill=(200, 80, 60))
    draw.polygon([(230, 300), (300, 250), (370, 300)], fill=(120, 50, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@dataclass
class FakeEdits:
    """The port the wiring slice connects to the turn pipeline: records every submitted edit."""

    image: bytes = field(default_factory=picture)
    mime_type: str = "image/png"
    submitted: list[RegionEdit] = field(default_factory=list)
    results: dict[str, bytes] = field(default_factory=dict)

    async def original(self, grant: EditGrant) -> EditImage | None:
        return EditImage(self.image, self.mime_type) if grant.key == KEY else None

    async def submit(self, edit: RegionEdit) -> str:
        self.submitted.append(edit)
        return WHERE

    async def progress(self, grant: EditGrant) -> EditProgress:
        done = self.results.get(grant.link_id)
        if done is None:
            return EditProgress(EditState.PENDING, "Working on it.")
        return EditProgress(EditState.DONE, "Here it is.", EditImage(done, "image/png"))


@dataclass
class Editor:
    base_url: str
    links: EditLinks
    edits: FakeEdits
    store: SqliteStore

    async def link(self, turn_id: int = 7, person: str = "U1", key: ConversationKey = KEY) -> str:
        return f"{self.base_url}/edit/{await self.links.issue(key, turn_id, person)}"


@asynccontextmanager
async def serving_editor(tmp_path: Path, decodes: ImageBudget | None = None) -> AsyncIterator[Editor]:
    """``decodes``: the process's decode budget the masks are checked within."""
    store = SqliteStore(tmp_path / "bot.sqlite3")
    await store.open()
    links, edits = EditLinks(store), FakeEdits()
    server = HealthServer(Health(store, []), 0, routes=[EditorSite(links, edits, decodes=decodes).install])
    try:
        await server.start()
        yield Editor(f"http://127.0.0.1:{server.port}", links, edits, store)
    finally:
        await server.close()
        await store.close()


def chromium_paths() -> tuple[str, str]:
    """Debian's chromium and chromium-driver; a test that needs them fails (never skips) without."""
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(
            "headless Chromium is needed: apt-get install -y chromium chromium-driver "
            "(the README's test command installs them)"
        )
    return browser, driver
