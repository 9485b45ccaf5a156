"""The `customer_information_requests` table: one row per CustomerInformation the node sent, whom it named and
how the charger answered. The report's text is not here: its parts are kept by `ampgate.reports` (kind
NotifyCustomerInformation), and a deletion removes the row and the parts in one commit."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.customer.state import NOTIFY_CUSTOMER_INFORMATION, REQUESTED, Customer
from ampgate.reports.repository import delete_report
from ampgate.store.store import Store

_COLUMNS = (
    "id, charger_id, request_id, report, clear, customer, status, error_code, requested_at, answered_at"
)
_customer = msgspec.json.Decoder(Customer).decode
_encode = msgspec.json.encode


class CustomerInformationRow(msgspec.Struct, frozen=True, kw_only=True):
    """A request as stored; `status` Requested until the charger answered (Accepted, Rejected, Invalid) or the
    call failed (Failed, TimedOut, with `error_code`)."""

    charger_id: str
    request_id: int
    report: bool
    clear: bool
    customer: Customer
    status: str
    error_code: str | None
    requested_at: datetime
    answered_at: datetime | None


def _row(v: tuple[Any, ...]) -> CustomerInformationRow:
    requested = parse_iso(v[8])
    assert requested is not None  # NOT NULL
    return CustomerInformationRow(
        charger_id=v[1],
        request_id=v[2],
        report=bool(v[3]),
        clear=bool(v[4]),
        customer=_customer(v[5]),
        status=v[6],
        error_code=v[7],
        requested_at=requested,
        answered_at=parse_iso(v[9]),
    )


def _read(conn: sqlite3.Connection, charger_id: str, request_id: int) -> CustomerInformationRow | None:
    v = conn.execute(
        f"SELECT {_COLUMNS} FROM customer_information_requests WHERE charger_id = ? AND request_id = ?",
        (charger_id, request_id),
    ).fetchone()
    return None if v is None else _row(v)


def _insert(
    db: sqlite_utils.Database,
    charger_id: str,
    request_id: int,
    report: bool,
    clear: bool,
    customer: Customer,
    at: str,
) -> CustomerInformationRow:
    db.conn.execute(
        "INSERT INTO customer_information_requests (charger_id, request_id, report, clear, customer, status,"
        " requested_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (charger_id, request_id, int(report), int(clear), _encode(customer).decode(), REQUESTED, at),
    )
    row = _read(db.conn, charger_id, request_id)
    assert row is not None
    return row


def _answer(
    db: sqlite_utils.Database, charger_id: str, request_id: int, status: str, error_code: str | None, at: str
) -> CustomerInformationRow:
    db.conn.execute(
        "UPDATE customer_information_requests SET status = ?, error_code = ?, answered_at = ?"
        " WHERE charger_id = ? AND request_id = ?",
        (status, error_code, at, charger_id, request_id),
    )
    row = _read(db.conn, charger_id, request_id)
    if row is None:  # deleted by an admin while the call was out
        raise KeyError(f"customer information request {request_id} of {charger_id} no longer exists")
    return row


def _delete(db: sqlite_utils.Database, charger_id: str, request_id: int) -> bool:
    cur = db.conn.execute(
        "DELETE FROM customer_information_requests WHERE charger_id = ? AND request_id = ?",
        (charger_id, request_id),
    )
    parts = delete_report(db, charger_id, NOTIFY_CUSTOMER_INFORMATION, request_id)
    return cur.rowcount > 0 or parts


class CustomerInformationRepository:
    """The customer_information_requests table (and, on deletion, the report parts that go with a row)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self, charger_id: str, request_id: int, report: bool, clear: bool, customer: Customer, at: datetime
    ) -> CustomerInformationRow:
        """Store a request about to be sent (status Requested); committed before it returns."""
        return await self._store.write(
            functools.partial(
                _insert,
                charger_id=charger_id,
                request_id=request_id,
                report=report,
                clear=clear,
                customer=customer,
                at=iso_utc(at),
            )
        )

    async def record_answer(
        self, charger_id: str, request_id: int, status: str, error_code: str | None, at: datetime
    ) -> CustomerInformationRow:
        """The charger's status, or the call's failure (`error_code` set). Raises KeyError if the row is gone."""
        return await self._store.write(
            functools.partial(
                _answer,
                charger_id=charger_id,
                request_id=request_id,
                status=status,
                error_code=error_code,
                at=iso_utc(at),
            )
        )

    async def delete(self, charger_id: str, request_id: int) -> bool:
        """Remove the request and its report's parts in one commit; False if there was neither."""
        return await self._store.write(
            functools.partial(_delete, charger_id=charger_id, request_id=request_id)
        )

    def get(self, charger_id: str, request_id: int) -> CustomerInformationRow | None:
        return _read(self._store.reader, charger_id, request_id)

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[CustomerInformationRow]:
        """Up to `limit` of the charger's requests, newest (highest request id) first, below `before`."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM customer_information_requests WHERE charger_id = ? AND request_id < ?"
            " ORDER BY request_id DESC LIMIT ?",
            (charger_id, 2**63 - 1 if before is None else before, limit),
        )
        return [_row(v) for v in cur.fetchall()]
