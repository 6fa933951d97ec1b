"""DATABASE_URL: SQLite paths and PostgreSQL URLs, checked, and their passwords kept out of logs."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite:///data/bot.sqlite3"
DEFAULT_DATABASE_PATH = Path("data/bot.sqlite3")
POSTGRES_SCHEMES = ("postgresql", "postgres")
_POSTGRES_FORM = "use postgresql://user:password@host:5432/database"
_SQLITE_FORM = f"use {DEFAULT_DATABASE_URL}"


def is_postgres_url(url: str) -> bool:
    return url.partition("://")[0] in POSTGRES_SCHEMES


def database_password(url: str) -> str | None:
    """The password in a PostgreSQL URL (a secret: never logged), or None."""
    if not is_postgres_url(url):
        return None
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def redacted_database_url(url: str) -> str:
    """The URL with its password replaced, fit for messages and logs."""
    password = database_password(url)
    return url.replace(f":{password}@", ":***@", 1) if password else url


def check_postgres_url(url: str) -> None:
    """Raise ValueError (one line, without the password) if a PostgreSQL URL is malformed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError(f"DATABASE_URL is a malformed PostgreSQL URL; {_POSTGRES_FORM}.") from None
    if not (parts.hostname or "host=" in parts.query):
        raise ValueError(f"DATABASE_URL names no PostgreSQL host; {_POSTGRES_FORM}.")


def database_path_from_url(url: str) -> Path:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs/path.db`` -> ``/abs/path.db``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"DATABASE_URL {url!r} is not a URL; {_SQLITE_FORM}.")
    if scheme != "sqlite":
        # A driver suffix (postgresql+asyncpg://) is PostgreSQL spelled for another library.
        advice = _POSTGRES_FORM if scheme.startswith(("postgresql+", "postgres+")) else _SQLITE_FORM
        raise ValueError(f"DATABASE_URL scheme {scheme!r} is not supported; {advice}.")
    path = rest[1:]
    malformed = not rest.startswith("/") or rest == "/" or path.endswith("/") or ":memory:" in path
    if malformed or urlsplit(url).query:
        raise ValueError(
            f"DATABASE_URL {url!r} is malformed; use sqlite:///relative.db or sqlite:////abs/path.db."
        )
    return Path(path)


def check_database_url(url: str) -> None:
    """Raise ValueError with one line naming DATABASE_URL if ``url`` is neither form."""
    if is_postgres_url(url):
        check_postgres_url(url)
    else:
        database_path_from_url(url)
