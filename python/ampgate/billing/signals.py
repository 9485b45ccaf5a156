"""Dynamic energy prices per site, as the pricing engine's `PriceSignal`s.

Two sources: windows an operator sets over the API (`PUT /api/v1/sites/{id}/price-signals`, kept in
`site_price_signals`, replaced as a whole), and the PRICE intervals an OpenADR VTN sent (stored by the VEN in
`openadr_prices`, converted here: per kWh from the payload's units, KWH or none, MWH, WH, any case, rounded
half-up to 4 decimals; an interval without a currency, in other units, or not a finite number, is not used). A session is priced with the signals in its tariff's currency; the
operator's windows come first, so where both cover an instant the operator's price wins (the engine takes the
first signal covering it).

The running cost reads signals from memory (the operator's windows, kept since the last change; OpenADR
intervals read again every OPENADR_TTL_S); a session's final cost and its CDR read them from the tables.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import msgspec
import sqlite_utils

from ampgate.bus import Publisher
from ampgate.clock import Clock, iso_utc, parse_iso
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import SitePriceSignalsChanged
from ampgate.pricing import CURRENCY_DECIMALS, PriceSignal
from ampgate.pricing.validation import MAX_PRICE_DECIMALS
from ampgate.store.store import Store

__all__ = ["MAX_WINDOWS", "PriceSignalRepository", "PriceSignals", "SignalWindow", "SiteSignals"]

# A day-ahead market publishes 24 to 96 prices a day; a thousand windows is over a week of quarter-hours, and
# keeps a site's PUT (and what every running cost filters) small.
MAX_WINDOWS = 1000
# OpenADR prices are read again this often for running costs: a VTN sends them ahead of time, a minute late
# at most changes nothing that is not repriced from the table at the session's end anyway.
OPENADR_TTL_S = 60.0
# What one read of OpenADR prices covers around now, so that the sessions running at a site share it.
OPENADR_BEHIND = timedelta(days=2)
OPENADR_AHEAD = timedelta(days=1)
# OpenADR payload units -> multiplier giving a price per kWh (no units: per kWh, as the ElaadNL profile does).
_PER_KWH: dict[str | None, Decimal] = {
    None: Decimal(1),
    "KWH": Decimal(1),
    "MWH": Decimal("0.001"),
    "WH": Decimal(1000),
}
_PLACES = Decimal(1).scaleb(-MAX_PRICE_DECIMALS)


class SignalWindow(msgspec.Struct, frozen=True, kw_only=True):
    """An energy price per kWh without VAT over [start_at, end_at), in `currency`."""

    start_at: datetime
    end_at: datetime
    energy_price: Decimal
    currency: str


class SiteSignals(msgspec.Struct, frozen=True, kw_only=True):
    """A site's windows from the API, in time order; `updated_at` None: never set."""

    site_id: str
    windows: tuple[SignalWindow, ...]
    updated_at: datetime | None


class OpenAdrPrice(Protocol):
    start: datetime
    end: datetime
    price: float
    currency: str | None
    units: str | None


class OpenAdrPrices(Protocol):
    """`ampgate.openadr.PriceRepository`."""

    def prices(self, site_id: str, since: datetime, until: datetime, /) -> Sequence[Any]: ...


def _replace(db: sqlite_utils.Database, site_id: str, windows: Sequence[SignalWindow], at: str) -> None:
    db.conn.execute("DELETE FROM site_price_signals WHERE site_id = ?", (site_id,))
    db.conn.executemany(
        "INSERT INTO site_price_signals (site_id, start_at, end_at, energy_price, currency, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (site_id, iso_utc(w.start_at), iso_utc(w.end_at), str(w.energy_price), w.currency, at)
            for w in windows
        ],
    )


class PriceSignalRepository:
    """The `site_price_signals` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def replace(self, site_id: str, windows: Sequence[SignalWindow]) -> datetime:
        """Make `windows` the site's; returns the time written."""
        now = self._store.now()
        await self._store.write(
            functools.partial(_replace, site_id=site_id, windows=list(windows), at=iso_utc(now))
        )
        return now

    def windows(self, site_id: str) -> tuple[tuple[SignalWindow, ...], datetime | None]:
        """The site's windows in time order and when they were set."""
        cur = self._store.reader.execute(
            "SELECT start_at, end_at, energy_price, currency, updated_at FROM site_price_signals"
            " WHERE site_id = ? ORDER BY start_at, currency",
            (site_id,),
        )
        out, updated = [], None
        for start, end, p, currency, at in cur.fetchall():
            s, e = parse_iso(start), parse_iso(end)
            assert s is not None and e is not None
            out.append(SignalWindow(start_at=s, end_at=e, energy_price=Decimal(p), currency=currency))
            updated = parse_iso(at)
        return tuple(out), updated


