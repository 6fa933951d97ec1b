"""Slack text in and out: prompts from Slack markup, and our text made safe to post."""

from __future__ import annotations

import re

# Slack's control sequences: <@U123>, <@U123|name>, <#C123|general>, <!here>, <!subteam^S1|@team>,
# <!date^...|fallback>, <https://x|label>, <mailto:a@b|a@b>.
_CONTROL = re.compile(r"<([^<>\n]*)>")
_SPACES = re.compile(r"[ \t]{2,}")
# Slack truncates a message's text at 40,000 characters and recommends 4,000; a section block
# takes at most 3,000.
MESSAGE_LIMIT = 3900
SECTION_LIMIT = 3000


def prompt_from_slack(text: str, bot_user_id: str | None) -> str:
    """A prompt from a Slack message: our own mention removed, other markup turned into the words
    a person sees, and the three HTML entities Slack escapes (``&amp; &lt; &gt;``) unescaped."""

    def plain(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            user = target[1:]
            return " " if user == bot_user_id else "@" + (label or user)
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            special = target[1:]
            if special.startswith(("subteam^", "date^")):
                return label
            return "@" + special
        return label or target

    converted = _CONTROL.sub(plain, text)
    # &amp; last, so "&amp;lt;" (a literal "&lt;" typed by the user) stays "&lt;".
    converted = converted.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    lines = (_SPACES.sub(" ", line).strip() for line in converted.splitlines())
    return "\n".join(lines).strip()


def mentions(text: str, user_id: str | None) -> bool:
    """Whether ``text`` (raw Slack markup) mentions ``user_id``."""
    return bool(user_id) and (f"<@{user_id}>" in text or f"<@{user_id}|" in text)


def escape(text: str) -> str:
    """Make text literal in a Slack message: ``<!channel>``, ``<!here>`` or ``<@U123>`` echoed from a
    prompt (or a file name) must show as text and never notify anyone. Slack only parses mentions
    written in angle brackets (``parse`` defaults to ``none``, so a bare ``@here`` is just text),
    and these three characters are the whole escaping scheme."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chunks(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split text into pieces under ``limit`` characters, at paragraph or line breaks when possible."""
    text = text.strip()
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n\n", 0, limit)
        if cut <= 0:
            cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces
