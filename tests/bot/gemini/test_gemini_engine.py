"""GeminiEngine driven through the real google-genai SDK against the fake Gemini server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from bot import gemini as gemini_module
from bot.gemini import (
    GeminiEngine,
    GenerationRequest,
    GenerationResult,
    MissingBlobError,
    Outcome,
    content_to_record,
    record_to_content,
)
from bot.gemini.interactions import InteractionsEngine
from bot.gemini.steps import without_interaction
from bot.vocabulary import ImagePart, ResponseMode, TextPart
from storage.content import Blob, blob_hash, user_record
from tests.auxil import fake_gemini as fg
from tests.auxil.engines import both_engines, interactions  # noqa: F401  (engine_api: each engine)
from tests.auxil.fake_gemini import FakeGemini, InlineImage

FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
KEY = "test-key-123"
ROOT = Path(__file__).resolve().parents[3]


class Sleeps:
    """An injected ``sleep`` that records delays and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def fake():
    async with FakeGemini(image_side=64) as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_engine(fake: FakeGemini, sleeps: Sleeps, engine_api: str):
    """Engines of this run's GEMINI_API (each in turn: the calls concern the model)."""
    engines: list[GeminiEngine] = []
    kind = InteractionsEngine if interactions(engine_api) else GeminiEngine

    def make(model: str = FLASH, **kwargs) -> GeminiEngine:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("base_url", fake.base_url)
        engine = kind(model=model, **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.aclose()


def png_bytes(colour=(10, 20, 30), size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


def ask(
    text: str = "a lighthouse at dusk",
    *,
    history=(),
    blobs=None,
    images=(),
    aspect_ratio: str | None = "1:1",
    image_size: str | None = None,
    mode: ResponseMode = ResponseMode.TEXT_AND_IMAGE,
) -> GenerationRequest:
    blobs = dict(blobs or {})
    refs = []
    for data, mime in images:
        blobs[blob_hash(data)] = data
        refs.append((blob_hash(data), mime))
    return GenerationRequest(
        history=list(history),
        user=user_record(text, refs),
        blobs=blobs,
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        response_mode=mode,
    )


def images_of(result: GenerationResult) -> list[ImagePart]:
    return [p for p in result.parts if isinstance(p, ImagePart)]


# ---------------------------------------------------------------------------------------------
# The request


async def test_request_goes_to_v1beta_with_key_and_config(fake, make_engine, engine_api):
    engine = make_engine()
    result = await engine.generate(ask(aspect_ratio="16:9", image_size="2K"))

    assert result.outcome is Outcome.IMAGE and result.ok and result.message is None
    assert result.attempts == 1
    rec = fake.requests[0]
    method = "interactions" if interactions(engine_api) else "generateContent"
    assert rec.version == "v1beta" and rec.method == method and rec.model == FLASH
    assert rec.api_key == KEY
    assert rec.aspect_ratio == "16:9"
    assert rec.image_size is None  # flash image takes no size
    assert rec.response_modalities == ["TEXT", "IMAGE"]
    assert rec.contents == [{"role": "user", "parts": [{"text": "a lighthouse at dusk"}]}]
    (img,) = images_of(result)
    assert Image.open(io.BytesIO(img.data)).size == (64, 36)
    assert img.data == rec.response_images[0].data


async def test_image_size_only_for_models_with_sizes(fake, make_engine):
    result = await make_engine(PRO).generate(ask(aspect_ratio="3:4", image_size="2K"))
    assert result.outcome is Outcome.IMAGE
    assert fake.requests[0].model == PRO
    assert fake.requests[0].image_config == {"aspectRatio": "3:4", "imageSize": "2K"}


async def test_image_only_mode_and_no_image_config_when_unset(fake, make_engine):
    engine = make_engine()
    await engine.generate(ask(aspect_ratio=None, mode=ResponseMode.IMAGE_ONLY))
    rec = fake.requests[0]
    assert rec.response_modalities == ["IMAGE"]
    assert "imageConfig" not in rec.generation_config


async def test_attachments_are_sent_inline_with_mime_and_identical_bytes(fake, make_engine):
    png, jpeg = png_bytes(), jpeg_bytes()
    await make_engine().generate(ask("combine these", images=[(png, "image/png"), (jpeg, "image/jpeg")]))
    rec = fake.requests[0]
    assert rec.images == [[InlineImage("image/png", png), InlineImage("image/jpeg", jpeg)]]
    parts = rec.contents[0]["parts"]
    assert "inlineData" in parts[0] and parts[-1] == {"text": "combine these"}


async def test_missing_blob_raises_before_any_request(fake, make_engine):
    request = GenerationRequest(
        history=[],
        user=user_record("edit", [("0" * 64, "image/png")]),
        blobs={},
        aspect_ratio=None,
        image_size=None,
        response_mode=ResponseMode.TEXT_AND_IMAGE,
    )
    with pytest.raises(MissingBlobError):
        await make_engine().generate(request)
    assert fake.requests == []


# ---------------------------------------------------------------------------------------------
# The answer as records, blobs and parts


async def test_thought_parts_kept_in_record_but_not_shown(fake, make_engine):
    fake.enqueue(fg.image(text="Here it is.", thought_image=True))
    result = await make_engine().generate(ask())

    assert [type(p) for p in result.parts] == [TextPart, ImagePart]
    assert result.parts[0] == TextPart("Here it is.")
    assert images_of(result)[0].filename == "image-1.png"
    record = result.model_content
    assert record is not None and record["role"] == "model"
    thought_text, thought_image, text, image = record["parts"]
    assert thought_text["thought"] is True and "text" in thought_text
    assert thought_image["thought"] is True
    assert set(thought_image["inline_data"]) == {"mime_type", "blob"}
    assert text["text"] == "Here it is." and "thought_signature" in text
    assert "thought_signature" in image and "data" not in image["inline_data"]
    # Both images, thought one included, come back as blobs; only the visible one is shown.
    sent = fake.requests[0].response_images
    assert [b.data for b in result.new_blobs] == [i.data for i in sent]
    assert [image["inline_data"]["blob"], thought_image["inline_data"]["blob"]] == [
        blob_hash(sent[1].data),
        blob_hash(sent[0].data),
    ]
    assert result.usage.images_generated == 1


async def test_storyboard_keeps_the_models_order(fake, make_engine):
    fake.enqueue(fg.storyboard(steps=3))
    result = await make_engine().generate(ask())
    kinds = [type(p) for p in result.parts]
    assert kinds == [TextPart, ImagePart] * 3
    assert [p.text for p in result.parts if isinstance(p, TextPart)] == [
        "Step 1.",
        "Step 2.",
        "Step 3.",
    ]
    assert [p.filename for p in images_of(result)] == ["image-1.png", "image-2.png", "image-3.png"]
    assert len({p.data for p in images_of(result)}) == 3
    assert result.usage.images_generated == 3


async def test_text_only_answer(fake, make_engine):
    fake.enqueue(fg.text_only("A haiku instead."))
    result = await make_engine().generate(ask())
    assert result.outcome is Outcome.TEXT_ONLY and result.ok
    assert result.message is None
    assert result.parts == (TextPart("A haiku instead."),)
    assert result.model_content is not None and result.new_blobs == ()


async def test_multi_turn_resends_signatures_and_images_byte_identical(fake, make_engine):
    engine = make_engine()
    first_request = ask("a red fox")
    first = await engine.generate(first_request)
    assert first.outcome is Outcome.IMAGE

    # Simulate persistence and a restart: records through JSON, blobs by hash.
    stored = json.loads(json.dumps([first_request.user, first.model_content]))
    blobs = {b.sha256: b.data for b in first.new_blobs}
    second = await engine.generate(ask("now in winter", history=stored, blobs=blobs))
    assert second.outcome is Outcome.IMAGE

    sent_back, received = fake.requests[1], fake.requests[0]
    assert len(received.response_signatures) == 2
    assert sent_back.signatures() == received.response_signatures
    assert [i.data for i in sent_back.images[1]] == [i.data for i in received.response_images]
    assert [c["role"] for c in sent_back.contents] == ["user", "model", "user"]
    # The thought part went back too, flagged as a thought.
    assert sent_back.contents[1]["parts"][0]["thought"] is True
    # The new image differs from the first one (colour comes from the prompt).
    assert images_of(second)[0].data != images_of(first)[0].data


async def test_records_round_trip_through_json_exactly(fake, make_engine, engine_api):
    fake.enqueue(fg.image(thought_image=True))
    result = await make_engine().generate(ask())
    record = result.model_content
    if interactions(engine_api):
        # The record names the interaction that made it, beside the content (never sent).
        assert record["interaction"] == {"id": fake.requests[0].interaction["id"], "model": FLASH}
        record = without_interaction(record)
    text = json.dumps(record)
    assert "data" not in text.replace("inline_data", "")  # no image bytes inside the record
    loaded = json.loads(text)
    assert loaded == record

    blobs = {b.sha256: b.data for b in result.new_blobs}
    content = record_to_content(loaded, blobs)
    again, again_blobs = content_to_record(content)
    assert again == record
    assert [b.data for b in again_blobs] == [b.data for b in result.new_blobs]
    signatures = [p.thought_signature for p in content.parts if p.thought_signature]
    assert signatures == fake.requests[0].response_signatures


def test_content_to_record_keeps_signature_text_and_never_base64s_images():
    signature = bytes(range(256))
    image = os.urandom(2048)
    content = gemini_module.types.Content(
        role="model",
        parts=[
            gemini_module.types.Part(text="hi", thought_signature=signature),
            gemini_module.types.Part(
                inline_data=gemini_module.types.Blob(mime_type="image/jpeg", data=image),
                thought_signature=signature,
            ),
        ],
    )
    record, blobs = content_to_record(content)
    assert record["parts"][1]["inline_data"] == {
        "mime_type": "image/jpeg",
        "blob": blob_hash(image),
    }
    assert blobs == [Blob("image/jpeg", image)]
    back = record_to_content(json.loads(json.dumps(record)), {blob_hash(image): image})
    assert back == content
    assert back.parts[0].thought_signature == signature


# ---------------------------------------------------------------------------------------------
# Outcomes of a 200 answer

BLOCKED = [
    ("IMAGE_SAFETY", Outcome.IMAGE_BLOCKED, gemini_module.MSG_IMAGE_SAFETY),
    ("SAFETY", Outcome.IMAGE_BLOCKED, gemini_module.MSG_IMAGE_SAFETY),
    ("IMAGE_PROHIBITED_CONTENT", Outcome.IMAGE_BLOCKED, gemini_module.MSG_IMAGE_PROHIBITED),
    ("PROHIBITED_CONTENT", Outcome.IMAGE_BLOCKED, gemini_module.MSG_IMAGE_PROHIBITED),
    ("BLOCKLIST", Outcome.IMAGE_BLOCKED, gemini_module.MSG_BLOCKLIST),
    ("SPII", Outcome.IMAGE_BLOCKED, gemini_module.MSG_SPII),
    ("IMAGE_RECITATION", Outcome.IMAGE_BLOCKED, gemini_module.MSG_RECITATION),
    ("RECITATION", Outcome.IMAGE_BLOCKED, gemini_module.MSG_RECITATION),
    ("NO_IMAGE", Outcome.NO_IMAGE, gemini_module.MSG_NO_IMAGE),
    (
        "IMAGE_OTHER",
        Outcome.FAILED,
        "Gemini stopped without an image (IMAGE_OTHER); try rephrasing.",
    ),
    ("OTHER", Outcome.FAILED, "Gemini stopped without an image (OTHER); try rephrasing."),
    (
        "MALFORMED_FUNCTION_CALL",
        Outcome.FAILED,
        "Gemini stopped without an image (MALFORMED_FUNCTION_CALL); try rephrasing.",
    ),
    (
        "SOMETHING_NEW",
        Outcome.FAILED,
        "Gemini stopped without an image (SOMETHING_NEW); try rephrasing.",
    ),
]


def test_message_wording():
    assert gemini_module.MSG_IMAGE_SAFETY == (
        "Gemini withheld the image for safety reasons; try rephrasing the prompt."
    )
    assert "too close to existing copyrighted work" in gemini_module.MSG_RECITATION
    assert gemini_module.MSG_IMAGE_PROHIBITED != gemini_module.MSG_IMAGE_SAFETY


@pytest.mark.filterwarnings("ignore:SOMETHING_NEW is not a valid FinishReason")
@pytest.mark.parametrize(("reason", "outcome", "message"), BLOCKED)
async def test_finish_reasons(fake, make_engine, reason, outcome, message):
    fake.enqueue(fg.finish(reason, text="I can't."))
    result = await make_engine().generate(ask())
    assert (result.outcome, result.message) == (outcome, message)
    assert result.finish_reason == reason
    assert not result.ok and result.model_content is None and result.parts == ()
    assert result.attempts == 1 and len(fake.requests) == 1


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("SAFETY", "Gemini blocked this prompt for safety reasons; try rephrasing it."),
        (
            "PROHIBITED_CONTENT",
            "Gemini blocked this prompt as prohibited content; try a different request.",
        ),
        (
            "BLOCKLIST",
            "Gemini blocked this prompt because it contains blocked terms; try rephrasing it.",
        ),
        ("OTHER", "Gemini blocked this prompt; try rephrasing it."),
    ],
)
async def test_prompt_blocked(fake, make_engine, reason, message):
    fake.enqueue(fg.prompt_blocked(reason))
    result = await make_engine().generate(ask())
    assert (result.outcome, result.message) == (Outcome.PROMPT_BLOCKED, message)
    assert result.model_content is None
    assert result.usage.prompt_tokens > 0


