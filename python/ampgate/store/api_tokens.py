"""API tokens (the operator API's bearer tokens, not the id tokens chargers present): roles, the rules for a
token's role and label, and `ApiTokenRepository`."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import NotFoundError, ValidationError
from ampgate.store.hashing import new_token, token_digest
from ampgate.store.schema import connect
from ampgate.store.store import Store

# Roles from least to most powerful; each includes everything the ones before it may do. viewer reads,
# operator sends commands to chargers, admin manages chargers and tokens.
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
# A label is a note for the operator ("grafana", "alice's laptop"); 200 characters is plenty and keeps a
# pasted file out of the table.
LABEL_MAX = 200
# How often a token's last_used_at is written: at most once per this many seconds per token, so a busy script's
# every request is not a write (the writer thread is the node's one, shared with charger traffic). The column is
# "last used, to the minute", enough to find tokens nobody uses.
LAST_USED_INTERVAL_S = 60.0
# The longest expiry a token may be given: ten years; beyond it, leave the expiry out.
EXPIRES_MAX = timedelta(days=3650)
_COLUMNS = "id, role, label, created_at, expires_at, revoked_at, last_used_at"


def validate_role(role: str) -> str:
    """Return `role` if it is one of ROLES, else raise ValidationError(field="role")."""
    if role not in ROLES:
        raise ValidationError(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def validate_label(label: str | None) -> str | None:
    """Return `label` if it is None or at most LABEL_MAX characters, else raise ValidationError(field="label")."""
    if label is not None and len(label) > LABEL_MAX:
        raise ValidationError(f"a token label is at most {LABEL_MAX} characters", field="label")
    return label


def role_at_least(role: str, minimum: str) -> bool:
    """True iff `role` may do what `minimum` may. An unknown `role` may do nothing; an unknown `minimum` is a
    programmer error (ValueError)."""
    if minimum not in ROLES:
        raise ValueError(f"unknown role {minimum!r}")
    return role in ROLES and ROLES.index(role) >= ROLES.index(minimum)


@dataclass(frozen=True)
class ApiTokenRow:
    """An API token as listed: never its secret nor the secret's digest."""

    id: int
    role: str
    label: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


def _token_row(values: tuple[object, ...]) -> ApiTokenRow:
    return ApiTokenRow(*values)  # type: ignore[arg-type]


