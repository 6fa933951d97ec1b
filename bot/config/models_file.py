"""MODELS_FILE: the model registry read at start-up, the operator's file over the one shipped with
the bot (bot/gemini/models.toml), checked with one line per bad entry."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bot.gemini.capabilities import APIS, GENERATE_CONTENT, THINKING_LEVELS, ModelCapabilities, normalise_size
from bot.gemini.prices import ModelPrices
from bot.gemini.registry import ModelRegistry

SHIPPED_NAME = "models.toml"
_FIELDS = (
    "class",
    "released",
    "api",
    "aspect_ratios",
    "image_sizes",
    "max_input_images",
    "thinking_levels",
    "prices",
)
_REQUIRED = ("class", "aspect_ratios", "max_input_images")
_PRICE_FIELDS = ("input_text", "input_image", "output_image", "output_text")
_RATIO = re.compile(r"[1-9][0-9]*:[1-9][0-9]*")
_SIZE = re.compile(r"[1-9][0-9]*K?")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]*")


class EntryProblem(ValueError):
    """What is wrong with one entry, said after its name."""


def _shipped_text() -> str:
    return resources.files("bot.gemini").joinpath(SHIPPED_NAME).read_text(encoding="utf-8")


@cache
def shipped_registry() -> ModelRegistry:
    """The shipped file alone; its entries are checked by the tests, so a problem is a bug."""
    registry, problems = build_registry(tomllib.loads(_shipped_text()), None, SHIPPED_NAME)
    if registry is None:
        raise RuntimeError("; ".join(problems))
    return registry


def read_registry(models_file: str | None) -> tuple[ModelRegistry | None, list[str]]:
    """The registry with MODELS_FILE (a path, or None) over the shipped file; or the problems,
    one line each."""
    shipped = tomllib.loads(_shipped_text())
    if not models_file:
        return build_registry(shipped, None, SHIPPED_NAME)
    where = f"MODELS_FILE {models_file}"
    try:
        text = Path(models_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return None, [f"{where} cannot be read: {reason.lower()}."]
    try:
        operator = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{where} is not valid TOML: {exc}."]
    return build_registry(shipped, operator, where)


def build_registry(
    shipped: Mapping[str, Any], operator: Mapping[str, Any] | None, where: str
) -> tuple[ModelRegistry | None, list[str]]:
    """Entries of ``shipped`` with ``operator``'s fields over them, field by field (``prices``
    too); new ids are added after the shipped ones."""
    problems: list[str] = []
    top = dict(shipped)
    extra = sorted(set(operator or {}) - {"prices_date", "models"})
    if extra:
        problems.append(
            f"{where}: unknown setting '{extra[0]}'; a models file has prices_date and [models.\"<id>\"]."
        )
    date = (operator or {}).get("prices_date", top.get("prices_date"))
    raw: dict[str, Any] = {name: dict(fields) for name, fields in top.get("models", {}).items()}
    theirs = (operator or {}).get("models", {})
    if not isinstance(theirs, dict):
        theirs = {}
        problems.append(f'{where}: models must be tables, one [models."<id>"] per model.')
    touched: set[str] = set()
    for name, fields in theirs.items():
        touched.add(name)
        if not isinstance(fields, dict):
            problems.append(f"{where}: model '{name}' must be a table of fields.")
            continue
        raw[name] = _merged(raw.get(name, {}), fields)
    entries = []
    for name, fields in raw.items():
        try:
            entries.append(_entry(name, fields, added=name not in shipped.get("models", {})))
        except EntryProblem as exc:
            problems.append(f"{where if name in touched else SHIPPED_NAME}: model '{name}': {exc}")
    try:
        prices_date = _date(date, "prices_date")
    except EntryProblem as exc:
        problems.append(f"{where}: {exc}")
    if problems:
        return None, problems
    return ModelRegistry(tuple(entries), prices_date), []


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**base, **over}
    if isinstance(base.get("prices"), dict) and isinstance(over.get("prices"), dict):
        merged["prices"] = {**base["prices"], **over["prices"]}
    return merged


def _entry(name: str, fields: Mapping[str, Any], *, added: bool) -> ModelCapabilities:
    if not _ID.fullmatch(name):
        raise EntryProblem("an id has lower-case letters, digits, '.', '-' and '_' only.")
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise EntryProblem(f"unknown field '{unknown[0]}'; the fields are {', '.join(_FIELDS)}.")
    missing = [f for f in _REQUIRED if f not in fields]
    if added and missing:
        raise EntryProblem(f"a new model needs {', '.join(missing)}.")
    family = fields.get("class")
    if not isinstance(family, str) or not family.strip():
        raise EntryProblem("class must be a word such as flash or pro.")
    api = fields.get("api", GENERATE_CONTENT)
    if api not in APIS:
        raise EntryProblem(f"api must be one of {', '.join(APIS)}, not {api!r}.")
    ratios = _words(fields, "aspect_ratios", _RATIO.fullmatch, "ratios like 16:9", empty=False)
    sizes = tuple(normalise_size(s) for s in _words(fields, "image_sizes", _SIZE.fullmatch, "sizes like 1K"))
    levels = _words(fields, "thinking_levels", THINKING_LEVELS.__contains__, ", ".join(THINKING_LEVELS))
    most = fields.get("max_input_images")
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise EntryProblem(f"max_input_images must be a whole number of at least 1, not {most!r}.")
    prices = _prices(fields["prices"], sizes) if "prices" in fields else None
    return ModelCapabilities(
        name,
        ratios,
        sizes,
        most,
        prices=prices,
        thinking_levels=levels,
        family=family.strip().lower(),
        api=api,
        released=_date(fields.get("released", ""), "released"),
        base=name,
    )


def _words(
    fields: Mapping[str, Any], name: str, fits: Any, kind: str, *, empty: bool = True
) -> tuple[str, ...]:
    value = fields.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and fits(v.strip()) for v in value):
        raise EntryProblem(f"{name} must be a list of {kind}, not {value!r}.")
    if not value and not empty:
        raise EntryProblem(f"{name} must name at least one.")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _prices(value: Any, sizes: tuple[str, ...]) -> ModelPrices:
    if not isinstance(value, dict):
        raise EntryProblem("prices must be a table.")
    unknown = sorted(set(value) - {*_PRICE_FIELDS, "tokens_per_image"})
    if unknown:
        raise EntryProblem(f"prices has an unknown field '{unknown[0]}'.")
    dollars = []
    for field in _PRICE_FIELDS:
        amount = value.get(field)
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            raise EntryProblem(f"prices.{field} must be US dollars per million tokens, not {amount!r}.")
        dollars.append(float(amount))
    tokens = value.get("tokens_per_image")
    if not isinstance(tokens, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in tokens.values()
    ):
        raise EntryProblem("prices.tokens_per_image must map each image size to a whole number of tokens.")
    by_size = {normalise_size(size): n for size, n in tokens.items()}
    lacking = [s for s in sizes or ("1K",) if s not in by_size]
    if lacking:
        raise EntryProblem(f"prices.tokens_per_image has no tokens for size {lacking[0]}.")
    text_in, image_in, image_out, text_out = dollars
    return ModelPrices(text_in, image_in, image_out, text_out, MappingProxyType(by_size))


def _date(value: Any, name: str) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value == "":
        return ""
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise EntryProblem(f"{name} must be a date like 2026-05-28, not {value!r}.") from None