async def test_stop_with_nothing_visible_is_no_image(fake, make_engine):
    fake.enqueue(fg.image(text=None, n_images=0))  # only the thought part
    result = await make_engine().generate(ask())
    assert (result.outcome, result.message) == (Outcome.NO_IMAGE, gemini_module.MSG_NO_IMAGE)
    assert result.model_content is None


async def test_max_tokens_with_image_is_still_an_image(fake, make_engine):
    fake.enqueue(fg.image(finish_reason="MAX_TOKENS"))
    result = await make_engine().generate(ask())
    assert result.outcome is Outcome.IMAGE and result.finish_reason == "MAX_TOKENS"


async def test_malformed_json_fails_plainly(fake, make_engine):
    fake.enqueue(fg.malformed())
    result = await make_engine().generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.FAILED,
        "Gemini sent an answer the bot could not read; please try again.",
    )
    assert len(fake.requests) == 1


async def test_usage_by_modality(fake, make_engine):
    result = await make_engine().generate(ask("abcdefgh", images=[(png_bytes(), "image/png")]))
    usage = result.usage
    sent = fake.requests[0].response["usageMetadata"]
    assert usage.prompt_tokens == sent["promptTokenCount"]
    assert usage.prompt_by_modality == {"TEXT": 2, "IMAGE": 258}
    assert usage.output_by_modality == {"TEXT": 4, "IMAGE": 1290}
    assert usage.output_tokens == 1294
    assert usage.thought_tokens == 120
    assert usage.total_tokens == usage.prompt_tokens + usage.output_tokens + 120
    assert usage.images_generated == 1


