"""Inline flags in prompts (``--ar 16:9``, ``--size 2K``, ``--model id``, ``--n 3``, ``--think high``,
``--ref name``), parsed the same way on every platform."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.gemini.capabilities import ModelCapabilities
from bot.gemini.model_choice import validate_model
from bot.gemini.registry import ModelRegistry, shipped
from bot.text import messages, pin_words
from bot.text.settings import (
    SettingError,
    validate_aspect_ratio,
    validate_image_size,
    validate_thinking_level,
)

# How many takes ``--n`` may ask for at once (the API gives one image per request).
MIN_TAKES, MAX_TAKES = 2, 4

# Phones and Slack turn "--" into an en or em dash; accept those so "—ar 16:9" still works.
_FLAG = re.compile(
    r"(?<!\S)(?:--|—|–)(?P<name>ar|aspect|aspect-ratio|size|model|n|think|ref)"
    r"(?:[ =](?P<value>[^\s]+)|(?=\s|$))",
    re.IGNORECASE,
)
# A refusal names at most this many different problems; the rest are only counted.
_SHOWN_ERRORS = 2
_SPACES = re.compile(r"[ \t]{2,}")
# Invisible characters: zero-width spaces/joiners, BOM, word joiner, soft hyphen, and the bidi
# embedding/override/isolate controls that can make a prompt display differently from what it
# says. Right-to-left text itself (Arabic, Hebrew) is untouched.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """A prompt with its flags removed, the values they set, and one message per bad flag."""

    text: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    errors: tuple[str, ...] = field(default=())
    model: str | None = None
    takes: int = 1
    # --think: this turn's thinking level only (never stored).
    thinking_level: str | None = None
    # Pins named with ``--ref``, in the order written (each once).
    refs: tuple[str, ...] = ()

    @property
    def has_settings(self) -> bool:
        return self.aspect_ratio is not None or self.image_size is not None or self.model is not None

    @property
    def refusal(self) -> str | None:
        """One answer however many flags are wrong: the first two different problems, and how
        many more flags could not be used."""
        if not self.errors:
            return None
        shown = list(dict.fromkeys(self.errors))[:_SHOWN_ERRORS]
        more = len(self.errors) - len(shown)
        if not more:
            return " ".join(shown)
        flags = "flag" if more == 1 else "flags"
        return f"{' '.join(shown)} {more:,} more {flags} in this message can't be used either."


def clean_prompt(text: str) -> str:
    """Drop invisible and direction-override characters; keep every visible character."""
    return _INVISIBLE.sub("", text)


def parse_flags(
    text: str, caps: ModelCapabilities, allowed: Sequence[str] = (), models: ModelRegistry | None = None
) -> ParsedPrompt:
    """Strip ``--ar``/``--aspect``/``--size``/``--model``/``--n``/``--think``/``--ref`` flags from
    ``text`` and validate their values; a ratio, size or thinking level is checked against the
    ``--model`` model when one is given, else ``caps`` (the conversation's model), and a model
    against ``allowed`` (its capabilities from ``models``, the configuration's registry)."""
    text = clean_prompt(text)
    matches = [(m.group("name").lower(), m.group("value")) for m in _FLAG.finditer(text)]
    errors: list[str] = []
    model = _model(matches, allowed, errors)
    if model is not None:
        caps = (models or shipped()).capabilities_for(model)
    refs = _refs(matches, errors)
    aspect, size, takes = _values(matches, caps, errors)
    thinking = _thinking(matches, caps, errors)
    stripped = _FLAG.sub(" ", text)
    cleaned = "\n".join(_SPACES.sub(" ", line).strip() for line in stripped.splitlines()).strip()
    return ParsedPrompt(
        cleaned, aspect, size, tuple(errors), model, takes, thinking_level=thinking, refs=refs
    )


def _refs(matches: list[tuple[str, str | None]], errors: list[str]) -> tuple[str, ...]:
    refs: list[str] = []
    for name, value in matches:
        if name != "ref":
            continue
        try:
            if value is None:
                raise SettingError(pin_words.ref_needs_name())
            refs.append(pin_words.clean_name(value))
        except SettingError as exc:
            errors.append(exc.user_message)
    return tuple(dict.fromkeys(refs))


def _model(matches: list[tuple[str, str | None]], allowed: Sequence[str], errors: list[str]) -> str | None:
    model = None
    for name, value in matches:
        if name != "model":
            continue
        try:
            if value is None:
                raise SettingError(_missing("--model", tuple(allowed[:1]) or ("gemini-3.1-flash-image",)))
            model = validate_model(value, allowed)
        except SettingError as exc:
            errors.append(exc.user_message)
    return model


def _values(
    matches: list[tuple[str, str | None]], caps: ModelCapabilities, errors: list[str]
) -> tuple[str | None, str | None, int]:
    aspect: str | None = None
    size: str | None = None
    takes = 1
    for name, value in matches:
        try:
            if name in ("model", "think", "ref"):
                continue
            if name == "n":
                takes = _takes(value)
            elif name == "size":
                # On a single-size model any value is refused; say so rather than suggest one.
                if value is None and caps.supports_sizes():
                    raise SettingError(_missing("--size", caps.image_sizes[:1]))
                size = validate_image_size(value or "", caps)
            else:
                if value is None:
                    raise SettingError(_missing(f"--{name}", ("16:9",)))
                aspect = validate_aspect_ratio(value, caps)
        except SettingError as exc:
            errors.append(exc.user_message)
    return aspect, size, takes


def _thinking(
    matches: list[tuple[str, str | None]], caps: ModelCapabilities, errors: list[str]
) -> str | None:
    level = None
    for name, value in matches:
        if name == "think":
            try:
                if value is None and caps.supports_thinking():
                    raise SettingError(_missing("--think", caps.thinking_levels[-1:]))
                level = validate_thinking_level(value or "", caps)
            except SettingError as exc:
                errors.append(exc.user_message)
    return level


def _takes(value: str | None) -> int:
    if value is not None and value.isdigit() and MIN_TAKES <= int(value) <= MAX_TAKES:
        return int(value)
    shown = f"--n {value}" if value is not None else "--n"
    raise SettingError(messages.bad_takes(shown))


def _missing(flag: str, example: tuple[str, ...]) -> str:
    return messages.flag_needs_value(flag, example[0])
