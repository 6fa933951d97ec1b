"""Per-token prices of one image model (from the model registry), and a turn's cost from its usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.vocabulary import Usage

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
