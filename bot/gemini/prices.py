"""Per-token list prices of the image models, and a turn's cost estimated from its usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot.vocabulary import Usage

# The Gemini API's paid-tier list prices in US dollars, as listed when the GA image model ids
# were released (issue 11); re-check https://ai.google.dev/gemini-api/docs/pricing when it moves.
PRICE_LIST_DATE = "2026-05-28"
DEFAULT_SIZE = "1K"


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """US dollars per million tokens, and the output tokens one image costs at each size."""

    input_text: float
    input_image: float
    output_image: float
    # Text and thinking output are billed alike.
    output_text: float
    tokens_per_image: Mapping[str, int]

    def image_tokens(self, image_size: str | None) -> int:
        """Output tokens of one image at ``image_size`` (the model's 1K size when unset or unknown)."""
        sizes = self.tokens_per_image
        return sizes.get(image_size or DEFAULT_SIZE, sizes.get(DEFAULT_SIZE, max(sizes.values())))


def _sizes(tokens: dict[str, int]) -> Mapping[str, int]:
    return MappingProxyType(tokens)


# One row per GA model id; preview and dated ids are priced as their base (see capabilities).
PRICES: Mapping[str, ModelPrices] = MappingProxyType(
    {
        # A single size; 2.5 flash image text output is listed at $2.50/M.
        "gemini-2.5-flash-image": ModelPrices(0.30, 0.30, 30.0, 2.50, _sizes({"1K": 1290})),
        "gemini-3.1-flash-image": ModelPrices(
            0.50, 0.50, 60.0, 3.0, _sizes({"512": 747, "1K": 1120, "2K": 1680, "4K": 2520})
        ),
        "gemini-3-pro-image": ModelPrices(
            2.0, 2.0, 120.0, 12.0, _sizes({"1K": 1120, "2K": 1120, "4K": 2000})
        ),
    }
)
# A model missing from the table is priced like the dearest one, so a spend cap errs on the safe side.
UNKNOWN_MODEL_PRICES = PRICES["gemini-3-pro-image"]


@dataclass(frozen=True, slots=True)
class TokenSplit:
    """A turn's tokens by what they are billed as."""

    input_text: int
    input_image: int
    output_image: int
    output_text: int
    thinking: int


def split_tokens(prices: ModelPrices, usage: Usage, image_size: str | None) -> TokenSplit:
    """Input: text and image prompt tokens. Output: image tokens, then text, then thinking. When
    the answer carries no output breakdown by modality, each generated image is counted at the
    tokens-per-image of the requested size and the rest of the output as text."""
    prompt_image = usage.prompt_by_modality.get("IMAGE", 0)
    prompt_text = max(0, usage.prompt_tokens - prompt_image)
    if usage.output_by_modality:
        out_image = usage.output_by_modality.get("IMAGE", 0)
        out_text = usage.output_by_modality.get("TEXT", max(0, usage.output_tokens - out_image))
    else:
        out_image = usage.images_generated * prices.image_tokens(image_size)
        out_text = max(0, usage.output_tokens - out_image)
    return TokenSplit(prompt_text, prompt_image, out_image, out_text, usage.thought_tokens)


def estimate_cost(prices: ModelPrices, usage: Usage, image_size: str | None) -> float:
    """Estimated US dollars for one turn, from its ``usage_metadata`` by modality (see
    ``split_tokens``); text and thinking output are billed alike."""
    tokens = split_tokens(prices, usage, image_size)
    dollars_per_million = (
        tokens.input_text * prices.input_text
        + tokens.input_image * prices.input_image
        + tokens.output_image * prices.output_image
        + (tokens.output_text + tokens.thinking) * prices.output_text
    )
    return dollars_per_million / 1e6
