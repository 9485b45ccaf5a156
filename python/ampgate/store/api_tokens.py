"""API tokens (the operator API's bearer tokens, not the id tokens chargers present): roles, the rules for a
token's role and label, and `ApiTokenRepository`."""

from __future__ import annotations

from contextlib import closing

from ampgate.clock import iso_utc
from ampgate.errors import ValidationError
from ampgate.store.hashing import new_token, token_digest
from ampgate.store.schema import connect
from ampgate.store.store import Store

# Roles from least to most powerful; each includes everything the ones before it may do. viewer reads,
# operator sends commands to chargers, admin manages chargers and tokens.
ROLES: tuple[str, ...] = ("viewer", "operator", "admin")
# A label is a note for the operator ("grafana", "alice's laptop"); 200 characters is plenty and keeps a
# pasted file out of the table.
LABEL_MAX = 200


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


class ApiTokenRepository:
    """The api_tokens table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, role: str, label: str | None = None) -> str:
        """Create an API token with `role` and return it in plaintext, the only time it exists in plaintext
        (only its SHA-256 is stored). Synchronous on its own short-lived connection, so the CLI can create a
        token while a node runs on the same file, and that node accepts it at once. Raises
        ValidationError(field="role") for a role not in ROLES, ValidationError(field="label") for a label that
        is too long, sqlite3.OperationalError if the database stays locked beyond the busy timeout."""
        validate_role(role)
        validate_label(label)
        token = new_token()
        with closing(connect(self._store.path)) as conn:
            conn.execute(
                "INSERT INTO api_tokens (token_hash, role, label, created_at) VALUES (?, ?, ?, ?)",
                (token_digest(token), role, label, iso_utc(self._store.now())),
            )
        return token

    def role_for(self, token: str) -> str | None:
        """The role of `token`, or None if no such token exists (or its stored role is unknown: fail closed).
        Reads the database on every call, an indexed lookup, so tokens made by another process work at once."""
        row = self._store.reader.execute(
            "SELECT role FROM api_tokens WHERE token_hash = ?", (token_digest(token),)
        ).fetchone()
        if row is None or row[0] not in ROLES:
            return None
        return str(row[0])

    def label_for(self, token: str) -> str | None:
        """The label `token` was created with (None: none, or no such token): who ran a verb, for audits."""
        row = self._store.reader.execute(
            "SELECT label FROM api_tokens WHERE token_hash = ?", (token_digest(token),)
        ).fetchone()
        return None if row is None else row[0]

    def count(self) -> int:
        """How many API tokens exist."""
        return int(self._store.reader.execute("SELECT count(*) FROM api_tokens").fetchone()[0])
