"""One generation described for operators (``bot.vocabulary.ModelCall``): bounded labels, tokens, cost."""

from __future__ import annotations

from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.outcomes import GenerationResult
from bot.gemini.prices import DEFAULT_SIZE, PRICES, split_tokens
from bot.vocabulary import ModelCall

OTHER_MODEL = "other"


def model_label(model: str) -> str:
    """The price table's id of ``model`` (a preview or dated id counts as its base), or
    ``other``: a label never carries an id nobody listed."""
    for base in sorted(PRICES, key=len, reverse=True):
        if model == base or model.startswith(base + "-"):
            return base
    return OTHER_MODEL


def model_call(
    caps: ModelCapabilities, image_size: str | None, result: GenerationResult, seconds: float
) -> ModelCall:
    """What one ``generate`` did, priced as the ledger prices a turn."""
    size = image_size if image_size in caps.image_sizes else None
    tokens = split_tokens(caps.prices, result.usage, size)
    return ModelCall(
        model=model_label(caps.model),
        outcome=result.outcome.value,
        seconds=seconds,
        input_tokens=tokens.input_text + tokens.input_image,
        output_image_tokens=tokens.output_image,
        output_text_tokens=tokens.output_text,
        thinking_tokens=tokens.thinking,
        cost_usd=caps.estimate_cost(result.usage, image_size),
        images=result.usage.images_generated if result.ok else 0,
        image_size=size or DEFAULT_SIZE,
        finish_reason=result.finish_reason,
    )
