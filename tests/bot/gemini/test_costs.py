"""Turn costs from usage_metadata and per-token list prices, checked against hand arithmetic;
and thought images (Gemini 3's interim drafts): never shown, never counted, kept byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.gemini import GeminiEngine, GenerationRequest, Outcome
from bot.gemini.interactions import InteractionsEngine
from bot.gemini.registry import shipped
from bot.vocabulary import Author, ImagePart, Usage
from tests.auxil import fake_gemini as fg
from tests.auxil.core import ALICE, KEY, Core
from tests.auxil.engines import both_engines, interactions  # noqa: F401  (engine_api: each engine)
from tests.auxil.fake_gemini import FakeGemini

# What each model accepts and costs: the file shipped with the bot.
capabilities_for = shipped().capabilities_for

# 40 characters: the fake bills len // 4 = 10 prompt tokens for it.
PROMPT = "a lighthouse on a cliff at dawn, in oils"
# Every fake answer: "Here is your image." (19 // 4 = 4 text tokens) and a thought text part
# (120 thinking tokens), plus one image.
TEXT, THINKING = 4, 120


@pytest.fixture
async def generate(fake_gemini: FakeGemini, engine_api: str) -> AsyncIterator[Callable]:
    """One call on this run's engine (each in turn: usage is read from each API's answer)."""
    engines: list[GeminiEngine] = []
    kind = InteractionsEngine if interactions(engine_api) else GeminiEngine

    async def run(model: str, size: str | None):
        engine = kind(api_key="k", model=model, base_url=fake_gemini.base_url)
        engines.append(engine)
        user = {"role": "user", "parts": [{"text": PROMPT}]}
        return await engine.generate(GenerationRequest((), user, {}, image_size=size))

    yield run
    for engine in engines:
        await engine.aclose()


# Dollars = tokens x list price per million / 1e6. Input 10 tokens; output TEXT + THINKING at the
# text price; one image at its size's token count and the image price.
CASES = [
    # gemini-2.5-flash-image: input $0.30/M, image $30/M at 1290 tokens, text $2.50/M.
    ("gemini-2.5-flash-image", None, (10 * 0.30 + 1290 * 30 + (4 + 120) * 2.50) / 1e6),  # $0.0390133
    # gemini-3.1-flash-image: input $0.50/M, image $60/M, text and thinking $3/M.
    ("gemini-3.1-flash-image", "512", (10 * 0.50 + 747 * 60 + (4 + 120) * 3) / 1e6),  # $0.0452270
    ("gemini-3.1-flash-image", "1K", (10 * 0.50 + 1120 * 60 + (4 + 120) * 3) / 1e6),  # $0.0675770
    ("gemini-3.1-flash-image", "2K", (10 * 0.50 + 1680 * 60 + (4 + 120) * 3) / 1e6),  # $0.1011770
    ("gemini-3.1-flash-image", "4K", (10 * 0.50 + 2520 * 60 + (4 + 120) * 3) / 1e6),  # $0.1515770
    # gemini-3-pro-image: input $2/M, image $120/M, text and thinking $12/M.
    ("gemini-3-pro-image", "1K", (10 * 2 + 1120 * 120 + (4 + 120) * 12) / 1e6),  # $0.1358880
    ("gemini-3-pro-image", "2K", (10 * 2 + 1120 * 120 + (4 + 120) * 12) / 1e6),  # $0.1358880
    ("gemini-3-pro-image", "4K", (10 * 2 + 2000 * 120 + (4 + 120) * 12) / 1e6),  # $0.2415080
    # Preview ids are priced as their base model.
    ("gemini-3-pro-image-preview", "4K", (10 * 2 + 2000 * 120 + (4 + 120) * 12) / 1e6),
]


@pytest.mark.parametrize(("model", "size", "dollars"), CASES)
async def test_one_turn_of_each_model_and_size(
    generate, model: str, size: str | None, dollars: float
) -> None:
    result = await generate(model, size)
    assert result.outcome is Outcome.IMAGE
    assert (result.usage.prompt_tokens, result.usage.thought_tokens) == (10, THINKING)
    assert capabilities_for(model).estimate_cost(result.usage, size) == pytest.approx(dollars, rel=1e-12)


async def test_without_a_breakdown_by_modality_images_count_at_the_requested_size(
    fake_gemini: FakeGemini, generate
) -> None:
    fake_gemini.enqueue(fg.image(details=False))
    result = await generate("gemini-3.1-flash-image", "2K")
    assert result.usage.output_by_modality == {} and result.usage.output_tokens == 1680 + TEXT
    # The image at the 2K table's 1680 tokens, the other 4 output tokens as text.
    dollars = (10 * 0.50 + 1680 * 60 + (4 + 120) * 3) / 1e6
    assert capabilities_for("gemini-3.1-flash-image").estimate_cost(result.usage, "2K") == pytest.approx(
        dollars, rel=1e-12
    )


def test_breakdown_wins_over_the_table_and_unknown_sizes_count_as_1k() -> None:
    prices = capabilities_for("gemini-3.1-flash-image").prices
    usage = Usage(
        prompt_tokens=1000,
        output_tokens=2000 + 50,
        thought_tokens=300,
        prompt_by_modality={"TEXT": 226, "IMAGE": 774},
        output_by_modality={"TEXT": 50, "IMAGE": 2000},
        images_generated=1,
    )
    caps = capabilities_for("gemini-3.1-flash-image")
    assert caps.estimate_cost(usage, "512") == pytest.approx(
        (226 * 0.50 + 774 * 0.50 + 2000 * 60 + (50 + 300) * 3) / 1e6, rel=1e-12
    )
    bare = Usage(output_tokens=1120, images_generated=1)
    assert caps.estimate_cost(bare, "8K") == pytest.approx(1120 * 60 / 1e6, rel=1e-12)
    assert prices.image_tokens(None) == 1120


async def test_thought_images_cost_thinking_tokens_but_are_not_results(
    fake_gemini: FakeGemini, generate
) -> None:
    fake_gemini.enqueue(fg.image(thought_images=2))
    result = await generate("gemini-3-pro-image", "4K")
    assert result.usage.images_generated == 1
    assert sum(isinstance(p, ImagePart) for p in result.parts) == 1
    # Thinking: 120 for the thought text plus 2000 per interim 4K image, at $12/M.
    assert result.usage.thought_tokens == 120 + 2 * 2000
    dollars = (10 * 2 + 2000 * 120 + (4 + 120 + 2 * 2000) * 12) / 1e6
    assert capabilities_for("gemini-3-pro-image").estimate_cost(result.usage, "4K") == pytest.approx(
        dollars, rel=1e-12
    )


# ---------------------------------------------------------------------------------------------
# Through the service: what is recorded is what /usage and the spend cap read


async def test_recorded_cost_feeds_usage_and_the_spend_cap(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    env = {
        "GEMINI_API": engine_api,
        "GEMINI_MODEL": "gemini-3-pro-image",
        "DEFAULT_IMAGE_SIZE": "4K",
        "DAILY_SPEND_CAP_USD": "0.30",
        "ADMIN_USERS": "console:boss",
    }
    core = await Core(fake_gemini, tmp_path / "db.sqlite3", env).start()
    try:
        await core.say(PROMPT)
        one_turn = (10 * 2 + 2000 * 120 + (4 + 120) * 12) / 1e6  # $0.241508
        assert await core.store.cost_since(0) == pytest.approx(one_turn, rel=1e-9)
        report = await core.service.usage_report(KEY, ALICE)
        assert report.splitlines()[0] == (
            "You: 1 image today (about $0.24), 1 image this month (about $0.24)."
        )
        admin = await core.service.usage_report(KEY, Author("boss"))
        assert admin.splitlines()[1:4] == [
            "Everyone: 1 image today (about $0.24), 1 image this month (about $0.24).",
            "Daily spending cap: $0.30.",
            "Costs are estimated from Gemini's paid-tier list prices of 2026-05-28.",
        ]
        await core.say("again, closer")  # $0.24 spent < $0.30: admitted, and now over the cap
        _, sink = await core.say("once more")
        assert sink.last.text.startswith("The bot has reached today's spending cap of $0.30;")
        assert len(fake_gemini.requests) == 2
    finally:
        await core.stop()


async def test_thought_images_are_not_posted_or_counted_and_survive_a_restart(
    fake_gemini: FakeGemini, tmp_path: Path, engine_api: str
) -> None:
    env = {"GEMINI_MODEL": "gemini-3.1-flash-image", "GEMINI_API": engine_api}
    core = await Core(fake_gemini, tmp_path / "db.sqlite3", env).start()
    try:
        fake_gemini.enqueue(fg.image(thought_images=2))
        _, sink = await core.say("a paper crane")
        first = fake_gemini.requests[0]
        drafts, final = first.response_images[:2], first.response_images[2]
        posted = [p for p in sink.last.parts if isinstance(p, ImagePart)]
        assert [p.data for p in posted] == [final.data]
        count, _ = await core.store.count_images(0, author_id=ALICE.id, platform=KEY.platform)
        assert count == 1
        assert (await core.store.history(KEY))[0].usage.images_generated == 1

        await core.restart()
        if interactions(engine_api):
            # Google's copy gone: the local history is sent, so the drafts go back from it.
            fake_gemini.interactions.stored.clear()
        await core.say("now origami frog")
        sent_back = fake_gemini.requests[-1]
        if interactions(engine_api):
            assert (sent_back.previous_interaction_id, sent_back.sent_images) == (None, 3)
        model_turn = sent_back.contents[1]
        # Both drafts went back flagged as thoughts, byte for byte, with every signature.
        thought_parts = [p for p in model_turn["parts"] if p.get("thought")]
        assert [p.get("inlineData") is not None for p in thought_parts] == [False, True, True]
        assert sent_back.images[1] == [*drafts, final]
        assert sent_back.signatures() == first.response_signatures
    finally:
        await core.stop()
