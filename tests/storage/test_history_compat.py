"""History written by an earlier release still loads and is re-sent exactly (google-genai is pinned
to one minor version because its models reject unknown fields; this test guards upgrades)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from bot.gemini import GeminiEngine, GenerationRequest, Outcome, record_to_content
from storage.content import blob_refs, user_record
from tests.auxil.fake_gemini import FakeGemini

FIXTURE = Path(__file__).parents[1] / "data" / "history_v0_1_0.json"


def load_fixture() -> tuple[list[dict], dict[str, bytes], list[bytes]]:
    data = json.loads(FIXTURE.read_text())
    records = [r for t in data["turns"] for r in (t["user_content"], t["model_content"])]
    blobs = {h: base64.b64decode(b) for h, b in data["blobs"].items()}
    return records, blobs, [bytes.fromhex(s) for s in data["signatures_hex"]]


def test_previous_release_history_validates_with_this_sdk() -> None:
    records, blobs, signatures = load_fixture()
    contents = [record_to_content(r, blobs) for r in records]
    loaded = [p.thought_signature for c in contents for p in c.parts or () if p.thought_signature]
    assert loaded == signatures
    assert {h for r in records for h in blob_refs(r)} == set(blobs)


async def test_previous_release_history_is_resent_byte_for_byte(fake_gemini: FakeGemini) -> None:
    records, blobs, signatures = load_fixture()
    engine = GeminiEngine(api_key="k", model="gemini-2.5-flash-image", base_url=fake_gemini.base_url)
    try:
        result = await engine.generate(
            GenerationRequest(history=records, user=user_record("now in blue", []), blobs=blobs)
        )
    finally:
        await engine.aclose()
    assert result.outcome is Outcome.IMAGE
    request = fake_gemini.requests[0]
    assert request.signatures() == signatures
    sent_images = [i.data for i in request.all_images]
    assert sent_images == [blobs[h] for r in records for h in blob_refs(r)]
