"""The generation config one request is sent with: modalities, image shape and size, thinking."""

from google.genai import types

from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.outcomes import GenerationRequest
from bot.vocabulary import ResponseMode


def generation_config(request: GenerationRequest, caps: ModelCapabilities) -> types.GenerateContentConfig:
    """A per-call config replaces a chat's, so it carries everything: a size only for a model
    that has sizes, a thinking level only one the model's entry lists."""
    modalities = ["IMAGE"] if request.response_mode == ResponseMode.IMAGE_ONLY else ["TEXT", "IMAGE"]
    size = request.image_size if caps.supports_sizes() else None
    image_config = None
    if request.aspect_ratio or size:
        image_config = types.ImageConfig(aspect_ratio=request.aspect_ratio, image_size=size)
    thinking = None
    if request.thinking_level and request.thinking_level in caps.thinking_levels:
        level = types.ThinkingLevel(request.thinking_level.upper())
        thinking = types.ThinkingConfig(thinking_level=level)
    return types.GenerateContentConfig(
        response_modalities=modalities, image_config=image_config, thinking_config=thinking
    )
