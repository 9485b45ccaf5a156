"""The tables of the Sessions and CDRs modules (migration 26): `ocpi_sessions` (`SessionRows`), `ocpi_cdrs` and
`ocpi_cdr_deliveries` (`CdrRows`), and `ocpi_state` (the last billing CDR looked at).

Bodies are kept as the JSON we send (money as numbers), so what a party GETs is byte for byte what was pushed,
and a CDR's retries send the same bytes every time. Times as the store writes them (`iso_utc`: fixed width, so
text order is time order). Writes go through the store's writer and are awaited; reads take the reader.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.roaming import cdr_types as o
from ampgate.roaming.billing_objects import Place
from ampgate.store.store import Store

__all__ = ["CdrRecord", "CdrRows", "Delivery", "DeliveryState", "SessionRecord", "SessionRows"]

_encode = msgspec.json.Encoder(decimal_format="number").encode
_session = msgspec.json.Decoder(o.Session)
_place = msgspec.json.Decoder(Place)

DeliveryState = Literal["pending", "sent", "failed"]
PENDING: DeliveryState = "pending"
SENT: DeliveryState = "sent"
FAILED: DeliveryState = "failed"


def _at(text: str) -> datetime:
    at = parse_iso(text)
    assert at is not None
    return at


def _window(date_from: datetime | None, date_to: datetime | None) -> tuple[str, list[Any]]:
    where, args = "", []
    if date_from is not None:
        where += " AND last_updated >= ?"
        args.append(iso_utc(date_from))
    if date_to is not None:
        where += " AND last_updated < ?"
        args.append(iso_utc(date_to))
    return where, args


# -- sessions ---------------------------------------------------------------------------------------------------


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A roaming session as kept: the eMSP it goes to, the Session as last built, where it was at its start."""

    transaction_id: int
    party_ref: int
    session: o.Session
    place: Place


def _session_record(v: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        transaction_id=v[0], party_ref=v[1], session=_session.decode(v[2]), place=_place.decode(v[3])
    )


class SessionRows:
    """The `ocpi_sessions` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, tx_id: int) -> SessionRecord | None:
        v = self._store.reader.execute(
            "SELECT transaction_id, party_ref, body, place FROM ocpi_sessions WHERE transaction_id = ?",
            (tx_id,),
        ).fetchone()
        return None if v is None else _session_record(v)

    def unfinished(self) -> list[SessionRecord]:
        """Every session not COMPLETED, by transaction id."""
        cur = self._store.reader.execute(
            "SELECT transaction_id, party_ref, body, place FROM ocpi_sessions WHERE status != 'COMPLETED'"
            " ORDER BY transaction_id"
        )
        return [_session_record(v) for v in cur.fetchall()]

    async def put(self, record: SessionRecord) -> None:
        """Insert or replace the session's body (its place is the one first recorded)."""
        s = record.session
        now = iso_utc(self._store.now())
        args = (
            record.transaction_id,
            record.party_ref,
            s.status.value,
            _encode(s).decode(),
            _encode(record.place).decode(),
            iso_utc(s.last_updated),
            now,
        )
        await self._store.write(
            lambda db: db.conn.execute(
                "INSERT INTO ocpi_sessions (transaction_id, party_ref, status, body, place, last_updated,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (transaction_id) DO UPDATE SET"
                " status = excluded.status, body = excluded.body, last_updated = excluded.last_updated",
                args,
            )
        )

    def page(
        self, party_ref: int, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int
    ) -> tuple[int, list[msgspec.Raw]]:
        """The party's Sessions last updated in [date_from, date_to), oldest change first: how many in all, and
        the bodies from `offset`, at most `limit`."""
        where, args = _window(date_from, date_to)
        conn = self._store.reader
        total = conn.execute(
            f"SELECT count(*) FROM ocpi_sessions WHERE party_ref = ?{where}", (party_ref, *args)
        ).fetchone()[0]
        cur = conn.execute(
            f"SELECT body FROM ocpi_sessions WHERE party_ref = ?{where}"
            " ORDER BY last_updated, transaction_id LIMIT ? OFFSET ?",
            (party_ref, *args, limit, offset),
        )
        return int(total), [msgspec.Raw(v[0].encode()) for v in cur.fetchall()]


# -- CDRs and their deliveries ---------------------------------------------------------------------------------


class CdrRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A roaming CDR: billing's `cdr_id`, the eMSP it is for, the OCPI CDR as built (None while it cannot be:
    `error` says why)."""

    cdr_id: int
    party_ref: int
    transaction_id: int
    credit_of: int | None
    body: bytes | None
    error: str | None


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One CDR's delivery to one party (see `ampgate.roaming.cdr_delivery`)."""

    id: int
    cdr_id: int
    party_ref: int
    transaction_id: int
    credit_of: int | None
    after_id: int | None
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    last_error: str | None
    last_attempt_at: datetime | None
    sent_at: datetime | None
    location: str | None
    created_at: datetime


