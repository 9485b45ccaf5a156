"""Chargers as stored: the row type, the rules for ids and passwords, and the SQL behind `Store`'s charger
methods. Write ops here run on the writer thread (they take a `sqlite_utils.Database`); read helpers take the
reader's `sqlite3.Connection`.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.errors import ValidationError
from ampgate.store.schema import parse_iso

# OCPP's identityString / charge point id is at most 48 characters (CiString48Type in 1.6, identifierString
# in 2.0.1); the gateway's handshake enforces the same bound on the URL path.
CHARGER_ID_MAX = 48
# OCPP 2.0.1 BasicAuthPassword: 16 to 40 characters (1.6 security profile 1 uses 16–20 byte keys, inside this).
PASSWORD_MIN = 16
PASSWORD_MAX = 40
# Characters the id may not contain: '/' would split the URL path the charger connects to, ':' would split the
# HTTP Basic credentials (user:password) it authenticates with.
FORBIDDEN_ID_CHARS = frozenset("/:")

_COLUMNS = (
    "id, vendor, model, serial, firmware, protocol, registered_at, last_boot_at,"
    " password_hash IS NOT NULL, accepted"
)


class ChargerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One charger as the store knows it (no live state: that is `connectivity`'s)."""

    id: str
    vendor: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    protocol: str | None  # the subprotocol it last connected or booted with, e.g. "ocpp1.6"
    registered_at: datetime  # when the row was created (registration, or first boot of an unknown charger)
    last_boot_at: datetime | None
    has_password: bool
    accepted: bool  # registered by an operator (True) rather than only seen booting (False)


def validate_charger_id(cp_id: str) -> str:
    """Return `cp_id` if it is a valid charger id: 1–48 characters, no '/', no ':', no control characters
    (the same rule the gateway applies to the URL). Raises ValidationError(field="id") otherwise."""
    if not isinstance(cp_id, str) or not 1 <= len(cp_id) <= CHARGER_ID_MAX:
        raise ValidationError(f"a charger id is 1 to {CHARGER_ID_MAX} characters", field="id")
    for ch in cp_id:
        if ch in FORBIDDEN_ID_CHARS:
            raise ValidationError(f"a charger id may not contain {ch!r}", field="id")
        if unicodedata.category(ch) == "Cc":
            raise ValidationError("a charger id may not contain control characters", field="id")
    return cp_id


def validate_password(password: str) -> str:
    """Return `password` if it is 16–40 printable ASCII characters (space to '~'), else raise
    ValidationError(field="password")."""
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise ValidationError(
            f"a charger password is {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    if not all(" " <= ch <= "~" for ch in password):
        raise ValidationError("a charger password is printable ASCII only", field="password")
    return password


def _row(values: tuple[Any, ...]) -> ChargerRow:
    cp_id, vendor, model, serial, firmware, protocol, registered_at, last_boot_at, has_pw, accepted = values
    registered = parse_iso(registered_at)
    assert registered is not None  # NOT NULL in the schema
    return ChargerRow(
        id=cp_id,
        vendor=vendor,
        model=model,
        serial=serial,
        firmware=firmware,
        protocol=protocol,
        registered_at=registered,
        last_boot_at=parse_iso(last_boot_at),
        has_password=bool(has_pw),
        accepted=bool(accepted),
    )


# -- reads (the reader connection, trio thread) ---------------------------------------------------------------


def read_charger(conn: sqlite3.Connection, cp_id: str) -> ChargerRow | None:
    """The charger `cp_id`, or None if unknown."""
    values = conn.execute(f"SELECT {_COLUMNS} FROM chargers WHERE id = ?", (cp_id,)).fetchone()
    return None if values is None else _row(values)


def read_page(conn: sqlite3.Connection, limit: int, after: str | None) -> list[ChargerRow]:
    """Up to `limit` chargers in id order, starting after id `after` (keyset pagination on the primary key)."""
    if after is None:
        cursor = conn.execute(f"SELECT {_COLUMNS} FROM chargers ORDER BY id LIMIT ?", (limit,))
    else:
        cursor = conn.execute(
            f"SELECT {_COLUMNS} FROM chargers WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        )
    return [_row(v) for v in cursor.fetchall()]


# -- writes (the writer thread) -------------------------------------------------------------------------------


def upsert_boot(
    db: sqlite_utils.Database,
    cp_id: str,
    vendor: str | None,
    model: str | None,
    serial: str | None,
    firmware: str | None,
    protocol: str | None,
    at: str,
) -> None:
    """Record a BootNotification: create the charger (registered_at = the boot) or update what it reported."""
    db.execute(
        """
        INSERT INTO chargers (id, vendor, model, serial, firmware, protocol, registered_at, last_boot_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
            vendor = excluded.vendor, model = excluded.model, serial = excluded.serial,
            firmware = excluded.firmware, protocol = excluded.protocol, last_boot_at = excluded.last_boot_at
        """,
        (cp_id, vendor, model, serial, firmware, protocol, at, at),
    )


def upsert_connection(db: sqlite_utils.Database, cp_id: str, protocol: str | None, at: str) -> None:
    """Record that the charger connected: create it if unknown (registered_at = now), keep its protocol
    current. Skips the write when nothing changed, so a reconnect storm of known chargers costs no pages."""
    db.execute(
        """
        INSERT INTO chargers (id, protocol, registered_at) VALUES (?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET protocol = excluded.protocol
        WHERE chargers.protocol IS NOT excluded.protocol
        """,
        (cp_id, protocol, at),
    )


def upsert_registration(
    db: sqlite_utils.Database, cp_id: str, password_hash: str | None, at: str
) -> tuple[ChargerRow, bool]:
    """Create the charger or replace its password (None clears it); mark it accepted. Returns the row as
    committed-to-be and whether it was created."""
    conn = db.conn
    existed = conn.execute("SELECT 1 FROM chargers WHERE id = ?", (cp_id,)).fetchone() is not None
    if existed:
        conn.execute(
            "UPDATE chargers SET password_hash = ?, accepted = 1 WHERE id = ?", (password_hash, cp_id)
        )
    else:
        conn.execute(
            "INSERT INTO chargers (id, password_hash, registered_at, accepted) VALUES (?, ?, ?, 1)",
            (cp_id, password_hash, at),
        )
    row = read_charger(conn, cp_id)
    assert row is not None
    return row, not existed
