"""The on-disk shape: connection settings, the migrations, and how values (timestamps) are written.

Migrations are an append-only list of SQL scripts; `schema_version` holds how many have run. Never edit a
script that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

# How long a connection waits for another one's write lock before failing with "database is locked". The
# writer thread's transactions last milliseconds; 5 s covers a CLI `token create` racing a busy node (and a
# slow disk) without hanging a caller for long on a real deadlock.
BUSY_TIMEOUT_MS = 5000

# Each entry is one migration; pending ones run in one transaction with the version bump. Index i brings the schema from version i to i + 1.
MIGRATIONS: tuple[str, ...] = (
    # 1: chargers and API tokens.
    """
    CREATE TABLE chargers (
        id TEXT PRIMARY KEY,
        password_hash TEXT NULL,
        vendor TEXT NULL,
        model TEXT NULL,
        serial TEXT NULL,
        firmware TEXT NULL,
        protocol TEXT NULL,
        registered_at TEXT NOT NULL,
        last_boot_at TEXT NULL,
        accepted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        label TEXT NULL,
        created_at TEXT NOT NULL
    );
    """,
)


def connect(path: str, *, query_only: bool = False) -> sqlite3.Connection:
    """Open `path` with the store's settings: WAL, synchronous=NORMAL, a busy timeout, and driver autocommit
    (`isolation_level=None`: the store issues BEGIN/COMMIT itself, so the driver never opens a transaction
    behind its back). `query_only` makes the connection refuse writes (for the reader).

    `check_same_thread=False` because a connection is created on one thread and owned by another (the writer
    thread); each connection is still used by one thread at a time. Raises sqlite3.Error if the file cannot be
    opened or is not a database.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer and the writer never blocks readers; it is a property of the
        # file, so setting it again is a no-op.
        if not query_only:
            conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL under WAL: a commit is durable against an application crash; a power cut may lose the last
        # commits but never corrupts the database. Full fsync per commit would cap a boot storm's writes.
        conn.execute("PRAGMA synchronous = NORMAL")
        if query_only:
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of migrations applied to the database behind `conn` (0 for a new file)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if has_table is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to the newest schema; returns the version it ends at.

    Safe to call from several processes at once (the CLI and a node): the version is read again under the
    write lock (BEGIN IMMEDIATE) and the pending migrations commit together with the version bump. Raises RuntimeError if the
    file was written by a newer ampgate (more migrations than this one knows), sqlite3.Error on I/O failure.
    """
    if schema_version(conn) == len(MIGRATIONS):
        return len(MIGRATIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = schema_version(conn)
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"database schema version {version} is newer than this ampgate knows ({len(MIGRATIONS)})"
            )
        for script in MIGRATIONS[version:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    # sqlite3's executescript() commits any open transaction first, which would split a migration from its
    # version bump; run the statements one by one instead. Migrations contain no ';' inside literals.
    return [s.strip() for s in script.split(";") if s.strip()]


def iso_utc(at: datetime) -> str:
    """`at` as stored: ISO 8601 UTC with milliseconds and a 'Z' (fixed width, so text order is time order).

    Raises ValueError for a naive datetime: its zone is unknown, and guessing would store a wrong instant.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime has no zone; pass an aware datetime (e.g. clock.now())")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    """A stored timestamp back as an aware UTC datetime; None stays None. Raises ValueError if malformed."""
    return None if text is None else datetime.fromisoformat(text)
