"""Id tokens as stored (the identifiers a driver presents at a charger): the row type and `IdTokenRepository`.
The rules for their values and the answer a charger gets live with OCPP (`ampgate.ocpp.id_tokens`,
`ampgate.ocpp.authorization`). Write ops run on the writer thread (they take a `sqlite_utils.Database`); read
helpers take the reader's `sqlite3.Connection`.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.store.store import Store

_COLUMNS = "id_token, type, status, expiry, group_id, created_at, updated_at"


class IdTokenRow(msgspec.Struct, frozen=True, kw_only=True):
    """One id token as the store knows it."""

    id_token: str
    type: str | None  # None: a token of any type matches
    status: str
    expiry: datetime | None  # after this instant the token answers Expired
    group: str | None  # 1.6 parentIdTag / 2.0.1 groupIdToken
    created_at: datetime
    updated_at: datetime


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


class IdTokenRepository:
    """The id_tokens table. Values are stored as given: the caller (`ampgate.ocpp.id_tokens`) checks them."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self, id_token: str, *, status: str, type: str | None, expiry: datetime | None, group: str | None
    ) -> IdTokenRow:
        """Create an id token and return it as committed. Raises ValidationError(field="expiry") for a naive
        expiry, ConflictError(field="id_token") if it exists (case-insensitively)."""
        exp = expiry_text(expiry)
        at = iso_utc(self._store.now())
        return await self._store.write(
            functools.partial(
                insert, id_token=id_token, type_=type, status=status, expiry=exp, group=group, at=at
            )
        )

    async def update(self, id_token: str, changes: dict[str, Any]) -> IdTokenRow:
        """Set `status`, `expiry`, `group` or `type` (keys of `changes`; None clears expiry, group or type).
        Raises ValidationError naming the field (a naive expiry, an unknown key), NotFoundError(field="id_token")."""
        columns: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "expiry":
                columns["expiry"] = expiry_text(value)
            elif key == "group":
                columns["group_id"] = value
            elif key in ("status", "type"):
                columns[key] = value
            else:
                raise ValidationError(f"{key} cannot be changed", field=key)
        return await self._store.write(
            functools.partial(update, id_token=id_token, changes=columns, at=iso_utc(self._store.now()))
        )

    async def delete(self, id_token: str) -> None:
        """Delete an id token. Raises NotFoundError(field="id_token") if there is none."""
        await self._store.write(functools.partial(delete, id_token=id_token))

    def get(self, id_token: str) -> IdTokenRow | None:
        """The id token (case-insensitive), or None."""
        return read_id_token(self._store.reader, id_token)

    def page(self, limit: int, after: str | None = None) -> list[IdTokenRow]:
        """Up to `limit` id tokens ordered by id_token, after `after` (keyset pagination)."""
        return read_page(self._store.reader, limit, after)
