"""Hand-made mutants for behaviour mutmut's operators cannot reach (module-level constants)."""

from __future__ import annotations

# module path -> (text to replace, replacement); each text must occur exactly once.
HAND_MADE: dict[str, tuple[tuple[str, str], ...]] = {
    "bot/text/flags.py": (
        # Right-to-left marks dropped from the invisible set.
        ("\\u200b-\\u200f", "\\u200b-\\u200d"),
        # Isolates dropped.
        ("\\u2066-\\u2069", ""),
        # En/em dash no longer accepted as "--".
        ("(?:--|—|–)", "(?:--)"),
    ),
    "adapters/slack/files.py": (
        ('frozenset({"files.slack.com", "files.slack-gov.com"})', 'frozenset({"files.slack.com"})'),
    ),
    "adapters/guarded_download.py": (
        ("MAX_REDIRECTS = 3", "MAX_REDIRECTS = 2"),
        ("MAX_REDIRECTS = 3", "MAX_REDIRECTS = 4"),
        ('_DEFAULT_PORTS = {"http": 80, "https": 443}', '_DEFAULT_PORTS = {"http": 80}'),
        ("REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})", "REDIRECT_STATUSES = frozenset({302})"),
    ),
}