_DELIVERY = (
    "d.id, d.cdr_id, d.party_ref, c.transaction_id, c.credit_of, d.after_id, d.state, d.attempts,"
    " d.next_attempt_at, d.give_up_at, d.last_error, d.last_attempt_at, d.sent_at, d.location, d.created_at"
)
_FROM = "ocpi_cdr_deliveries d JOIN ocpi_cdrs c ON c.cdr_id = d.cdr_id"


def _delivery(v: tuple[Any, ...]) -> Delivery:
    return Delivery(
        id=v[0],
        cdr_id=v[1],
        party_ref=v[2],
        transaction_id=v[3],
        credit_of=v[4],
        after_id=v[5],
        state=v[6],
        attempts=v[7],
        next_attempt_at=parse_iso(v[8]),
        give_up_at=_at(v[9]),
        last_error=v[10],
        last_attempt_at=parse_iso(v[11]),
        sent_at=parse_iso(v[12]),
        location=v[13],
        created_at=_at(v[14]),
    )


def _read_delivery(conn: sqlite3.Connection, ref: int) -> Delivery | None:
    v = conn.execute(f"SELECT {_DELIVERY} FROM {_FROM} WHERE d.id = ?", (ref,)).fetchone()
    return None if v is None else _delivery(v)


def _add(
    db: sqlite_utils.Database,
    record: CdrRecord,
    last_updated: str,
    now: str,
    deliver: bool,
    give_up_at: str,
) -> Delivery | None:
    conn = db.conn
    conn.execute(
        "INSERT OR IGNORE INTO ocpi_cdrs (cdr_id, party_ref, transaction_id, credit_of, body, error,"
        " last_updated, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            record.cdr_id,
            record.party_ref,
            record.transaction_id,
            record.credit_of,
            None if record.body is None else record.body.decode(),
            record.error,
            last_updated,
            now,
        ),
    )
    if not deliver:
        return None
    after = None
    if record.credit_of is not None:
        found = conn.execute(
            "SELECT id FROM ocpi_cdr_deliveries WHERE cdr_id = ? AND party_ref = ?",
            (record.credit_of, record.party_ref),
        ).fetchone()
        after = None if found is None else found[0]
    conn.execute(
        "INSERT OR IGNORE INTO ocpi_cdr_deliveries (cdr_id, party_ref, after_id, state, attempts,"
        " next_attempt_at, give_up_at, last_error, created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?, ?)",
        (record.cdr_id, record.party_ref, after, now, give_up_at, record.error, now),
    )
    ref = conn.execute(
        "SELECT id FROM ocpi_cdr_deliveries WHERE cdr_id = ? AND party_ref = ?",
        (record.cdr_id, record.party_ref),
    ).fetchone()[0]
    return _read_delivery(conn, ref)