# ---------------------------------------------------------------------------------------------
# Errors and retries


async def test_rate_limit_waits_the_servers_retry_delay(fake, make_engine, sleeps):
    fake.enqueue(fg.rate_limited("2s"))
    result = await make_engine().generate(ask())
    assert result.outcome is Outcome.IMAGE and result.attempts == 2
    assert sleeps.calls == [2.0]
    assert len(fake.requests) == 2


async def test_fractional_retry_delay(fake, make_engine, sleeps):
    fake.enqueue(fg.rate_limited("1.5s"))
    assert (await make_engine().generate(ask())).ok
    assert sleeps.calls == [1.5]


async def test_retry_delay_above_cap_is_not_waited(fake, make_engine, sleeps):
    fake.enqueue(fg.rate_limited("90s"))
    result = await make_engine(max_retry_delay_s=60).generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.RATE_LIMITED,
        "Gemini is rate-limiting this bot; try again in about 90 seconds.",
    )
    assert sleeps.calls == [] and len(fake.requests) == 1


async def test_rate_limited_until_attempts_run_out(fake, make_engine, sleeps):
    fake.enqueue(*[fg.rate_limited("3s")] * 3)
    result = await make_engine(max_attempts=3).generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.RATE_LIMITED,
        "Gemini is rate-limiting this bot; try again in about 3 seconds.",
    )
    assert sleeps.calls == [3.0, 3.0] and result.attempts == 3


