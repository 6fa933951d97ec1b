"""The base of every settings group: validated only from the variables it is handed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def setting(variable: str | AliasChoices, default: Any, *, repr: bool = True) -> Any:
    """A field read from ``variable`` (the contract's name), ``default`` when it is unset."""
    return Field(default, validation_alias=variable, repr=repr)


class SettingsGroup(BaseSettings):
    """Settings of one concern. Values come only from ``from_env`` (the environment is read
    once, at start-up, by ``read_environment``), never from ``os.environ`` behind its back."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        extra="ignore",
        # Defaults are already typed values (bytes, seconds), not environment strings.
        validate_default=False,
        hide_input_in_errors=True,
        protected_namespaces=(),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def variables(cls) -> tuple[str, ...]:
        """The environment variables this group reads, in field order."""
        names: list[str] = []
        for info in cls.model_fields.values():
            alias = info.validation_alias
            if isinstance(alias, str):
                names.append(alias)
            elif isinstance(alias, AliasChoices):
                names.extend(choice for choice in alias.choices if isinstance(choice, str))
        return tuple(names)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Validate this group's variables in ``env``; raises pydantic's ValidationError."""
        return cls(**{name: env[name] for name in cls.variables() if name in env})

    @classmethod
    def problems_across(cls, env: Mapping[str, str]) -> list[str]:
        """Problems between this group's variables and another group's, one line each."""
        return []