def validate_expires_at(expires_at: datetime | None, now: datetime) -> datetime | None:
    """Return `expires_at` if it is None or an aware time after `now` and at most EXPIRES_MAX ahead, else raise
    ValidationError(field="expires_at")."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ValidationError("expires_at needs a time zone (e.g. Z)", field="expires_at")
    if expires_at <= now:
        raise ValidationError("expires_at is in the past", field="expires_at")
    if expires_at - now > EXPIRES_MAX:
        raise ValidationError(f"expires_at is at most {EXPIRES_MAX.days} days ahead", field="expires_at")
    return expires_at


def _insert(
    conn: sqlite3.Connection, digest: str, role: str, label: str | None, at: str, expires: str | None
) -> int:
    cur = conn.execute(
        "INSERT INTO api_tokens (token_hash, role, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        (digest, role, label, at, expires),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _revoke(conn: sqlite3.Connection, token_id: int, at: str) -> ApiTokenRow:
    # COALESCE: revoking twice keeps the first time (the verb is idempotent).
    conn.execute("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (at, token_id))
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no API token {token_id}", field="id")
    return _token_row(row)


class ApiTokenRepository:
    """The api_tokens table. Checks read the database on every request (an indexed lookup; there is no cache),
    so a token created, revoked or expired by any process counts at once."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Token id -> when its last_used_at was last written (the node's clock), to write it once a minute.
        self._used_written: dict[int, datetime] = {}

    def issue(
        self, role: str, label: str | None = None, expires_at: datetime | None = None
    ) -> tuple[ApiTokenRow, str]:
        """Create an API token with `role` (and `label`, `expires_at`) and return its row and the token in
        plaintext, the only time it exists in plaintext (only its SHA-256 is stored). Synchronous on its own
        short-lived connection, so the CLI can create a token while a node runs on the same file, and that node
        accepts it at once. Raises ValidationError naming `role`, `label` or `expires_at`, sqlite3.OperationalError
        if the database stays locked beyond the busy timeout."""
        validate_role(role)
        validate_label(label)
        now = self._store.now()
        validate_expires_at(expires_at, now)
        token = new_token()
        expires = None if expires_at is None else iso_utc(expires_at)
        with closing(connect(self._store.path)) as conn:
            token_id = _insert(conn, token_digest(token), role, label, iso_utc(now), expires)
            row = conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        return _token_row(row), token

    async def add(
        self, role: str, label: str | None = None, expires_at: datetime | None = None
    ) -> tuple[ApiTokenRow, str]:
        """`issue` through the node's writer (for the API: the trio thread never waits on a lock). Raises as
        `issue` does, or StoreClosedError after shutdown."""
        validate_role(role)
        validate_label(label)
        now = self._store.now()
        validate_expires_at(expires_at, now)
        token = new_token()
        expires = None if expires_at is None else iso_utc(expires_at)
        digest = token_digest(token)

        def op(db: sqlite_utils.Database) -> ApiTokenRow:
            token_id = _insert(db.conn, digest, role, label, iso_utc(now), expires)
            row = db.conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
            return _token_row(row)

        return await self._store.write(op), token

    def create(self, role: str, label: str | None = None, expires_at: datetime | None = None) -> str:
        """`issue`, returning the plaintext token only."""
        return self.issue(role, label, expires_at)[1]

    def role_for(self, token: str) -> str | None:
        """The role of `token`, or None if no such token exists, it is revoked or expired, or its stored role is
        unknown (fail closed). Reads the database on every call, an indexed lookup, so tokens made or revoked by
        another process count at once. Notes the use (last_used_at), written at most once per
        LAST_USED_INTERVAL_S per token, fire-and-forget."""
        row = self._store.reader.execute(
            "SELECT id, role, expires_at, revoked_at FROM api_tokens WHERE token_hash = ?",
            (token_digest(token),),
        ).fetchone()
        if row is None or row[1] not in ROLES or row[3] is not None:
            return None
        now = self._store.now()
        expires = parse_iso(row[2])
        if expires is not None and expires <= now:
            return None
        self._note_use(int(row[0]), now)
        return str(row[1])

    def _note_use(self, token_id: int, now: datetime) -> None:
        last = self._used_written.get(token_id)
        if last is not None and (now - last).total_seconds() < LAST_USED_INTERVAL_S:
            return
        self._used_written[token_id] = now
        at = iso_utc(now)
        self._store.submit(
            lambda db: db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (at, token_id))
        )

    def now(self) -> datetime:
        """The time expiry is judged against (the node's clock)."""
        return self._store.now()

    def label_for(self, token: str) -> str | None:
        """The label `token` was created with (None: none, or no such token): who ran a verb, for audits."""
        row = self._store.reader.execute(
            "SELECT label FROM api_tokens WHERE token_hash = ?", (token_digest(token),)
        ).fetchone()
        return None if row is None else row[0]

    def count(self) -> int:
        """How many API tokens exist."""
        return int(self._store.reader.execute("SELECT count(*) FROM api_tokens").fetchone()[0])

    def get(self, token_id: int) -> ApiTokenRow | None:
        """Token `token_id` as listed, or None."""
        row = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)
        ).fetchone()
        return None if row is None else _token_row(row)

    def page(self, limit: int, after: int | None = None) -> list[ApiTokenRow]:
        """Up to `limit` tokens in id order after id `after` (revoked and expired ones too)."""
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE id > ? ORDER BY id LIMIT ?", (after or 0, limit)
        ).fetchall()
        return [_token_row(r) for r in rows]

    async def revoke(self, token_id: int) -> ApiTokenRow:
        """Revoke token `token_id` (idempotent: a revoked one keeps its first revocation time) and return it;
        refused from the next request on. Raises NotFoundError(field="id")."""
        at = iso_utc(self._store.now())

        def op(db: sqlite_utils.Database) -> ApiTokenRow:
            return _revoke(db.conn, token_id, at)

        return await self._store.write(op)

    def revoke_now(self, token_id: int) -> ApiTokenRow:
        """`revoke` on a short-lived connection of its own, for the CLI (works while a node runs on the file).
        Raises NotFoundError(field="id"), sqlite3.OperationalError if the database stays locked."""
        with closing(connect(self._store.path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = _revoke(conn, token_id, iso_utc(self._store.now()))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return row

    def listing(self) -> list[ApiTokenRow]:
        """Every token in id order (for the CLI: a node has a handful)."""
        rows = self._store.reader.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id").fetchall()
        return [_token_row(r) for r in rows]
