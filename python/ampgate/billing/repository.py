"""Billing's session and CDR tables: `billing_sessions` (one row per priced session, written at its start and
marked ended in the same write as its CDR) and `cdrs` (inserted, never updated).

Exactly one CDR per session: the insert and the session's end are one write, a second attempt finds the CDR
the first made (and the partial unique index `cdrs_session` would refuse a duplicate anyway); at most one
credit per CDR the same way (`cdrs_credit`). Money is stored as decimal text, the cost as the engine's JSON.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import sqlite_utils

from ampgate.billing.model import Cdr, SessionRow, negate
from ampgate.billing.tariffs import decode_tariff, encode_tariff
from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import ConflictError, NotFoundError
from ampgate.pricing import Cost
from ampgate.store.store import Store
from ampgate.store.transactions import SignedValue

__all__ = ["CdrRepository", "SessionRepository", "UsageRow"]

_encoder = msgspec.json.Encoder(decimal_format="number")
_SESSION = (
    "transaction_id, charger_id, site_id, time_zone, group_id, tariff, created_at, ended_at, end_reason"
)
_CDR = (
    "id, transaction_id, credit_of, charger_id, site_id, evse_id, connector_id, id_token, group_id,"
    " authorization_reference, started_at, stopped_at, ended_at, end_reason, energy_wh, charging_time_s,"
    " parking_time_s, parking_after_s, currency, tariff, cost, signed_meter_values, created_at"
)
_signed = msgspec.json.Decoder(list[SignedValue])

# (started_at, a credit?, energy Wh, currency, total incl VAT): what the usage report sums.
UsageRow = tuple[datetime, bool, float, str | None, Decimal | None]


def _at(text: str) -> datetime:
    at = parse_iso(text)
    assert at is not None
    return at


def _session(v: tuple[Any, ...]) -> SessionRow:
    return SessionRow(
        transaction_id=v[0],
        charger_id=v[1],
        site_id=v[2],
        time_zone=v[3],
        group_id=v[4],
        tariff=None if v[5] is None else decode_tariff(v[5]),
        created_at=_at(v[6]),
        ended_at=parse_iso(v[7]),
        end_reason=v[8],
    )


def _cdr(v: tuple[Any, ...]) -> Cdr:
    return Cdr(
        id=v[0],
        transaction_id=v[1],
        credit_of=v[2],
        charger_id=v[3],
        site_id=v[4],
        evse_id=v[5],
        connector_id=v[6],
        id_token=v[7],
        group_id=v[8],
        authorization_reference=v[9],
        started_at=_at(v[10]),
        stopped_at=_at(v[11]),
        ended_at=_at(v[12]),
        end_reason=v[13],
        energy_wh=v[14],
        charging_time_s=v[15],
        parking_time_s=v[16],
        parking_after_s=v[17],
        currency=v[18],
        tariff=None if v[19] is None else decode_tariff(v[19]),
        cost=None if v[20] is None else msgspec.json.decode(v[20], type=Cost),
        signed_meter_values=tuple(_signed.decode(v[21])),
        created_at=_at(v[22]),
    )


# -- sessions ---------------------------------------------------------------------------------------------------


def _open(db: sqlite_utils.Database, row: SessionRow) -> None:
    db.conn.execute(
        f"INSERT OR IGNORE INTO billing_sessions ({_SESSION}, tariff_id) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
        (
            row.transaction_id,
            row.charger_id,
            row.site_id,
            row.time_zone,
            row.group_id,
            None if row.tariff is None else encode_tariff(row.tariff),
            iso_utc(row.created_at),
            row.tariff_id,
        ),
    )


class SessionRepository:
    """The `billing_sessions` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def open(self, row: SessionRow) -> None:
        """Record a session's start (fire-and-forget: what it records can be decided again from the same
        assignments if it is lost in a crash a moment later). A session recorded before keeps its row."""
        self._store.submit(functools.partial(_open, row=row))

    async def flush(self) -> None:
        """Wait until every write queued before now has committed."""
        await self._store.write(lambda db: None)

    def get(self, tx_id: int) -> SessionRow | None:
        v = self._store.reader.execute(
            f"SELECT {_SESSION} FROM billing_sessions WHERE transaction_id = ?", (tx_id,)
        ).fetchone()
        return None if v is None else _session(v)

    def unended(self) -> list[SessionRow]:
        """Every session that has not ended, by transaction id."""
        cur = self._store.reader.execute(
            f"SELECT {_SESSION} FROM billing_sessions WHERE ended_at IS NULL ORDER BY transaction_id"
        )
        return [_session(v) for v in cur.fetchall()]

    def in_use(self, tariff_id: str) -> bool:
        """Whether a session that has not ended is priced by `tariff_id`."""
        v = self._store.reader.execute(
            "SELECT 1 FROM billing_sessions WHERE tariff_id = ? AND ended_at IS NULL LIMIT 1", (tariff_id,)
        ).fetchone()
        return v is not None

    def last_transaction_id(self) -> int | None:
        """The highest transaction id with a session, None before the first."""
        v = self._store.reader.execute("SELECT max(transaction_id) FROM billing_sessions").fetchone()
        return None if v[0] is None else int(v[0])

    async def billed_from(self, first: int) -> int:
        """The first transaction id billing bills: `first` when billing runs for the first time, what it was set
        to then ever after (transactions that ended before billing first ran are not billed)."""

        def op(db: sqlite_utils.Database) -> int:
            db.conn.execute(
                "INSERT OR IGNORE INTO billing_state (name, value) VALUES ('billed_from', ?)", (first,)
            )
            return int(
                db.conn.execute("SELECT value FROM billing_state WHERE name = 'billed_from'").fetchone()[0]
            )

        return await self._store.write(op)


