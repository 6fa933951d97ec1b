"""Parsers from environment strings to typed settings, each failing with one plain problem."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator

from bot.config.database import check_database_url
from bot.config.problems import line, problem
from bot.entry.platforms import PLATFORMS
from bot.gemini.capabilities import normalise_size

UNLIMITED = ("all", "unlimited", "none")
_SHARD_FORM = "use shard numbers such as 0,1 or 0-3"


def _on_text(parse: Callable[[str], Any]) -> BeforeValidator:
    """Strings come from the environment and are parsed; any other value is already parsed (a
    default, or a copy) and passes through unchanged."""
    return BeforeValidator(lambda value: parse(value) if isinstance(value, str) else value)


def _whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise problem(f"must be a whole number, not {raw!r}.") from None


def _bounded_whole(minimum: int, maximum: int | None, times: int, per: int) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = _whole_number(raw)
        if value < minimum:
            raise problem(f"must be at least {minimum}, not {value}.")
        if maximum is not None and value > maximum:
            raise problem(f"must be between {minimum} and {maximum}, not {value}.")
        return value * times if per == 1 else value * times / per

    return parse


def whole(minimum: int = 0, maximum: int | None = None, times: int = 1, per: int = 1) -> BeforeValidator:
    """A whole number within bounds, in another unit: ``times`` for MB to bytes, ``per`` for ms to s."""
    return _on_text(_bounded_whole(minimum, maximum, times, per))


def whole_or_unlimited(minimum: int = 0) -> BeforeValidator:
    """A whole number, or ``all`` / ``unlimited`` / ``none`` for no bound (None)."""
    bounded = _bounded_whole(minimum, None, 1, 1)
    return _on_text(lambda raw: None if raw.lower() in UNLIMITED else bounded(raw))


def _positive(raw: str, text: str, not_a_number: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise problem(f"{not_a_number}, not {text!r}.") from None
    if value <= 0:
        raise problem(f"must be greater than 0, not {raw}.")
    return value


def seconds() -> BeforeValidator:
    return _on_text(lambda raw: _positive(raw, raw, "must be a number of seconds"))


def dollars() -> BeforeValidator:
    """An amount such as 5, 12.50 or $12.50."""
    amount = "must be an amount in US dollars such as 5 or 12.50"
    return _on_text(lambda raw: _positive(raw.lstrip("$"), raw.lstrip("$"), amount))


def boolean() -> BeforeValidator:
    def parse(raw: str) -> bool:
        word = raw.lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise problem(f"must be true or false, not {word!r}.")

    return _on_text(parse)


def http_url() -> BeforeValidator:
    def parse(raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
            raise problem(f"must be an http(s) URL, not {raw!r}.")
        return raw

    return _on_text(parse)


def public_url() -> BeforeValidator:
    """Where people reach the HTTP listener: http(s), a host, perhaps a path, no trailing slash."""

    def parse(raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise problem(f"must be an http(s) URL such as https://bot.example.com, not {raw!r}.")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise problem(f"must be a plain address without ?query, #fragment or user, not {raw!r}.")
        return raw.rstrip("/")

    return _on_text(parse)


def time_zone() -> BeforeValidator:
    """An IANA time zone name such as UTC or Europe/Paris."""

    def parse(raw: str) -> str:
        try:
            ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise problem(f"must be a time zone name such as UTC or Europe/Paris, not {raw!r}.") from None
        return raw

    return _on_text(parse)


def secret_of_length(minimum: int) -> BeforeValidator:
    """A secret at least ``minimum`` characters long (its value never appears in the problem)."""

    def parse(raw: str) -> str:
        if len(raw) < minimum:
            raise problem(f"must be at least {minimum} characters long (a long random string).")
        return raw

    return _on_text(parse)


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def names() -> BeforeValidator:
    """A comma-separated set of ids or names."""
    return _on_text(lambda raw: frozenset(_items(raw)))


def distinct_names() -> BeforeValidator:
    """A comma-separated list, each once, in the order given."""
    return _on_text(lambda raw: tuple(dict.fromkeys(_items(raw))))


def admins() -> BeforeValidator:
    def parse(raw: str) -> frozenset[str]:
        entries = frozenset(_items(raw))
        bad = sorted(e for e in entries if e.partition(":")[0] not in PLATFORMS or not e.partition(":")[2])
        if bad:
            raise problem(f"entries must look like discord:123456 or slack:U012ABC, not {', '.join(bad)}.")
        return entries

    return _on_text(parse)


def numeric_ids() -> BeforeValidator:
    def parse(raw: str) -> tuple[int, ...]:
        ids = _items(raw)
        if not all(part.isdigit() for part in ids):
            raise problem(f"must be a numeric id or a comma-separated list of them, not {raw!r}.")
        return tuple(int(part) for part in ids)

    return _on_text(parse)


def one_of(choices: type[Enum] | tuple[str, ...], upper: bool = False) -> BeforeValidator:
    """One of a few words, in any case; the problem lists them."""
    words = tuple(c.value for c in choices) if isinstance(choices, type) else choices
    listed = f"{', '.join(words[:-1])} or {words[-1]}"

    def parse(raw: str) -> Any:
        word = raw.upper() if upper else raw.lower()
        if word not in words:
            raise problem(f"must be {listed}, not {word!r}.")
        return choices(word) if isinstance(choices, type) else word

    return _on_text(parse)


def database_url() -> BeforeValidator:
    def parse(raw: str) -> str:
        try:
            check_database_url(raw)
        except ValueError as exc:
            raise line(str(exc)) from None
        return raw

    return _on_text(parse)


def shard_count() -> BeforeValidator:
    def parse(raw: str) -> int:
        if not raw.isdigit():
            raise problem(f"must be a whole number, not {raw!r}.")
        if int(raw) < 1:
            raise problem(f"must be at least 1, not {raw}.")
        return int(raw)

    return _on_text(parse)


def shard_ids() -> BeforeValidator:
    """``0,1`` or ``0-3`` (or both, ``0-3,6``): sorted, each once."""

    def parse(raw: str) -> tuple[int, ...]:
        ids: set[int] = set()
        for part in (p.strip() for p in raw.split(",")):
            first, dash, last = part.partition("-")
            if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
                raise problem(f"must list shards, not {raw!r}; {_SHARD_FORM}.")
            low, high = int(first), int(last) if dash else int(first)
            if high < low:
                raise problem(f"range {part!r} runs backwards; write it as {high}-{low}.")
            ids.update(range(low, high + 1))
        return tuple(sorted(ids))

    return _on_text(parse)


def image_size() -> BeforeValidator:
    """``2k`` -> ``2K``, as the API wants it."""
    return _on_text(normalise_size)
