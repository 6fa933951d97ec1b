"""What each Gemini image model accepts: aspect ratios, image sizes, input images, price."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bot.gemini.prices import PRICES, UNKNOWN_MODEL_PRICES, ModelPrices, estimate_cost
from bot.vocabulary import Usage

# The model used when GEMINI_MODEL is unset: the first of these the API key can use, newest GA
# flash image model first.
PREFERRED_MODELS: tuple[str, ...] = ("gemini-3.1-flash-image", "gemini-3-pro-image", "gemini-2.5-flash-image")

BASE_RATIOS: tuple[str, ...] = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
EXTREME_RATIOS: tuple[str, ...] = ("1:4", "4:1", "1:8", "8:1")


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    """Limits of one image model. ``image_sizes`` empty means the model takes no size setting."""

    model: str
    aspect_ratios: tuple[str, ...]
    image_sizes: tuple[str, ...]
    max_input_images: int
    known: bool = True
    prices: ModelPrices = field(default=UNKNOWN_MODEL_PRICES, repr=False)

    def supports_sizes(self) -> bool:
        return bool(self.image_sizes)

    def estimate_cost(self, usage: Usage, image_size: str | None) -> float:
        """Estimated US dollars for one turn from its usage (``image_size`` as requested)."""
        size = image_size if image_size in self.image_sizes else None
        return estimate_cost(self.prices, usage, size)


_TABLE: tuple[ModelCapabilities, ...] = (
    # "Best with up to 3" input images: more are accepted by the API but degrade results.
    ModelCapabilities("gemini-2.5-flash-image", BASE_RATIOS, (), 3),
    ModelCapabilities("gemini-3-pro-image", BASE_RATIOS, ("1K", "2K", "4K"), 14),
    ModelCapabilities("gemini-3.1-flash-image", BASE_RATIOS + EXTREME_RATIOS, ("512", "1K", "2K", "4K"), 14),
)


def capabilities_for(model: str) -> ModelCapabilities:
    """Capabilities of ``model``; ids such as ``...-preview`` or dated variants match their base.

    An unknown model gets permissive limits marked ``known=False`` so the caller can warn and
    let the API be the judge.
    """
    for caps in sorted(_TABLE, key=lambda c: len(c.model), reverse=True):
        if model == caps.model or model.startswith(caps.model + "-"):
            return replace(caps, model=model, prices=PRICES[caps.model])
    return ModelCapabilities(model, BASE_RATIOS + EXTREME_RATIOS, ("512", "1K", "2K", "4K"), 14, known=False)


def normalise_size(value: str) -> str:
    """Users type ``2k`` or ``2K``; the API wants ``2K`` (and ``512`` as is)."""
    return value.strip().upper()
