"""The reservations table: the row type and `ReservationRepository`. Write ops run on the store's writer thread
(they take a `sqlite_utils.Database`); reads take the reader connection on the trio thread.

A row goes pending -> active | refused | failed, and active -> ended; an end never overwrites another end (the
first reason wins: a sweep and the charger's own Expired racing write one end).
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

State = Literal["pending", "active", "refused", "failed", "ended"]
STATES: tuple[str, ...] = ("pending", "active", "refused", "failed", "ended")
# Why a reservation ended: its expiry passed (the node's sweep, or the charger's 2.0.1 ReservationStatusUpdate
# Expired), an operator cancelled it, a transaction used it, or the charger removed it (2.0.1 Removed).
EndReason = Literal["expired", "cancelled", "used", "removed"]

_COLUMNS = (
    "id, charger_id, protocol, evse_id, connector_id, connector_type, id_token, id_token_type, group_id_token,"
    " expires_at, state, outcome, end_reason, created_at, updated_at, ended_at"
)


class NewReservation(msgspec.Struct, frozen=True, kw_only=True):
    """A reservation about to be sent to its charger (already checked)."""

    charger_id: str
    protocol: str
    evse_id: int | None
    connector_id: int | None
    connector_type: str | None
    id_token: str
    id_token_type: str | None
    group_id_token: str | None
    expires_at: datetime


class ReservationRow(msgspec.Struct, frozen=True, kw_only=True):
    """One reservation as stored. `outcome` is the charger's ReserveNow status (Accepted, Occupied, ...) or,
    when no status came, the error code of the failure (charger_timeout, charger_error, ...)."""

    id: int
    charger_id: str
    protocol: str
    evse_id: int | None
    connector_id: int | None
    connector_type: str | None
    id_token: str
    id_token_type: str | None
    group_id_token: str | None
    expires_at: datetime
    state: str
    outcome: str | None
    end_reason: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


def _row(v: tuple[Any, ...]) -> ReservationRow:
    expires, created, updated = parse_iso(v[9]), parse_iso(v[13]), parse_iso(v[14])
    assert expires is not None and created is not None and updated is not None  # NOT NULL
    return ReservationRow(
        id=v[0],
        charger_id=v[1],
        protocol=v[2],
        evse_id=v[3],
        connector_id=v[4],
        connector_type=v[5],
        id_token=v[6],
        id_token_type=v[7],
        group_id_token=v[8],
        expires_at=expires,
        state=v[10],
        outcome=v[11],
        end_reason=v[12],
        created_at=created,
        updated_at=updated,
        ended_at=parse_iso(v[15]),
    )


# -- reads ----------------------------------------------------------------------------------------------------


def read_reservation(conn: sqlite3.Connection, rid: int) -> ReservationRow | None:
    values = conn.execute(f"SELECT {_COLUMNS} FROM reservations WHERE id = ?", (rid,)).fetchone()
    return None if values is None else _row(values)


def read_page(
    conn: sqlite3.Connection, limit: int, before: int | None, charger_id: str | None, state: str | None
) -> list[ReservationRow]:
    """Up to `limit` reservations newest first (by id), below `before`, filtered by charger and state."""
    where: list[str] = []
    args: list[int | str] = []
    if before is not None:
        where.append("id < ?")
        args.append(before)
    if charger_id is not None:
        where.append("charger_id = ?")
        args.append(charger_id)
    if state is not None:
        where.append("state = ?")
        args.append(state)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM reservations{clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    )
    return [_row(v) for v in cur.fetchall()]


def read_live(conn: sqlite3.Connection) -> list[ReservationRow]:
    """Every pending or active reservation (the partial index holds exactly these)."""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM reservations WHERE state IN ('pending', 'active') ORDER BY id"
    )
    return [_row(v) for v in cur.fetchall()]


# -- writes ---------------------------------------------------------------------------------------------------


def insert(db: sqlite_utils.Database, new: NewReservation, at: str) -> ReservationRow:
    cur = db.conn.execute(
        "INSERT INTO reservations (charger_id, protocol, evse_id, connector_id, connector_type, id_token,"
        " id_token_type, group_id_token, expires_at, state, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        (
            new.charger_id,
            new.protocol,
            new.evse_id,
            new.connector_id,
            new.connector_type,
            new.id_token,
            new.id_token_type,
            new.group_id_token,
            iso_utc(new.expires_at),
            at,
            at,
        ),
    )
    row = read_reservation(db.conn, cur.lastrowid or 0)
    assert row is not None
    return row


def settle(db: sqlite_utils.Database, rid: int, state: str, outcome: str, at: str) -> ReservationRow | None:
    """pending -> `state` with `outcome`; a row no longer pending is left alone."""
    db.conn.execute(
        "UPDATE reservations SET state = ?, outcome = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
        (state, outcome, at, rid),
    )
    return read_reservation(db.conn, rid)


def end(db: sqlite_utils.Database, rid: int, reason: str, at: str) -> ReservationRow | None:
    """active -> ended with `reason`; a row not active is left alone."""
    db.conn.execute(
        "UPDATE reservations SET state = 'ended', end_reason = ?, ended_at = ?, updated_at = ?"
        " WHERE id = ? AND state = 'active'",
        (reason, at, at, rid),
    )
    return read_reservation(db.conn, rid)


def fail_pending(db: sqlite_utils.Database, outcome: str, at: str) -> int:
    """Every pending row -> failed with `outcome` (a node that stopped while ReserveNow was on the wire)."""
    cur = db.conn.execute(
        "UPDATE reservations SET state = 'failed', outcome = ?, updated_at = ? WHERE state = 'pending'",
        (outcome, at),
    )
    return cur.rowcount


class ReservationRepository:
    """The reservations table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _at(self, at: datetime | None = None) -> str:
        return iso_utc(at or self._store.now())

    async def insert(self, new: NewReservation) -> ReservationRow:
        """Create a pending reservation (its id is the reservationId to send) and return it as committed.
        Raises ValueError for a naive `expires_at`."""
        iso_utc(new.expires_at)  # a naive time raises here, not on the writer thread
        return await self._store.write(functools.partial(insert, new=new, at=self._at()))

    async def settle(self, rid: int, state: State, outcome: str) -> ReservationRow | None:
        """Record the charger's answer to ReserveNow (or the failure): pending -> `state`."""
        return await self._store.write(
            functools.partial(settle, rid=rid, state=state, outcome=outcome, at=self._at())
        )

    async def end(self, rid: int, reason: EndReason, at: datetime | None = None) -> ReservationRow | None:
        """End an active reservation and wait for the commit; returns the row (None if there is none)."""
        return await self._store.write(functools.partial(end, rid=rid, reason=reason, at=self._at(at)))

    def end_soon(self, rid: int, reason: EndReason, at: datetime | None = None) -> None:
        """End an active reservation, fire-and-forget (from a handler that must not wait)."""
        self._store.submit(functools.partial(end, rid=rid, reason=reason, at=self._at(at)))

    def fail_pending(self, outcome: str) -> None:
        """Mark every pending reservation failed (at start: no CALL of ours survives a restart)."""
        self._store.submit(functools.partial(fail_pending, outcome=outcome, at=self._at()))

    def get(self, rid: int) -> ReservationRow | None:
        return read_reservation(self._store.reader, rid)

    def page(
        self,
        limit: int,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        state: str | None = None,
    ) -> list[ReservationRow]:
        """Up to `limit` reservations newest first, with ids below `before`, of `charger_id`, in `state`."""
        return read_page(self._store.reader, limit, before, charger_id, state)

    def live(self) -> list[ReservationRow]:
        """Every pending or active reservation, oldest first."""
        return read_live(self._store.reader)
