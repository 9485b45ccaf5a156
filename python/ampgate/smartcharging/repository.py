"""charging_limits (the limits in force, per charger, EVSE and source) and charging_notes (what chargers
reported, newest first: limits set and cleared, EV charging needs and schedules, composite schedules)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store import Store

# The kinds of note.
LIMIT_SET = "charging_limit.set"
LIMIT_CLEARED = "charging_limit.cleared"
EV_NEEDS = "ev_charging_needs"
EV_SCHEDULE = "ev_charging_schedule"
COMPOSITE = "composite_schedule"
NO_EVSE = -1  # a limit of the whole charger

_json = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class ChargingLimitRow(msgspec.Struct, frozen=True, kw_only=True):
    evse_id: int | None  # None: the whole charger
    source: str  # EMS, Other, SO, CSO
    grid_critical: bool | None
    schedules: list[Any] | None  # chargingSchedule as the charger sent it
    set_at: datetime


class ChargingNoteRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    charger_id: str
    kind: str
    evse_id: int | None
    transaction_id: int | None  # the node's transaction id (EV needs and schedules during a transaction)
    received_at: datetime
    payload: dict[str, Any]  # the message as the charger sent it (camelCase)


class Note(msgspec.Struct, frozen=True, kw_only=True):
    charger_id: str
    kind: str
    evse_id: int | None
    transaction_id: int | None
    received_at: datetime
    payload: bytes


def add_note(
    db: sqlite_utils.Database, note: Note, limit: tuple[str, bool | None, bytes | None] | None
) -> int:
    """Store a note; a LIMIT_SET note also sets the limit in force (`limit` = source, grid critical, schedules),
    a LIMIT_CLEARED note (`limit` = source, ...) removes it."""
    conn = db.conn
    at = iso_utc(note.received_at)
    evse = NO_EVSE if note.evse_id is None else note.evse_id
    cur = conn.execute(
        "INSERT INTO charging_notes (charger_id, kind, evse_id, transaction_id, received_at, payload)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (note.charger_id, note.kind, evse, note.transaction_id, at, note.payload.decode()),
    )
    if limit is not None and note.kind == LIMIT_SET:
        source, critical, schedules = limit
        conn.execute(
            "INSERT OR REPLACE INTO charging_limits (charger_id, evse_id, source, grid_critical, schedules, set_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                note.charger_id,
                evse,
                source,
                None if critical is None else int(critical),
                None if schedules is None else schedules.decode(),
                at,
            ),
        )
    elif limit is not None and note.kind == LIMIT_CLEARED:
        conn.execute(
            "DELETE FROM charging_limits WHERE charger_id = ? AND evse_id = ? AND source = ?",
            (note.charger_id, evse, limit[0]),
        )
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


class SmartChargingRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, note: Note, limit: tuple[str, bool | None, bytes | None] | None = None) -> int:
        """Store a note (and the limit change it carries) and wait for the commit; its id."""
        return await self._store.write(functools.partial(add_note, note=note, limit=limit))

    def limits(self, charger_id: str) -> list[ChargingLimitRow]:
        cur = self._store.reader.execute(
            "SELECT evse_id, source, grid_critical, schedules, set_at FROM charging_limits WHERE charger_id = ?"
            " ORDER BY evse_id, source",
            (charger_id,),
        )
        out = []
        for evse, source, critical, schedules, set_at in cur.fetchall():
            at = parse_iso(set_at)
            assert at is not None
            out.append(
                ChargingLimitRow(
                    evse_id=None if evse == NO_EVSE else evse,
                    source=source,
                    grid_critical=None if critical is None else bool(critical),
                    schedules=None if schedules is None else _decode(schedules),
                    set_at=at,
                )
            )
        return out

    def notes(
        self,
        charger_id: str,
        limit: int,
        *,
        kind: str | None = None,
        transaction_id: int | None = None,
        before: int | None = None,
    ) -> list[ChargingNoteRow]:
        """The charger's notes, newest first."""
        where: list[str] = ["charger_id = ?"]
        args: list[str | int] = [charger_id]
        for cond, arg in (("kind = ?", kind), ("transaction_id = ?", transaction_id), ("id < ?", before)):
            if arg is not None:
                where.append(cond)
                args.append(arg)
        cur = self._store.reader.execute(
            "SELECT id, charger_id, kind, evse_id, transaction_id, received_at, payload FROM charging_notes"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        out = []
        for id_, cid, kind_, evse, tx, received, payload in cur.fetchall():
            at = parse_iso(received)
            assert at is not None
            out.append(
                ChargingNoteRow(
                    id=id_,
                    charger_id=cid,
                    kind=kind_,
                    evse_id=None if evse == NO_EVSE else evse,
                    transaction_id=tx,
                    received_at=at,
                    payload=_decode(payload),
                )
            )
        return out
