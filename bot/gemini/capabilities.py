"""What one Gemini image model accepts and costs, as the model registry describes it."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.gemini.prices import ModelPrices, estimate_cost
from bot.vocabulary import Usage

# Which API serves a model (GEMINI_API): this engine speaks generate_content.
GENERATE_CONTENT = "generate_content"
INTERACTIONS = "interactions"
APIS = (GENERATE_CONTENT, INTERACTIONS)
# The levels --think and /think may name; each model's entry lists the ones it takes.
THINKING_LEVELS = ("minimal", "low", "medium", "high")
FLASH = "flash"


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """Limits and prices of one image model. ``image_sizes`` empty means the model takes no size
    setting; ``thinking_levels`` empty that its thinking is not adjustable; ``prices`` None that
    its cost is unknown (no file gives it). ``base`` is the registry id of its entry ("" when no
    file knows the model, ``known`` False)."""

    model: str
    aspect_ratios: tuple[str, ...]
    image_sizes: tuple[str, ...]
    max_input_images: int
    known: bool = True
    prices: ModelPrices | None = field(default=None, repr=False)
    thinking_levels: tuple[str, ...] = ()
    family: str = ""
    api: str = GENERATE_CONTENT
    released: str = ""
    base: str = ""

    def supports_sizes(self) -> bool:
        return bool(self.image_sizes)

    def supports_thinking(self) -> bool:
        return bool(self.thinking_levels)

    @property
    def priced(self) -> bool:
        return self.prices is not None

    def estimate_cost(self, usage: Usage, image_size: str | None) -> float:
        """Estimated US dollars for one turn from its usage (``image_size`` as requested); 0
        for a model whose price is unknown (``priced`` says which)."""
        if self.prices is None:
            return 0.0
        size = image_size if image_size in self.image_sizes else None
        return estimate_cost(self.prices, usage, size)

    def image_price(self, image_size: str = "1K") -> float | None:
        """US dollars of one image's output tokens at ``image_size``; None when unpriced."""
        if self.prices is None:
            return None
        return self.prices.image_tokens(image_size) * self.prices.output_image / 1e6


def normalise_size(value: str) -> str:
    """Users type ``2k`` or ``2K``; the API wants ``2K`` (and ``512`` as is)."""
    return value.strip().upper()


def normalise_level(value: str) -> str:
    """Users type ``High`` or ``HIGH``; the registry and the API's enum agree on lower case."""
    return value.strip().lower()
