"""One generation described for operators (``bot.vocabulary.ModelCall``): bounded labels, tokens, cost."""

from __future__ import annotations

from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.outcomes import GenerationResult
from bot.gemini.prices import DEFAULT_SIZE, split_tokens
from bot.gemini.registry import ModelRegistry, shipped
from bot.vocabulary import ModelCall

OTHER_MODEL = "other"


def model_label(model: str, models: ModelRegistry | None = None) -> str:
    """The registry's id of ``model`` (a preview or dated id counts as its base), or ``other``:
    a label never carries an id no model file lists."""
    entry = (models or shipped()).entry(model)
    return entry.model if entry is not None else OTHER_MODEL


def model_call(
    caps: ModelCapabilities, image_size: str | None, result: GenerationResult, seconds: float
) -> ModelCall:
    """What one ``generate`` did, priced as the ledger prices a turn."""
    size = image_size if image_size in caps.image_sizes else None
    usage = result.usage
    if caps.prices is not None:
        tokens = split_tokens(caps.prices, usage, size)
        prompt, image_tokens, text_tokens = (
            tokens.input_text + tokens.input_image,
            tokens.output_image,
            tokens.output_text,
        )
    else:  # no price, so no tokens-per-image table: the answer's own breakdown only
        image_tokens = usage.output_by_modality.get("IMAGE", 0)
        prompt, text_tokens = usage.prompt_tokens, max(0, usage.output_tokens - image_tokens)
    thinking = usage.thought_tokens
    return ModelCall(
        model=caps.base or OTHER_MODEL,
        outcome=result.outcome.value,
        seconds=seconds,
        input_tokens=prompt,
        output_image_tokens=image_tokens,
        output_text_tokens=text_tokens,
        thinking_tokens=thinking,
        cost_usd=caps.estimate_cost(result.usage, image_size),
        images=result.usage.images_generated if result.ok else 0,
        image_size=size or DEFAULT_SIZE,
        finish_reason=result.finish_reason,
    )