async def test_daily_quota_is_not_retried(fake, make_engine, sleeps):
    fake.enqueue(fg.quota_exhausted())
    result = await make_engine().generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.QUOTA_EXHAUSTED,
        "Today's Gemini image quota for this bot is used up; it resets at midnight Pacific time.",
    )
    assert len(fake.requests) == 1 and sleeps.calls == []


async def test_503_twice_then_success(fake, make_engine, sleeps):
    fake.enqueue(fg.error(503, "UNAVAILABLE", "The model is overloaded."), fg.error(503, "UNAVAILABLE"))
    result = await make_engine().generate(ask())
    assert result.outcome is Outcome.IMAGE and result.attempts == 3
    assert len(fake.requests) == 3
    first, second = sleeps.calls
    assert 1.0 <= first <= 1.5 and 2.0 <= second <= 3.0  # exponential backoff with jitter


async def test_500_forever_is_unavailable(fake, make_engine, sleeps):
    fake.enqueue(*[fg.error(500)] * 10)
    result = await make_engine(max_attempts=3, backoff_max_s=1.5).generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.UNAVAILABLE,
        "Gemini is unavailable right now; please try again in a few minutes.",
    )
    assert len(fake.requests) == 3 and result.attempts == 3
    assert len(sleeps.calls) == 2 and max(sleeps.calls) <= 1.5


