"""Configuration problems: one plain line each, including those pydantic reports."""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

# Error types raised by our validators: a problem with one variable (its name is prefixed from
# the error's location, which is the variable's name) or a whole line about several variables.
_PROBLEM = "config_problem"
_LINE = "config_line"


class ConfigError(Exception):
    """Invalid configuration; ``problems`` holds one plain line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def problem(text: str) -> PydanticCustomError:
    """What is wrong with one variable, said after its name: ``must be ..., not 'x'.``"""
    return PydanticCustomError(_PROBLEM, "{text}", {"text": text})


def line(text: str) -> PydanticCustomError:
    """A whole line, for a problem that involves more than one variable."""
    return PydanticCustomError(_LINE, "{text}", {"text": text})


def lines_of(error: ValidationError) -> list[str]:
    """One plain line per error, never pydantic's multi-line report."""
    result = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][-1]) if item["loc"] else error.title
        text = str(item.get("ctx", {}).get("text", item["msg"]))
        if item["type"] == _LINE:
            result.append(text)
        elif item["type"] == _PROBLEM:
            result.append(f"{name} {text}")
        else:  # a pydantic check of our own types; the first line of its message is enough
            result.append(f"{name} is not valid: {text.splitlines()[0]}.")
    return result