def validate_windows(windows: Sequence[SignalWindow]) -> None:
    """Raise ValidationError naming `windows[i].<field>` for the first bad window: a naive or empty interval,
    an unknown currency, a price that is not a number or has more than 4 decimals, an overlap with another
    window of the same currency; `windows` when there are more than MAX_WINDOWS."""
    if len(windows) > MAX_WINDOWS:
        raise ValidationError(f"at most {MAX_WINDOWS} windows", field="windows")
    for i, w in enumerate(windows):
        at = f"windows[{i}]"
        for name in ("start_at", "end_at"):
            t = getattr(w, name)
            if t.tzinfo is None or t.utcoffset() is None:
                raise ValidationError(f"{name} needs a time zone (e.g. a trailing Z)", field=f"{at}.{name}")
        if w.end_at <= w.start_at:
            raise ValidationError("end_at must be after start_at", field=f"{at}.end_at")
        if w.currency not in CURRENCY_DECIMALS:
            raise ValidationError(f"unknown currency {w.currency!r}", field=f"{at}.currency")
        p = w.energy_price
        if not p.is_finite():
            raise ValidationError("energy_price must be a number", field=f"{at}.energy_price")
        if p != p.quantize(_PLACES):
            raise ValidationError(
                f"energy_price has more than {MAX_PRICE_DECIMALS} decimals", field=f"{at}.energy_price"
            )
    ordered = sorted(range(len(windows)), key=lambda i: (windows[i].currency, windows[i].start_at))
    for a, b in itertools.pairwise(ordered):
        wa, wb = windows[a], windows[b]
        if wa.currency == wb.currency and wb.start_at < wa.end_at:
            raise ValidationError(f"overlaps windows[{a}] (same currency)", field=f"windows[{b}].start_at")


def from_openadr(row: Any) -> tuple[str, PriceSignal] | None:
    """An OpenADR price as (currency, signal per kWh), or None when its currency or units are unknown."""
    factor = _PER_KWH.get(None if row.units is None else str(row.units).upper())
    if factor is None or not row.currency or not math.isfinite(row.price):
        return None
    # Half-up, as the engine rounds a signal: Decimal's own default (half-even) would price 123.45/MWh at 0.1234.
    price = (Decimal(repr(float(row.price))) * factor).quantize(_PLACES, ROUND_HALF_UP)
    return str(row.currency).upper(), PriceSignal(start=row.start, end=row.end, energy_price=price)


class PriceSignals:
    """A site's dynamic energy prices: the operator's windows and OpenADR's, as the engine's signals."""

    def __init__(
        self,
        rows: PriceSignalRepository,
        *,
        site_exists: Callable[[str], bool],
        openadr: OpenAdrPrices | None,
        bus: Publisher,
        clock: Clock,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._rows = rows
        self._site_exists = site_exists
        self._openadr = openadr
        self._bus = bus
        self._clock = clock
        self._monotonic = monotonic or clock.monotonic
        self._windows: dict[str, tuple[SignalWindow, ...]] = {}
        # site -> (read at, since, until, [(currency, signal)])
        self._adr: dict[str, tuple[float, datetime, datetime, list[tuple[str, PriceSignal]]]] = {}

    def get(self, site_id: str) -> SiteSignals:
        """The site's windows from the API. Raises NotFoundError (field site_id)."""
        if not self._site_exists(site_id):
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        windows, updated = self._rows.windows(site_id)
        return SiteSignals(site_id=site_id, windows=windows, updated_at=updated)

    async def replace(self, site_id: str, windows: Sequence[SignalWindow]) -> SiteSignals:
        """Replace the site's windows (an empty list removes them). They apply to the energy of every session
        at the site priced from now on, running ones included (its meter values already priced in an earlier
        window keep that window's price). Raises NotFoundError (field site_id), ValidationError naming
        `windows[i].<field>`."""
        if not self._site_exists(site_id):
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        validate_windows(windows)
        ordered = tuple(sorted(windows, key=lambda w: (w.start_at, w.currency)))
        updated = await self._rows.replace(site_id, ordered)
        self._windows[site_id] = ordered
        self._bus.publish(
            SitePriceSignalsChanged(at=self._clock.now(), site_id=site_id, windows=len(ordered))
        )
        return SiteSignals(site_id=site_id, windows=ordered, updated_at=updated)

    def signals(
        self, site_id: str | None, currency: str, since: datetime, until: datetime, *, fresh: bool = False
    ) -> list[PriceSignal]:
        """The signals in `currency` overlapping [since, until) at the site: the operator's windows, then
        OpenADR's. `fresh`: read the tables now (final costs, CDRs), else memory (running costs)."""
        if site_id is None:
            return []
        if fresh or site_id not in self._windows:
            self._windows[site_id] = self._rows.windows(site_id)[0]
        out = [
            PriceSignal(start=w.start_at, end=w.end_at, energy_price=w.energy_price)
            for w in self._windows[site_id]
            if w.currency == currency and w.start_at < until and w.end_at > since
        ]
        out.extend(s for c, s in self._openadr_signals(site_id, since, until, fresh) if c == currency)
        return out

    def _openadr_signals(
        self, site_id: str, since: datetime, until: datetime, fresh: bool
    ) -> list[tuple[str, PriceSignal]]:
        if self._openadr is None:
            return []
        if not fresh:
            cached = self._adr.get(site_id)
            now = self._monotonic()
            if (
                cached is not None
                and now - cached[0] < OPENADR_TTL_S
                and cached[1] <= since
                and until <= cached[2]
            ):
                return [(c, s) for c, s in cached[3] if s.start < until and s.end > since]
            wall = self._clock.now()
            lo, hi = min(since, wall - OPENADR_BEHIND), max(until, wall + OPENADR_AHEAD)
            converted = [
                c for r in self._openadr.prices(site_id, lo, hi) if (c := from_openadr(r)) is not None
            ]
            self._adr[site_id] = (now, lo, hi, converted)
            return [(c, s) for c, s in converted if s.start < until and s.end > since]
        return [c for r in self._openadr.prices(site_id, since, until) if (c := from_openadr(r)) is not None]