async def test_timeout_then_success(fake, make_engine, sleeps):
    fake.enqueue(fg.delay(3))
    result = await make_engine(timeout_s=0.5).generate(ask())
    assert result.outcome is Outcome.IMAGE and result.attempts == 2
    assert len(fake.requests) == 2 and len(sleeps.calls) == 1


async def test_timeouts_until_attempts_run_out(fake, make_engine):
    fake.enqueue(fg.delay(3), fg.delay(3))
    result = await make_engine(timeout_s=0.3, max_attempts=2).generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.TIMEOUT,
        "Gemini took too long to answer; please try again in a moment.",
    )


async def test_connection_reset_then_success(fake, make_engine, sleeps):
    fake.enqueue(fg.reset_connection())
    result = await make_engine().generate(ask())
    assert result.outcome is Outcome.IMAGE and result.attempts == 2
    assert len(fake.requests) == 2 and len(sleeps.calls) == 1


async def test_connection_refused_is_unavailable(make_engine, sleeps):
    engine = make_engine(base_url="http://127.0.0.1:9", max_attempts=2)
    result = await engine.generate(ask())
    assert result.outcome is Outcome.UNAVAILABLE and result.attempts == 2


async def test_invalid_key(fake, make_engine, caplog):
    caplog.set_level(logging.DEBUG)
    result = await make_engine(api_key=fg.BAD_KEY).generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.INVALID_KEY,
        "The bot's Gemini API key was rejected; the operator needs to set a valid GEMINI_API_KEY.",
    )
    assert len(fake.requests) == 1
    for record in caplog.records:
        assert fg.BAD_KEY not in record.getMessage()
        assert fg.BAD_KEY not in json.dumps(record.__dict__, default=str)


