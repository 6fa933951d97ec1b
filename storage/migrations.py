"""Ordered SQLite schema migrations; step N brings a database from ``user_version`` N-1 to N."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step, applied in a single transaction together with ``user_version = version``.

    Statements run one by one (never as a script, which would commit the open transaction).
    Never edit a released step; append a new one.
    """

    version: int
    description: str
    statements: tuple[str, ...]


# The same on both databases (storage.pg_migrations applies them too): a named secret made once
# and shared by every process, and each used link until it expires (then it is purged).
SIGNED_LINKS: tuple[str, ...] = (
    """
    CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value {bytes} NOT NULL,
        created_at {real} NOT NULL
    )
    """,
    """
    CREATE TABLE used_links (
        link_id TEXT PRIMARY KEY,
        expires_at {real} NOT NULL
    )
    """,
    "CREATE INDEX used_links_by_expiry ON used_links (expires_at)",
)


# The same on both databases: the reference board. A pin names a stored image (content-addressed,
# so an image pinned in several workspaces or also in a conversation is stored once) for one
# Discord server, Slack workspace or console. No cascade towards blobs: forgetting a conversation
# keeps a pinned image, and only the last pin or turn to let go of it deletes it.
PINS: tuple[str, ...] = (
    """
    CREATE TABLE pins (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL REFERENCES blobs (sha256),
        pinned_by TEXT NOT NULL,
        created_at {real} NOT NULL,
        PRIMARY KEY (platform, workspace, name)
    )
    """,
    "CREATE INDEX pins_by_blob ON pins (sha256)",
)


# The same on both databases: how each turn ended and how long it took, for the operators'
# dashboard (storage.sql_reports). Fixed words and a number: no person, prompt or place.
TURN_LOG: tuple[str, ...] = (
    """
    CREATE TABLE turn_log (
        id {id},
        created_at {real} NOT NULL,
        platform TEXT NOT NULL,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        latency_s {real} NOT NULL
    )
    """,
    "CREATE INDEX turn_log_by_time ON turn_log (created_at)",
)

# The same on both databases: how the edit a used link submitted ended, so whichever process a
# polling page reaches can show it (the result image by its blob's digest).
LINK_OUTCOMES: tuple[str, ...] = (
    "ALTER TABLE used_links ADD COLUMN outcome TEXT",
    "ALTER TABLE used_links ADD COLUMN message TEXT",
    "ALTER TABLE used_links ADD COLUMN result_sha256 TEXT",
    "ALTER TABLE used_links ADD COLUMN result_mime TEXT",
)