# -- CDRs -------------------------------------------------------------------------------------------------------


def _insert(conn: sqlite3.Connection, cdr: Cdr, at: str) -> Cdr:
    cost = cdr.cost
    values = (
        cdr.transaction_id,
        cdr.credit_of,
        cdr.charger_id,
        cdr.site_id,
        cdr.evse_id,
        cdr.connector_id,
        cdr.id_token,
        cdr.group_id,
        cdr.authorization_reference,
        iso_utc(cdr.started_at),
        iso_utc(cdr.stopped_at),
        iso_utc(cdr.ended_at),
        cdr.end_reason,
        cdr.energy_wh,
        cdr.charging_time_s,
        cdr.parking_time_s,
        cdr.parking_after_s,
        cdr.currency,
        cdr.tariff_id,
        None if cost is None else str(cost.total_cost.incl_vat),
        None if cost is None else str(cost.total_cost.excl_vat),
        None if cdr.tariff is None else encode_tariff(cdr.tariff),
        None if cost is None else _encoder.encode(cost).decode(),
        _encoder.encode(list(cdr.signed_meter_values)).decode(),
        at,
    )
    cur = conn.execute(
        "INSERT INTO cdrs (transaction_id, credit_of, charger_id, site_id, evse_id, connector_id, id_token,"
        " group_id, authorization_reference, started_at, stopped_at, ended_at, end_reason, energy_wh,"
        " charging_time_s, parking_time_s, parking_after_s, currency, tariff_id, total_cost,"
        " total_cost_excl_vat, tariff, cost, signed_meter_values, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )
    assert cur.lastrowid is not None
    return msgspec.structs.replace(cdr, id=int(cur.lastrowid), created_at=_at(at))


def _read(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> Cdr | None:
    v = conn.execute(f"SELECT {_CDR} FROM cdrs WHERE {where}", args).fetchone()
    return None if v is None else _cdr(v)


def _create(db: sqlite_utils.Database, cdr: Cdr, at: str) -> tuple[Cdr, bool]:
    conn = db.conn
    found = _read(conn, "transaction_id = ? AND credit_of IS NULL", (cdr.transaction_id,))
    if found is None:
        found = _insert(conn, cdr, at)
        created = True
    else:
        created = False
    conn.execute(
        "UPDATE billing_sessions SET ended_at = coalesce(ended_at, ?), end_reason = coalesce(end_reason, ?)"
        " WHERE transaction_id = ?",
        (iso_utc(found.ended_at), found.end_reason, found.transaction_id),
    )
    return found, created


def _credit(db: sqlite_utils.Database, cdr_id: int, at: str) -> Cdr:
    conn = db.conn
    original = _read(conn, "id = ?", (cdr_id,))
    if original is None:
        raise NotFoundError(f"CDR {cdr_id} does not exist", field="id")
    if original.credit_of is not None:
        raise ConflictError(f"CDR {cdr_id} is itself a credit", field="id", code="cdr_is_credit")
    if _read(conn, "credit_of = ?", (cdr_id,)) is not None:
        raise ConflictError(f"CDR {cdr_id} was credited already", field="id", code="already_credited")
    credit = msgspec.structs.replace(
        original, credit_of=cdr_id, cost=None if original.cost is None else negate(original.cost)
    )
    return _insert(conn, credit, at)


class CdrRepository:
    """The `cdrs` table. Writes wait for their commit: a CDR is money."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, cdr: Cdr) -> tuple[Cdr, bool]:
        """Insert the session's CDR (its `id` and `created_at` are set here) and mark the session ended, in
        one write; returns (the CDR, created). A session that has a CDR keeps it: (that one, False)."""
        return await self._store.write(functools.partial(_create, cdr=cdr, at=iso_utc(self._store.now())))

    async def credit(self, cdr_id: int) -> Cdr:
        """Insert the credit of CDR `cdr_id`: the same session, every amount negated. Raises NotFoundError
        (field id); ConflictError already_credited (a CDR is credited at most once) or cdr_is_credit."""
        return await self._store.write(
            functools.partial(_credit, cdr_id=cdr_id, at=iso_utc(self._store.now()))
        )

    def get(self, cdr_id: int) -> Cdr | None:
        return _read(self._store.reader, "id = ?", (cdr_id,))

    def of_transaction(self, tx_id: int) -> Cdr | None:
        """The session's CDR (not its credit), or None."""
        return _read(self._store.reader, "transaction_id = ? AND credit_of IS NULL", (tx_id,))

    def credit_of(self, cdr_id: int) -> Cdr | None:
        """The credit of CDR `cdr_id`, or None."""
        return _read(self._store.reader, "credit_of = ?", (cdr_id,))

    def page(
        self,
        limit: int,
        *,
        before: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        charger_id: str | None = None,
        site_id: str | None = None,
    ) -> list[Cdr]:
        """Up to `limit` CDRs, newest id first, below `before`, created in [since, until), of a charger or
        site. Raises ValueError for a naive since/until."""
        where, args = [], []
        for cond, arg in (
            ("id < ?", before),
            ("created_at >= ?", None if since is None else iso_utc(since)),
            ("created_at < ?", None if until is None else iso_utc(until)),
            ("charger_id = ?", charger_id),
            ("site_id = ?", site_id),
        ):
            if arg is not None:
                where.append(cond)
                args.append(arg)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        cur = self._store.reader.execute(
            f"SELECT {_CDR} FROM cdrs {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
        )
        return [_cdr(v) for v in cur.fetchall()]

    def usage(self, site_id: str, since: datetime, until: datetime) -> list[UsageRow]:
        """The site's CDRs (credits included) of sessions started in [since, until), as usage rows."""
        cur = self._store.reader.execute(
            "SELECT started_at, credit_of, energy_wh, currency, total_cost FROM cdrs"
            " WHERE site_id = ? AND started_at >= ? AND started_at < ?",
            (site_id, iso_utc(since), iso_utc(until)),
        )
        return [
            (_at(s), c is not None, float(e), cur_, None if t is None else Decimal(t))
            for s, c, e, cur_, t in cur.fetchall()
        ]
