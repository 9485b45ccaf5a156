"""The VEN's one table, `openadr_prices`: the PRICE intervals the VTN sent, per site, for the pricing work to
read (`prices`). Written on the store's writer thread, read on the trio thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.openadr.mapping import Price
from ampgate.store.store import Store

_COLUMNS = "site_id, event_id, interval_id, program_id, start_at, end_at, price, currency, units, received_at"


class PriceRow(msgspec.Struct, frozen=True, kw_only=True):
    """A price the VTN set for a site over [start, end), in `currency` per `units` (as its payload descriptor
    said, e.g. EUR per KWH)."""

    site_id: str
    event_id: str
    interval_id: int
    program_id: str
    start: datetime
    end: datetime
    price: float
    currency: str | None
    units: str | None
    received_at: datetime


def _at(text: str) -> datetime:
    at = parse_iso(text)
    assert at is not None  # NOT NULL
    return at


class PriceRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def replace_event(self, event_id: str, prices: Sequence[Price]) -> None:
        """Make `prices` the event's stored prices (an event the VTN changed replaces what it said before)."""
        received = iso_utc(self._store.now())
        rows = [
            (
                p.site_id,
                p.event_id,
                p.interval_id,
                p.program_id,
                iso_utc(p.start),
                iso_utc(p.end),
                p.price,
                p.currency,
                p.units,
                received,
            )
            for p in prices
        ]

        def op(db: sqlite_utils.Database) -> None:
            db.conn.execute("DELETE FROM openadr_prices WHERE event_id = ?", (event_id,))
            db.conn.executemany(f"INSERT INTO openadr_prices ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

        await self._store.write(op)

    async def delete_event(self, event_id: str) -> None:
        """Forget the prices of an event the VTN withdrew."""
        await self._store.write(
            lambda db: db.conn.execute("DELETE FROM openadr_prices WHERE event_id = ?", (event_id,))
        )

    def event_ids(self) -> set[str]:
        """Events with stored prices (to find, after a restart, those the VTN withdrew meanwhile)."""
        cur = self._store.reader.execute("SELECT DISTINCT event_id FROM openadr_prices")
        return {v[0] for v in cur.fetchall()}

    def prices(self, site_id: str, since: datetime, until: datetime) -> list[PriceRow]:
        """The site's prices whose interval overlaps [since, until), by start. The pricing work's read."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM openadr_prices WHERE site_id = ? AND start_at < ? AND end_at > ?"
            " ORDER BY start_at, event_id, interval_id",
            (site_id, iso_utc(until), iso_utc(since)),
        )
        return [
            PriceRow(
                site_id=v[0],
                event_id=v[1],
                interval_id=v[2],
                program_id=v[3],
                start=_at(v[4]),
                end=_at(v[5]),
                price=v[6],
                currency=v[7],
                units=v[8],
                received_at=_at(v[9]),
            )
            for v in cur.fetchall()
        ]
