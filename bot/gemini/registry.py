"""The model registry: the image models the shipped file and MODELS_FILE describe, which of them
this key is served, and the rule that picks the model when GEMINI_MODEL is unset."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from bot.gemini.capabilities import FLASH, GENERATE_CONTENT, INTERACTIONS, ModelCapabilities

# The rule for an unset GEMINI_MODEL, as the README and the start-up log state it.
NEWEST_FLASH = "the newest flash-class model this key is served"
CHEAPEST = "the cheapest per 1K image this key is served, none being flash-class"
DEFAULT_RULE = f"{NEWEST_FLASH} ({CHEAPEST} otherwise)"


@dataclass(frozen=True, slots=True)
class ModelRegistry:
    """Entries in file order (the shipped file's, then the operator's additions). ``served``
    holds the ids ``models.list`` offered this key at start-up; None when it was not asked.
    ``api`` is the engine's (GEMINI_API): the Interactions API serves every model, generateContent
    only the entries whose ``api`` is generate_content."""

    entries: tuple[ModelCapabilities, ...]
    prices_date: str
    served: frozenset[str] | None = None
    api: str = GENERATE_CONTENT

    def ids(self) -> tuple[str, ...]:
        return tuple(entry.model for entry in self.entries)

    def entry(self, model: str) -> ModelCapabilities | None:
        """The entry of ``model``: its own, or its base's for a ``-preview`` or dated id."""
        for entry in sorted(self.entries, key=lambda e: len(e.model), reverse=True):
            if model == entry.model or model.startswith(entry.model + "-"):
                return entry
        return None

    def capabilities_for(self, model: str) -> ModelCapabilities:
        """What ``model`` accepts and costs. A model no file knows gets what every known model
        accepts, no thinking levels and no price, marked ``known=False``."""
        entry = self.entry(model)
        if entry is not None:
            return replace(entry, model=model)
        return self.conservative(model)

    def conservative(self, model: str) -> ModelCapabilities:
        first, *rest = self.entries or (ModelCapabilities(model, ("1:1",), (), 1),)
        ratios = tuple(r for r in first.aspect_ratios if all(r in e.aspect_ratios for e in rest))
        sizes = tuple(s for s in first.image_sizes if all(s in e.image_sizes for e in rest))
        fewest = min(e.max_input_images for e in (first, *rest))
        return ModelCapabilities(model, ratios, sizes, fewest, known=False)

    def with_api(self, api: str) -> ModelRegistry:
        return replace(self, api=api)

    def callable(self, entry: ModelCapabilities) -> bool:
        """Whether this engine's API can call ``entry``'s model."""
        return self.api == INTERACTIONS or entry.api == GENERATE_CONTENT

    def interactions_only(self, model: str) -> bool:
        """Whether a file says only the Interactions API serves ``model``."""
        entry = self.entry(model)
        return entry is not None and entry.api == INTERACTIONS

    def with_served(self, models: Iterable[str] | None) -> ModelRegistry:
        return replace(self, served=None if models is None else frozenset(models))

    def served_id(self, entry: ModelCapabilities) -> str | None:
        """The id this key is served for ``entry``: its own, else a preview or dated variant;
        the entry's own id when nothing was asked; None when it is not served."""
        if self.served is None or entry.model in self.served:
            return entry.model
        variants = sorted(m for m in self.served if m.startswith(entry.model + "-"))
        return variants[0] if variants else None

    def offered(self) -> tuple[str, ...]:
        """The served ids of the entries this engine can call, in file order."""
        found = (self.served_id(e) for e in self.entries if self.callable(e))
        return tuple(m for m in found if m is not None)

    def unknown_served(self) -> tuple[str, ...]:
        """Served image models no file describes (new ones Google shipped)."""
        return tuple(sorted(m for m in self.served or () if self.entry(m) is None))

    @staticmethod
    def rule_for(pick: ModelCapabilities) -> str:
        """Which half of ``DEFAULT_RULE`` chose ``pick``."""
        return NEWEST_FLASH if pick.family == FLASH else CHEAPEST

    def default_pick(self, available: Collection[str] | None = None) -> ModelCapabilities | None:
        """The model for an unset GEMINI_MODEL (``DEFAULT_RULE``) among ``available`` (all
        entries when None): priced entries of this engine's API only. Its ``model`` is the id
        the key is served."""
        registry = self.with_served(available)
        candidates = [
            replace(e, model=served)
            for e in self.entries
            if self.callable(e) and e.priced and (served := registry.served_id(e)) is not None
        ]
        flash = [e for e in candidates if e.family == FLASH]
        if flash:
            return max(flash, key=lambda e: (e.released, -(e.image_price() or 0.0)))
        return min(candidates, key=lambda e: e.image_price() or 0.0) if candidates else None


def shipped() -> ModelRegistry:
    """The registry of the file shipped with the bot alone (no MODELS_FILE): for tools and tests;
    the running bot reads ``config.models``."""
    from bot.config.models_file import shipped_registry  # the file is read on first use

    return shipped_registry()
