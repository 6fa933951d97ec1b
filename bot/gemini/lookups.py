"""Model lookups (models.get / models.list) and how they fail."""

from enum import StrEnum

from google.genai import types

# ---------------------------------------------------------------------------------------------
# Model lookups

LOOKUP_TIMEOUT_S = 15.0


class LookupFailure(StrEnum):
    NOT_FOUND = "not_found"
    KEY_REJECTED = "key_rejected"
    UNREACHABLE = "unreachable"


class ModelLookupError(Exception):
    """``models.get`` / ``models.list`` gave no answer about the models."""

    def __init__(self, kind: LookupFailure, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def model_id(model: types.Model) -> str:
    return (model.name or "").removeprefix("models/")


def generates(model: types.Model) -> bool:
    # The Gemini API lists supportedGenerationMethods; a model without the list is given the
    # benefit of the doubt.
    actions = model.supported_actions
    return actions is None or "generateContent" in actions