@pytest.mark.parametrize(("status", "code_status"), [(401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED")])
async def test_401_and_403_are_invalid_key(fake, make_engine, status, code_status):
    fake.enqueue(fg.error(status, code_status, "The caller does not have permission"))
    result = await make_engine().generate(ask())
    assert result.outcome is Outcome.INVALID_KEY and len(fake.requests) == 1


async def test_unknown_model(fake, make_engine):
    result = await make_engine("gemini-9-ultra-image").generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.UNKNOWN_MODEL,
        "Gemini does not offer the model 'gemini-9-ultra-image'; the operator needs to set "
        "GEMINI_MODEL to an available image model.",
    )
    assert len(fake.requests) == 1


async def test_other_400_is_rejected_with_gemini_reason(fake, make_engine):
    fake.enqueue(fg.error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."))
    result = await make_engine().generate(ask())
    assert (result.outcome, result.message) == (
        Outcome.REJECTED,
        "Gemini rejected this request (User location is not supported for the API use); "
        "try changing the prompt or the attached images.",
    )


async def test_rejected_reason_is_truncated_and_never_leaks_json_or_key(fake, make_engine):
    fake.enqueue(
        fg.error(400, "INVALID_ARGUMENT", "word " * 100),
        fg.error(400, "INVALID_ARGUMENT", '* GenerateContentRequest.contents: {"bad": 1}'),
        fg.error(400, "INVALID_ARGUMENT", f"Request for key {KEY} is invalid."),
    )
    engine = make_engine()
    long, jsonish, keyed = [await engine.generate(ask()) for _ in range(3)]
    assert long.outcome is Outcome.REJECTED
    assert len(long.message) < 300 and "…" in long.message
    assert jsonish.message == gemini_module.MSG_REJECTED
    assert keyed.message == gemini_module.MSG_REJECTED and KEY not in keyed.message


async def test_non_json_error_body(fake, make_engine):
    fake.enqueue(fg.raw(502, "<html>Bad gateway</html>", "text/html"))
    engine = make_engine()
    assert (await engine.generate(ask())).outcome is Outcome.IMAGE  # 502 retried
    fake.enqueue(fg.raw(400, "nope"))
    rejected = await engine.generate(ask())
    assert rejected.outcome is Outcome.REJECTED


# ---------------------------------------------------------------------------------------------
# Engine lifecycle


async def test_client_created_once_and_reused(fake, make_engine, monkeypatch):
    made = []
    real_client = gemini_module.genai.Client

    def counting(*args, **kwargs):
        made.append(kwargs)
        return real_client(*args, **kwargs)

    monkeypatch.setattr(gemini_module.genai, "Client", counting)
    engine = make_engine()
    client = engine.client
    await engine.generate(ask())
    await engine.generate(ask("again"))
    assert engine.client is client and len(made) == 1
    options = made[0]["http_options"]
    assert options.api_version == "v1beta" and options.timeout == 120_000


def test_unknown_model_logs_a_warning_at_construction(caplog):
    caplog.set_level(logging.WARNING, logger="bot.gemini")
    GeminiEngine(api_key=KEY, model=FLASH, base_url="http://127.0.0.1:9")
    assert not caplog.records
    engine = GeminiEngine(api_key=KEY, model="imagen-x", base_url="http://127.0.0.1:9")
    assert not engine.capabilities.known
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "imagen-x" in caplog.records[0].getMessage()


async def test_attempts_are_logged_with_structured_fields(fake, make_engine, caplog):
    caplog.set_level(logging.INFO, logger="bot.gemini")
    fake.enqueue(fg.error(503, "UNAVAILABLE"))
    await make_engine().generate(ask())
    fields = [(r.attempt, r.outcome, r.levelno) for r in caplog.records if hasattr(r, "attempt")]
    assert fields == [(1, "unavailable", logging.WARNING), (2, "image", logging.INFO)]
    assert all(KEY not in json.dumps(r.__dict__, default=str) for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# The fake itself


async def test_fake_accepts_snake_case_and_both_base64_alphabets(fake):
    data = bytes([0xFB, 0xFF, 0xBF]) * 5 + b"\x00"
    standard = base64.b64encode(data).decode()
    urlsafe = base64.urlsafe_b64encode(data).decode().rstrip("=")
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"inline_data": {"mime_type": "image/png", "data": standard}},
                    {"inlineData": {"mimeType": "image/webp", "data": urlsafe}},
                    {"text": "hi"},
                ],
            }
        ]
    }
    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/v1beta/models/{FLASH}:generateContent"
        async with session.post(url, json=body, headers={"x-goog-api-key": "k"}) as resp:
            assert resp.status == 200
            answer = await resp.json()
    assert fake.requests[0].images == [[InlineImage("image/png", data), InlineImage("image/webp", data)]]
    assert answer["candidates"][0]["finishReason"] == "STOP"


async def test_fake_runs_as_a_process(make_engine):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.auxil.fake_gemini",
        "--port",
        "0",
        "--image-side",
        "32",
        "--script",
        "error:503",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert line.startswith("READY http://127.0.0.1:")
        engine = make_engine(base_url=line.split()[1])
        result = await engine.generate(ask())
        assert result.outcome is Outcome.IMAGE and result.attempts == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
