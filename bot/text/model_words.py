"""What the bot says about models: thinking levels, and a model whose price no model file gives."""

from __future__ import annotations

from collections.abc import Sequence

THINKING_LABEL = "Thinking"
THINKING_HELP = (
    "/think [level]",
    "show or set how much the model thinks before drawing (models with levels)",
)


def no_thinking(model: str) -> str:
    return f"{model} has no thinking levels to choose from, so --think and /think can't be used with it."


def level_not_offered(level: str, model: str, levels: Sequence[str]) -> str:
    return f"{model} doesn't offer the thinking level {level}; use {' or '.join(levels)}."


def bad_thinking_level(shown: str, levels: Sequence[str]) -> str:
    return f"'{shown}' is not a thinking level; use {' or '.join(levels)}."


def unpriced_refused(model: str) -> str:
    """A turn with a model no model file prices, while DAILY_SPEND_CAP_USD is set."""
    return (
        f"I can't draw with {model} while a spend cap is set: its price is unknown, so its cost "
        "can't be counted; ask the bot's operator to add its price to MODELS_FILE."
    )


def cost_unknown(model: str) -> str:
    """/usage, for a conversation whose model has no price."""
    return (
        f"The cost of images drawn with {model} is unknown (no model file gives its price), "
        "so they count as $0 here."
    )


def remote_deleted(gone: int, kept: int) -> str:
    """forget-workspace: the interactions Google kept for the workspace's conversations."""
    return f"Deleted {gone} of the {kept} interactions Google kept for its conversations."


def remote_left(kept: int) -> str:
    """forget-workspace without a key: Google's copies could not be deleted."""
    return (
        f"The {kept} interactions Google keeps for its conversations were not deleted there: "
        "GEMINI_API_KEY is not set."
    )


def interactions_only(model: str, api: str) -> str:
    """Start-up: GEMINI_MODEL names a model only the Interactions API serves."""
    return (
        f"GEMINI_MODEL {model} is served only by the Interactions API, but GEMINI_API is {api}; "
        "set GEMINI_API=interactions or choose another model."
    )
