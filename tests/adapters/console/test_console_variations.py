"""The console's /model, --n, /continue, /variations and /redo, as a user types them into
`python -m bot console` against the fake Gemini."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.console.test_console import run_piped, saved_images
from tests.auxil import fake_gemini as fg
from tests.auxil.fake_gemini import FakeGemini
from tests.bot.turns.test_variations import FLASH, OLD, PRO, decoded, model_parts


async def test_console_takes_continue_redo_and_model(fake_gemini: FakeGemini, tmp_path: Path) -> None:
    fake = fake_gemini
    fake.enqueue(
        *(fg.numbered(n) for n in (1, 2, 3)),
        fg.image(),
        fg.image(),
        fg.numbered(1),
        fg.prompt_blocked("SAFETY"),
        fg.numbered(3),
    )
    lines = [
        "/model",
        "a lighthouse --n 3",
        "/continue 3",
        "add a storm",
        "/redo 4K",
        "/variations 4",
        "/variations 3",
        "/model gemini-9-ultra",
        f"/model {OLD}",
    ]
    out = await run_piped(fake, tmp_path, lines, {"GEMINI_MODEL": FLASH, "USER_IMAGES_PER_HOUR": "8"})
    said = out.splitlines()
    assert (
        f"Model for this conversation: {FLASH}. Change it with /model (choices: {FLASH}, {PRO}, {OLD})."
        in said
    )
    # Three takes at once, printed together in order, each saved as its own image.
    assert len({str(r.contents) for r in fake.requests[:3]}) == 1
    labels = [i for i, line in enumerate(said) if line.startswith("Take ")]
    assert [said[i] for i in labels[:3]] == ["Take 1 of 3", "Take 2 of 3", "Take 3 of 3"]
    images = saved_images(out, tmp_path)
    answers = {model_parts(r)[1]["text"]: r for r in fake.requests[:3]}
    take3 = answers[said[labels[2] + 2]]  # "Take 3 of 3", a blank line, the model's text
    assert images[2].read_bytes() == take3.response_images[0].data
    # /continue 3: the next message continues from take 3's content, byte for byte.
    assert "Continuing from this take: your next message refines it." in said
    storm = fake.requests[3]
    assert storm.status == 200
    assert decoded(storm.contents[1]["parts"]) == decoded(model_parts(take3))
    # /redo 4K asks for 4K for that turn only.
    assert (storm.image_size, fake.requests[4].image_size) == (None, "4K")
    assert fake.requests[4].contents == storm.contents
    # Five images made, limit eight: four more do not fit, three do; one of those is blocked.
    refused = [line for line in said if line.startswith("! You've made")]
    assert refused == [
        "! You've made 8 images in the last hour, the limit for each person; you can make more in about 1 h."
    ]
    assert len(fake.requests) == 8
    assert [said[i] for i in labels[3:]] == ["Take 1 of 2", "Take 2 of 2"]
    assert (
        "1 of the 3 takes did not come back: Gemini blocked this prompt for safety reasons; "
        "try rephrasing it." in said
    )
    assert len(saved_images(out, tmp_path)) == 3 + 1 + 1 + 2
    assert f"! gemini-9-ultra is not a model this bot offers; use one of {FLASH}, {PRO}, {OLD}." in said
    assert f"The model is now {OLD} for this conversation." in said


async def test_console_controls_say_what_to_do_with_a_bad_input(
    fake_gemini: FakeGemini, tmp_path: Path
) -> None:
    lines = [
        "/variations",
        "/redo 4K",
        "/continue 1",
        "a lighthouse",
        "/variations 9",
        "/continue 1",
        "/redo",
        "/redo 8K",
        "a boat --n 3",
        "/continue 4",
        "/continue x",
    ]
    out = await run_piped(fake_gemini, tmp_path, lines, {"GEMINI_MODEL": FLASH})
    errors = [line for line in out.splitlines() if line.startswith("! ")]
    assert errors == [
        "! Make an image first; this conversation has none yet.",
        "! Make an image first; this conversation has none yet.",
        "! There are no takes to continue from; make some with /variations or --n 3.",
        "! /variations takes 2, 3 or 4 (how many takes to make), not 9.",
        "! There are no takes to continue from; make some with /variations or --n 3.",
        "! Say which size: /redo 2K or /redo 4K.",
        f"! 8K is not an image size {FLASH} supports; use one of 512, 1K, 2K, 4K.",
        "! Say which take: /continue 1 to /continue 3.",
        "! Say which take: /continue 1 to /continue 3.",
    ]
    assert len(fake_gemini.requests) == 1 + 3
