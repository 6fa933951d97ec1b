"""Context budget: whole turns, newest first, bounded images, re-seeding when nothing fits."""

from bot.turns.context_budget import select_context
from bot.vocabulary import ConversationKey, Usage
from storage.content import image_part, user_record
from storage.protocol import StoredTurn

KEY = ConversationKey("console", "local", "terminal", "t")


def turn(n: int, user_images: int = 0, model_images: int = 1, thought_image: bool = False) -> StoredTurn:
    model_parts = [{"text": f"answer {n}", "thought_signature": f"sig{n}"}]
    if thought_image:
        model_parts.append({**image_part(f"thought{n}", "image/png"), "thought": True})
    model_parts += [image_part(f"m{n}-{i}", "image/png") for i in range(model_images)]
    return StoredTurn(
        id=n,
        key=KEY,
        parent_id=n - 1 or None,
        user_content=user_record(f"prompt {n}", [(f"u{n}-{i}", "image/jpeg") for i in range(user_images)]),
        model_content={"role": "model", "parts": model_parts},
        model="m",
        usage=Usage(),
        author_id="a",
        created_at=float(n),
    )


def test_under_budget_sends_the_stored_history_exactly() -> None:
    turns = [turn(1), turn(2)]
    window = select_context(turns, 3)
    assert window.history == (
        turns[0].user_content,
        turns[0].model_content,
        turns[1].user_content,
        turns[1].model_content,
    )
    assert window.seed_images == () and window.dropped_turns == 0


def test_over_budget_drops_oldest_turns_whole() -> None:
    turns = [turn(n) for n in range(1, 11)]
    window = select_context(turns, 3)
    assert window.dropped_turns == 7
    assert [r["parts"][-1].get("text") for r in window.history[::2]] == ["prompt 8", "prompt 9", "prompt 10"]
    # Model parts go out untouched, signatures included.
    assert window.history[1] is turns[7].model_content


def test_user_images_and_thought_images_count() -> None:
    turns = [turn(1), turn(2, user_images=2, thought_image=False)]
    assert select_context(turns, 3).dropped_turns == 1
    assert select_context([turn(1, thought_image=True)], 1).history == ()


def test_newest_turn_over_budget_reseeds_from_its_latest_images() -> None:
    storyboard = turn(1, model_images=5)
    window = select_context([storyboard], 3)
    assert window.history == ()
    assert window.seed_images == (("m1-2", "image/png"), ("m1-3", "image/png"), ("m1-4", "image/png"))


def test_zero_budget_sends_no_images_and_no_seed() -> None:
    window = select_context([turn(1)], 0)
    assert window.history == () and window.seed_images == ()


def test_unbounded_keeps_everything() -> None:
    turns = [turn(n, model_images=4) for n in range(1, 6)]
    window = select_context(turns, None)
    assert len(window.history) == 10
    assert window.seed_images == () and window.dropped_turns == 0
    empty = select_context([], 3)
    assert (empty.history, empty.seed_images, empty.dropped_turns) == ((), (), 0)


def test_a_budget_of_one_still_reseeds_the_latest_image() -> None:
    window = select_context([turn(1), turn(2, model_images=2)], 1)
    assert window.history == () and window.dropped_turns == 2
    assert window.seed_images == (("m2-1", "image/png"),)


def test_reseeding_never_sends_gemini_draft_images_as_the_persons() -> None:
    """A thought (draft) image is Gemini's own; re-seeding it would present it as attached."""
    record = {
        "role": "model",
        "parts": [
            image_part("final", "image/png"),
            {**image_part("draft", "image/png"), "thought": True},
            {"text": "done", "thought_signature": "sig"},
        ],
    }
    newest = StoredTurn(
        id=1,
        key=KEY,
        parent_id=None,
        user_content=user_record("p", [("u0", "image/jpeg"), ("u1", "image/jpeg")]),
        model_content=record,
        model="m",
        usage=Usage(),
        author_id="a",
        created_at=1.0,
    )
    window = select_context([newest], 2)
    assert window.history == ()
    assert window.seed_images == (("final", "image/png"),)
