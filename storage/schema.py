"""The shared schema as it stands at the latest migration: every table both databases hold, its
columns in order, and each column's type on each database.

Queries, row reading and ``migrate-db`` read columns from here. The migrations
(``storage.migrations``, ``storage.pg_migrations``) are the history that builds this shape;
``tests/test_schema.py`` checks that both histories arrive exactly here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Neutral column kinds and what each is called on each database.
ID, INT, REAL, TEXT, BYTES = "id", "int", "real", "text", "bytes"
TYPES: dict[str, dict[str, str]] = {
    "sqlite": {ID: "INTEGER", INT: "INTEGER", REAL: "REAL", TEXT: "TEXT", BYTES: "BLOB"},
    "postgresql": {ID: "bigint", INT: "bigint", REAL: "double precision", TEXT: "text", BYTES: "bytea"},
}


@dataclass(frozen=True, slots=True)
class Table:
    """One table: its name and its (column, kind) pairs in order."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def insert(self, *, returning: str = "") -> str:
        """``INSERT INTO`` every column but a generated id, with $1..$n placeholders."""
        names = [name for name, kind in self.columns if kind != ID]
        values = ", ".join(f"${n}" for n in range(1, len(names) + 1))
        tail = f" RETURNING {returning}" if returning else ""
        return f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({values}){tail}"


_KEY = (("platform", TEXT), ("workspace", TEXT), ("channel", TEXT), ("thread", TEXT))
# What a turn cost, kept on the turn and again in the ledger that outlives forgetting.
USAGE_COUNTS = (
    ("prompt_tokens", INT),
    ("output_tokens", INT),
    ("thought_tokens", INT),
    ("total_tokens", INT),
    ("images_generated", INT),
    ("prompt_by_modality", TEXT),
    ("output_by_modality", TEXT),
)

CONVERSATIONS = Table(
    "conversations",
    (("id", ID), *_KEY, ("head_turn_id", INT), ("created_at", REAL), ("updated_at", REAL)),
)
TURNS = Table(
    "turns",
    (
        ("id", ID),
        ("conversation_id", INT),
        ("parent_id", INT),
        ("user_content", TEXT),
        ("model_content", TEXT),
        ("model", TEXT),
        ("author_id", TEXT),
        ("created_at", REAL),
        *USAGE_COUNTS,
        ("cost_usd", REAL),
    ),
)
BLOBS = Table("blobs", (("sha256", TEXT), ("mime_type", TEXT), ("size", INT), ("data", BYTES)))
TURN_BLOBS = Table("turn_blobs", (("turn_id", INT), ("sha256", TEXT)))
SETTINGS = Table("settings", (("scope", TEXT), ("name", TEXT), ("value", TEXT)))
PROCESSED_MESSAGES = Table(
    "processed_messages",
    (
        ("platform", TEXT),
        ("channel", TEXT),
        ("message_id", TEXT),
        ("claimed_at", REAL),
        ("workspace", TEXT),
        ("thread", TEXT),
        ("finished_at", REAL),
        ("claim_token", TEXT),
    ),
)
POSTED_MESSAGES = Table(
    "posted_messages", (("platform", TEXT), ("channel", TEXT), ("message_id", TEXT), ("turn_id", INT))
)
PINS = Table(
    "pins",
    (
        ("platform", TEXT),
        ("workspace", TEXT),
        ("name", TEXT),
        ("sha256", TEXT),
        ("pinned_by", TEXT),
        ("created_at", REAL),
    ),
)
USAGE_LOG = Table(
    "usage_log",
    (
        ("id", ID),
        ("turn_id", INT),
        ("author_id", TEXT),
        ("model", TEXT),
        ("created_at", REAL),
        *USAGE_COUNTS,
        *_KEY[:3],
        ("cost_usd", REAL),
    ),
)

# Parents before children, so every foreign key holds as rows are copied in this order.
TABLES: tuple[Table, ...] = (
    CONVERSATIONS,
    TURNS,
    BLOBS,
    TURN_BLOBS,
    PINS,
    SETTINGS,
    PROCESSED_MESSAGES,
    POSTED_MESSAGES,
    USAGE_LOG,
)

# Kept by each database for itself and never copied by ``migrate-db``: the key that signs editor
# links (a new deployment makes its own) and the links already used (they expire within minutes).
SECRETS = Table("secrets", (("name", TEXT), ("value", BYTES), ("created_at", REAL)))
USED_LINKS = Table(
    "used_links",
    (
        ("link_id", TEXT),
        ("expires_at", REAL),
        # How the edit the link submitted ended (migration 10 on SQLite, 7 on PostgreSQL).
        ("outcome", TEXT),
        ("message", TEXT),
        ("result_sha256", TEXT),
        ("result_mime", TEXT),
    ),
)
# How each turn ended and how long it took (the dashboard's latency and failures): operational
# figures of the deployment that has them, not history a copy needs.
TURN_LOG = Table(
    "turn_log",
    (
        ("id", ID),
        ("created_at", REAL),
        ("platform", TEXT),
        ("kind", TEXT),
        ("outcome", TEXT),
        ("reason", TEXT),
        ("latency_s", REAL),
    ),
)
OWN_TABLES: tuple[Table, ...] = (SECRETS, USED_LINKS, TURN_LOG)

# Columns only PostgreSQL has, for coordinating several processes (storage.pg_processes).
POSTGRES_ONLY: dict[str, tuple[tuple[str, str], ...]] = {"processed_messages": (("owner", TEXT),)}