class CdrRows:
    """The `ocpi_cdrs` and `ocpi_cdr_deliveries` tables, and `ocpi_state`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def now(self) -> datetime:
        return self._store.now()

    # -- CDRs ------------------------------------------------------------------------------------------------

    def get(self, cdr_id: int) -> CdrRecord | None:
        v = self._store.reader.execute(
            "SELECT cdr_id, party_ref, transaction_id, credit_of, body, error FROM ocpi_cdrs WHERE cdr_id = ?",
            (cdr_id,),
        ).fetchone()
        if v is None:
            return None
        return CdrRecord(
            cdr_id=v[0],
            party_ref=v[1],
            transaction_id=v[2],
            credit_of=v[3],
            body=None if v[4] is None else v[4].encode(),
            error=v[5],
        )

    async def add(
        self, record: CdrRecord, *, last_updated: datetime, deliver: bool, give_up_at: datetime
    ) -> Delivery | None:
        """Keep a roaming CDR (once: a second add of the same `cdr_id` changes nothing) and, with `deliver`, its
        delivery to `record.party_ref`, pending from now (a credit's after its original's). Returns the delivery."""
        return await self._store.write(
            functools.partial(
                _add,
                record=record,
                last_updated=iso_utc(last_updated),
                now=iso_utc(self._store.now()),
                deliver=deliver,
                give_up_at=iso_utc(give_up_at),
            )
        )

    async def set_body(self, cdr_id: int, body: bytes) -> None:
        """The CDR could be built now: keep it (only where none was kept: a CDR never changes once built)."""
        await self._store.write(
            lambda db: db.conn.execute(
                "UPDATE ocpi_cdrs SET body = ?, error = NULL WHERE cdr_id = ? AND body IS NULL",
                (body.decode(), cdr_id),
            )
        )

    def page(
        self, party_ref: int, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int
    ) -> tuple[int, list[msgspec.Raw]]:
        """The party's CDRs (built ones) created in [date_from, date_to), oldest first: the count and a page."""
        where, args = _window(date_from, date_to)
        conn = self._store.reader
        total = conn.execute(
            f"SELECT count(*) FROM ocpi_cdrs WHERE party_ref = ? AND body IS NOT NULL{where}",
            (party_ref, *args),
        ).fetchone()[0]
        cur = conn.execute(
            f"SELECT body FROM ocpi_cdrs WHERE party_ref = ? AND body IS NOT NULL{where}"
            " ORDER BY last_updated, cdr_id LIMIT ? OFFSET ?",
            (party_ref, *args, limit, offset),
        )
        return int(total), [msgspec.Raw(v[0].encode()) for v in cur.fetchall()]

    # -- deliveries ------------------------------------------------------------------------------------------

    def delivery(self, ref: int) -> Delivery | None:
        return _read_delivery(self._store.reader, ref)

    def deliveries(
        self,
        limit: int,
        *,
        after: int | None = None,
        state: str | None = None,
        party_refs: list[int] | None = None,
    ) -> list[Delivery]:
        """Up to `limit` deliveries in id order after `after`, in `state`, to one of `party_refs`."""
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if after is not None:
            where.append("d.id > ?")
            args.append(after)
        if state is not None:
            where.append("d.state = ?")
            args.append(state)
        if party_refs is not None:
            where.append(f"d.party_ref IN ({', '.join('?' * len(party_refs)) or 'NULL'})")
            args.extend(party_refs)
        cur = self._store.reader.execute(
            f"SELECT {_DELIVERY} FROM {_FROM} WHERE {' AND '.join(where)} ORDER BY d.id LIMIT ?",
            (*args, limit),
        )
        return [_delivery(v) for v in cur.fetchall()]

    def due(self, now: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, earliest first."""
        cur = self._store.reader.execute(
            f"SELECT {_DELIVERY} FROM {_FROM} WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
            " ORDER BY d.next_attempt_at, d.id LIMIT ?",
            (iso_utc(now), limit),
        )
        return [_delivery(v) for v in cur.fetchall()]

    def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        v = self._store.reader.execute(
            "SELECT min(next_attempt_at) FROM ocpi_cdr_deliveries WHERE state = 'pending'"
        ).fetchone()
        return parse_iso(v[0])

    def pending(self, party_ref: int) -> int:
        v = self._store.reader.execute(
            "SELECT count(*) FROM ocpi_cdr_deliveries WHERE state = 'pending' AND party_ref = ?", (party_ref,)
        ).fetchone()
        return int(v[0])

    async def attempted(
        self,
        ref: int,
        *,
        state: DeliveryState,
        at: datetime,
        next_attempt_at: datetime | None,
        error: str | None,
        location: str | None = None,
        counted: bool = True,
    ) -> Delivery:
        """Record an attempt (`counted`: it reached the party's endpoint) and what came of it."""
        args = (
            state,
            1 if counted else 0,
            None if next_attempt_at is None else iso_utc(next_attempt_at),
            error,
            iso_utc(at) if counted else None,
            iso_utc(at) if state == SENT else None,
            location,
            ref,
        )

        def op(db: sqlite_utils.Database) -> Delivery:
            db.conn.execute(
                "UPDATE ocpi_cdr_deliveries SET state = ?, attempts = attempts + ?, next_attempt_at = ?,"
                " last_error = ?, last_attempt_at = coalesce(?, last_attempt_at), sent_at = coalesce(?, sent_at),"
                " location = coalesce(?, location) WHERE id = ?",
                args,
            )
            found = _read_delivery(db.conn, ref)
            assert found is not None
            return found

        return await self._store.write(op)

    async def retry(self, ref: int, *, at: datetime, give_up_at: datetime) -> Delivery | None:
        """Make a pending or failed delivery due at `at`, given up at `give_up_at` again; a sent one is left as
        it is. None when there is no such delivery."""
        args = (iso_utc(at), iso_utc(give_up_at), ref)

        def op(db: sqlite_utils.Database) -> Delivery | None:
            db.conn.execute(
                "UPDATE ocpi_cdr_deliveries SET state = 'pending', next_attempt_at = ?, give_up_at = ?"
                " WHERE id = ? AND state != 'sent'",
                args,
            )
            return _read_delivery(db.conn, ref)

        return await self._store.write(op)

    # -- state -----------------------------------------------------------------------------------------------

    async def mark(self, name: str, first: int) -> int:
        """The value of `name`: `first` the first time it is asked for, what it was set to ever after."""

        def op(db: sqlite_utils.Database) -> int:
            db.conn.execute("INSERT OR IGNORE INTO ocpi_state (name, value) VALUES (?, ?)", (name, first))
            return int(db.conn.execute("SELECT value FROM ocpi_state WHERE name = ?", (name,)).fetchone()[0])

        return await self._store.write(op)

    async def set_mark(self, name: str, value: int) -> None:
        await self._store.write(
            lambda db: db.conn.execute(
                "INSERT INTO ocpi_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET"
                " value = max(value, excluded.value)",
                (name, value),
            )
        )
