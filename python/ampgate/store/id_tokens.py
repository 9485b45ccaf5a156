"""Id tokens as stored (1.6 idTag; 2.0.1 idToken + type): the row type, the rules for their fields, the
authorization decision, and the SQL behind `Store`'s id-token methods. Write ops run on the writer thread
(they take a `sqlite_utils.Database`); read helpers take the reader's `sqlite3.Connection`.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, get_args

import msgspec
import sqlite_utils

from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.ocpp.v201 import IdTokenEnumType
from ampgate.store.schema import iso_utc, parse_iso

# Statuses an operator may give a token: the 1.6 AuthorizationStatus values, which 2.0.1 also has.
STATUSES: tuple[str, ...] = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
# 2.0.1 IdTokenEnumType, from the generated types (the 1.6 idTag has no type; a token stored without one
# matches any type).
TYPES: tuple[str, ...] = get_args(IdTokenEnumType)
# 1.6 idTag is CiString20, 2.0.1 idToken is identifierString 36: store up to the longer; a 1.6 charger simply
# never presents one longer than 20.
ID_TOKEN_MAX = 36

_COLUMNS = "id_token, type, status, expiry, group_id, created_at, updated_at"


class IdTokenRow(msgspec.Struct, frozen=True, kw_only=True):
    """One id token as the store knows it."""

    id_token: str
    type: str | None  # None: any 2.0.1 type matches (and every 1.6 idTag)
    status: str  # one of STATUSES
    expiry: datetime | None  # after this instant the token answers Expired
    group: str | None  # 1.6 parentIdTag / 2.0.1 groupIdToken
    created_at: datetime
    updated_at: datetime


class Authorization(msgspec.Struct, frozen=True):
    """What the node answers for a presented token: the status after expiry, plus expiry and group."""

    status: str
    expiry: datetime | None = None
    group: str | None = None


def validate_id_token(value: str, field: str = "id_token") -> str:
    """Return `value` if it is 1–36 printable characters, else raise ValidationError(field=`field`)."""
    if not isinstance(value, str) or not 1 <= len(value) <= ID_TOKEN_MAX:
        raise ValidationError(f"an id token is 1 to {ID_TOKEN_MAX} characters", field=field)
    if not value.isprintable():
        raise ValidationError("an id token is printable characters only", field=field)
    return value


def validate_status(status: str) -> str:
    """Return `status` if it is one of STATUSES, else raise ValidationError(field="status")."""
    if status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}", field="status")
    return status


def validate_type(type_: str | None) -> str | None:
    """Return `type_` if it is None or one of TYPES, else raise ValidationError(field="type")."""
    if type_ is not None and type_ not in TYPES:
        raise ValidationError(f"type must be one of {', '.join(TYPES)}", field="type")
    return type_


def _row(values: tuple[Any, ...]) -> IdTokenRow:
    id_token, type_, status, expiry, group, created, updated = values
    created_at, updated_at = parse_iso(created), parse_iso(updated)
    assert created_at is not None and updated_at is not None  # NOT NULL in the schema
    return IdTokenRow(
        id_token=id_token,
        type=type_,
        status=status,
        expiry=parse_iso(expiry),
        group=group,
        created_at=created_at,
        updated_at=updated_at,
    )


# -- reads ----------------------------------------------------------------------------------------------------


def read_id_token(conn: sqlite3.Connection, id_token: str) -> IdTokenRow | None:
    """The token `id_token` (case-insensitive, as OCPP compares them), or None."""
    values = conn.execute(f"SELECT {_COLUMNS} FROM id_tokens WHERE id_token = ?", (id_token,)).fetchone()
    return None if values is None else _row(values)


def read_page(conn: sqlite3.Connection, limit: int, after: str | None) -> list[IdTokenRow]:
    """Up to `limit` tokens in id_token order, after `after` (keyset pagination on the primary key)."""
    if after is None:
        cur = conn.execute(f"SELECT {_COLUMNS} FROM id_tokens ORDER BY id_token LIMIT ?", (limit,))
    else:
        cur = conn.execute(
            f"SELECT {_COLUMNS} FROM id_tokens WHERE id_token > ? ORDER BY id_token LIMIT ?", (after, limit)
        )
    return [_row(v) for v in cur.fetchall()]


def authorize(row: IdTokenRow | None, now: datetime, type_: str | None = None) -> Authorization:
    """The answer for a presented token: Invalid when unknown (or of another 2.0.1 type than stored), Expired
    when its expiry has passed, else its stored status. Never raises."""
    if row is None or (type_ is not None and row.type is not None and row.type != type_):
        return Authorization("Invalid")
    if row.expiry is not None and row.expiry <= now:
        return Authorization("Expired", row.expiry, row.group)
    return Authorization(row.status, row.expiry, row.group)


# -- writes ---------------------------------------------------------------------------------------------------


def insert(
    db: sqlite_utils.Database,
    id_token: str,
    type_: str | None,
    status: str,
    expiry: str | None,
    group: str | None,
    at: str,
) -> IdTokenRow:
    """Create a token. Raises ConflictError(field="id_token") if it exists (case-insensitively)."""
    conn = db.conn
    if conn.execute("SELECT 1 FROM id_tokens WHERE id_token = ?", (id_token,)).fetchone() is not None:
        raise ConflictError(f"id token {id_token!r} exists", field="id_token", code="id_token_exists")
    conn.execute(
        f"INSERT INTO id_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (id_token, type_, status, expiry, group, at, at),
    )
    row = read_id_token(conn, id_token)
    assert row is not None
    return row


def update(db: sqlite_utils.Database, id_token: str, changes: dict[str, Any], at: str) -> IdTokenRow:
    """Set the columns in `changes` (status, expiry, group_id, type). Raises NotFoundError(field="id_token")."""
    conn = db.conn
    sets = "".join(f"{col} = ?, " for col in changes)
    cur = conn.execute(
        f"UPDATE id_tokens SET {sets}updated_at = ? WHERE id_token = ?", (*changes.values(), at, id_token)
    )
    if cur.rowcount == 0:
        raise NotFoundError(f"id token {id_token!r} does not exist", field="id_token")
    row = read_id_token(conn, id_token)
    assert row is not None
    return row


def delete(db: sqlite_utils.Database, id_token: str) -> None:
    """Delete a token. Raises NotFoundError(field="id_token") if there is none."""
    if db.conn.execute("DELETE FROM id_tokens WHERE id_token = ?", (id_token,)).rowcount == 0:
        raise NotFoundError(f"id token {id_token!r} does not exist", field="id_token")


def expiry_text(expiry: datetime | None) -> str | None:
    """`expiry` as stored. Raises ValidationError(field="expiry") for a naive datetime."""
    if expiry is None:
        return None
    try:
        return iso_utc(expiry)
    except ValueError:
        raise ValidationError("expiry needs a time zone (e.g. a trailing Z)", field="expiry") from None