def spelled(
    statements: tuple[str, ...], *, bytes_type: str, real_type: str, id_type: str = ""
) -> tuple[str, ...]:
    """Statements shared by both databases, with each one's column types."""
    return tuple(s.format(bytes=bytes_type, real=real_type, id=id_type) for s in statements)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="conversations, turns, content-addressed blobs, settings, processed messages",
        statements=(
            """
            CREATE TABLE conversations (
                id INTEGER PRIMARY KEY,
                platform TEXT NOT NULL,
                workspace TEXT NOT NULL,
                channel TEXT NOT NULL,
                thread TEXT NOT NULL,
                head_turn_id INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (platform, workspace, channel, thread)
            )
            """,
            # The console resumes the most recently updated conversation of a channel.
            """
            CREATE INDEX conversations_by_channel
                ON conversations (platform, workspace, channel, updated_at)
            """,
            # AUTOINCREMENT: ids of forgotten turns are never reused, so a stale button that
            # carries a turn id can never act on somebody else's conversation.
            """
            CREATE TABLE turns (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                conversation_id INTEGER NOT NULL
                    REFERENCES conversations (id) ON DELETE CASCADE,
                parent_id INTEGER REFERENCES turns (id) ON DELETE CASCADE,
                user_content TEXT NOT NULL,
                model_content TEXT NOT NULL,
                model TEXT NOT NULL,
                author_id TEXT NOT NULL,
                created_at REAL NOT NULL,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                thought_tokens INTEGER NOT NULL DEFAULT 0,
                total_tokens INTEGER NOT NULL DEFAULT 0,
                images_generated INTEGER NOT NULL DEFAULT 0,
                prompt_by_modality TEXT NOT NULL DEFAULT '{}',
                output_by_modality TEXT NOT NULL DEFAULT '{}'
            )
            """,
            "CREATE INDEX turns_by_conversation ON turns (conversation_id)",
            # Needed by the parent_id foreign key whenever turns are deleted.
            "CREATE INDEX turns_by_parent ON turns (parent_id)",
            """
            CREATE TABLE blobs (
                sha256 TEXT PRIMARY KEY,
                mime_type TEXT NOT NULL,
                size INTEGER NOT NULL,
                data BLOB NOT NULL
            )
            """,
            # No cascade towards blobs: a blob still referenced by any turn cannot be deleted.
            """
            CREATE TABLE turn_blobs (
                turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
                sha256 TEXT NOT NULL REFERENCES blobs (sha256),
                PRIMARY KEY (turn_id, sha256)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX turn_blobs_by_blob ON turn_blobs (sha256)",
            """
            CREATE TABLE settings (
                scope TEXT NOT NULL,
                name TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (scope, name)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE processed_messages (
                platform TEXT NOT NULL,
                channel TEXT NOT NULL,
                message_id TEXT NOT NULL,
                claimed_at REAL NOT NULL,
                PRIMARY KEY (platform, channel, message_id)
            ) WITHOUT ROWID
            """,
        ),
    ),
    Migration(
        version=2,
        description="usage ledger that outlives forgotten conversations, backfilled from turns",
        statements=(
            # Billing and per-user limits must not be reset by forgetting a conversation, so
            # usage is also kept apart from the turns (counts, author and model; no content).
            """
            CREATE TABLE usage_log (
                id INTEGER PRIMARY KEY,
                turn_id INTEGER,
                author_id TEXT NOT NULL,
                model TEXT NOT NULL,
                created_at REAL NOT NULL,
                prompt_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                thought_tokens INTEGER NOT NULL DEFAULT 0,
                total_tokens INTEGER NOT NULL DEFAULT 0,
                images_generated INTEGER NOT NULL DEFAULT 0,
                prompt_by_modality TEXT NOT NULL DEFAULT '{}',
                output_by_modality TEXT NOT NULL DEFAULT '{}'
            )
            """,
            "CREATE INDEX usage_log_by_time ON usage_log (created_at)",
            "CREATE INDEX usage_log_by_author ON usage_log (author_id, created_at)",
            """
            INSERT INTO usage_log (
                turn_id, author_id, model, created_at, prompt_tokens, output_tokens,
                thought_tokens, total_tokens, images_generated, prompt_by_modality,
                output_by_modality
            )
            SELECT id, author_id, model, created_at, prompt_tokens, output_tokens,
                   thought_tokens, total_tokens, images_generated, prompt_by_modality,
                   output_by_modality
            FROM turns ORDER BY id
            """,
        ),
    ),
    Migration(
        version=3,
        description="platform messages that carry a turn's reply, for reply-to-an-earlier-image",
        statements=(
            # A user replying to one of the bot's earlier images continues from that image's
            # turn; the platform gives us only the message id, so keep the mapping. Rows go
            # with their turn when a conversation is forgotten.
            """
            CREATE TABLE posted_messages (
                platform TEXT NOT NULL,
                channel TEXT NOT NULL,
                message_id TEXT NOT NULL,
                turn_id INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
                PRIMARY KEY (platform, channel, message_id)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX posted_messages_by_turn ON posted_messages (turn_id)",
        ),
    ),
    Migration(
        version=4,
        description="usage ledger by platform, workspace and channel, with estimated cost",
        statements=(
            # Per-channel and per-workspace daily caps and the spend cap count from the ledger,
            # which outlives forgotten conversations; rows from before keep empty places.
            "ALTER TABLE usage_log ADD COLUMN platform TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE usage_log ADD COLUMN workspace TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE usage_log ADD COLUMN channel TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE usage_log ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0",
            "ALTER TABLE turns ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0",
            """
            UPDATE usage_log SET
                platform = c.platform, workspace = c.workspace, channel = c.channel
            FROM turns AS t JOIN conversations AS c ON c.id = t.conversation_id
            WHERE t.id = usage_log.turn_id
            """,
            "CREATE INDEX usage_log_by_place ON usage_log (platform, workspace, channel, created_at)",
            "CREATE INDEX usage_log_by_platform_author ON usage_log (platform, author_id, created_at)",
            # Retention finds conversations nobody has touched for a while.
            "CREATE INDEX conversations_by_update ON conversations (updated_at)",
        ),
    ),
    Migration(
        version=5,
        description="where each claimed message belongs and whether its turn finished",
        statements=(
            # A turn cut off by a crash leaves no history, but its message stays claimed so it
            # is never generated twice; remembering where it was lets the bot tell the person
            # after a restart instead of leaving them waiting. Rows from before count as done.
            "ALTER TABLE processed_messages ADD COLUMN workspace TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE processed_messages ADD COLUMN thread TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE processed_messages ADD COLUMN finished_at REAL",
            "UPDATE processed_messages SET finished_at = claimed_at",
            """
            CREATE INDEX processed_messages_unfinished ON processed_messages (platform, claimed_at)
            WHERE finished_at IS NULL
            """,
        ),
    ),
    Migration(
        version=6,
        description="which attempt claimed a message",
        statements=(
            # A claim retried after the database went away mid-call is recognised as the same
            # attempt's (taken), not as a second copy of the message (a duplicate).
            "ALTER TABLE processed_messages ADD COLUMN claim_token TEXT",
        ),
    ),
    Migration(
        version=7,
        description="the key that signs editor links, and the links already used",
        statements=spelled(SIGNED_LINKS, bytes_type="BLOB", real_type="REAL"),
    ),
    Migration(
        version=8,
        description="the reference board: named images pinned for a whole workspace",
        statements=spelled(PINS, bytes_type="BLOB", real_type="REAL"),
    ),
    Migration(
        version=9,
        description="how each turn ended and how long it took, for the operators' dashboard",
        statements=spelled(TURN_LOG, bytes_type="BLOB", real_type="REAL", id_type="INTEGER PRIMARY KEY"),
    ),
    Migration(
        version=10,
        description="how the edit each used editor link submitted ended, for every process",
        statements=LINK_OUTCOMES,
    ),
)

LATEST_VERSION: int = MIGRATIONS[-1].version
