"""CDRs for operators and finance: reads, credits, the CSV export and the per-site usage report.

A CDR is never changed. A correction is a credit: `credit(id)` adds a CDR for the same session with every amount
negated and `credit_of` the original; a CDR is credited at most once (409 `already_credited`), a credit never
(409 `cdr_is_credit`). Both publish `cdr.created`.

The CSV export has one row per CDR, its columns in `CSV_COLUMNS` order (stable: finance imports by position as
often as by name), times in ISO 8601 UTC, decimals as plain numbers, amounts incl VAT unless the column says
excl_vat, empty cells for what a CDR does not have.

The usage report sums a site's CDRs per bucket of `step` seconds (multiples of it since the epoch, UTC, as the
occupancy report buckets): sessions and energy of the sessions started in the bucket, revenue (VAT included)
net of credits, which fall in their session's bucket; in the currency most of the window's priced CDRs use
(`currency`: others are left out of `revenue`); and the site's occupancy from the availability part.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from ampgate.billing.model import MONEY_FIELDS, Cdr
from ampgate.billing.repository import CdrRepository
from ampgate.bus import Publisher
from ampgate.clock import Clock, iso_utc
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import CdrCreated

__all__ = ["CSV_COLUMNS", "Cdrs", "UsagePoint", "UsageReport", "csv_text"]

HOUR_S = 3600
# The usage report: a day per point unless asked otherwise; 30 days when no window is named; a window as long
# as the occupancy kept (400 days); buckets of whole hours (so occupancy, kept per hour, fits them) up to a month.
DEFAULT_STEP_S = 86_400
DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=400)
MAX_STEP_S = 31 * 86_400

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "credit_of",
    "transaction_id",
    "charger_id",
    "site_id",
    "evse_id",
    "connector_id",
    "id_token",
    "group_id",
    "authorization_reference",
    "started_at",
    "stopped_at",
    "ended_at",
    "end_reason",
    "energy_wh",
    "charging_time_s",
    "parking_time_s",
    "parking_after_s",
    "tariff_id",
    "currency",
    *MONEY_FIELDS,
    "total_cost_excl_vat",
    "created_at",
)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def csv_row(cdr: Cdr) -> list[str]:
    """One CDR in CSV_COLUMNS order."""
    cost = cdr.cost
    values: dict[str, Any] = {
        name: getattr(cdr, name)
        for name in CSV_COLUMNS
        if name not in MONEY_FIELDS and name != "total_cost_excl_vat"
    }
    for name in MONEY_FIELDS:
        values[name] = None if cost is None else getattr(cost, name).incl_vat
    values["total_cost_excl_vat"] = None if cost is None else cost.total_cost.excl_vat
    return [_plain(values[name]) for name in CSV_COLUMNS]


def csv_text(cdrs: Iterable[Cdr]) -> str:
    """The CDRs as CSV (RFC 4180, CRLF line ends), with the header."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for cdr in cdrs:
        w.writerow(csv_row(cdr))
    return out.getvalue()


class UsagePoint(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    sessions: int
    energy_kwh: float
    revenue: Decimal
    currency: str | None
    occupancy_pct: float | None


class UsageReport(msgspec.Struct, frozen=True, kw_only=True):
    site_id: str
    step_s: int
    currency: str | None
    points: list[UsagePoint]


class Occupancy(Protocol):
    hour_start: int

    @property
    def occupancy(self) -> float | None: ...


class Cdrs:
    """The CDRs' reads, credits and reports."""

    def __init__(
        self,
        rows: CdrRepository,
        *,
        site_exists: Callable[[str], bool],
        occupancy: Callable[[str, datetime, datetime, int], Sequence[Any]] | None,
        bus: Publisher,
        clock: Clock,
    ) -> None:
        self._rows = rows
        self._site_exists = site_exists
        self._occupancy = occupancy
        self._bus = bus
        self._clock = clock

    def get(self, cdr_id: int) -> Cdr | None:
        return self._rows.get(cdr_id)

    def credit_of(self, cdr_id: int) -> Cdr | None:
        """The credit of CDR `cdr_id`, or None."""
        return self._rows.credit_of(cdr_id)

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
        """Up to `limit` CDRs newest first (see `CdrRepository.page`)."""
        return self._rows.page(
            limit, before=before, since=since, until=until, charger_id=charger_id, site_id=site_id
        )

    async def credit(self, cdr_id: int) -> Cdr:
        """Credit CDR `cdr_id` (see the module docstring). Raises NotFoundError (field id), ConflictError
        already_credited / cdr_is_credit."""
        credit = await self._rows.credit(cdr_id)
        self._bus.publish(
            CdrCreated(
                at=self._clock.now(),
                charger_id=credit.charger_id,
                cdr_id=credit.id,
                transaction_id=credit.transaction_id,
                credit_of=credit.credit_of,
                site_id=credit.site_id,
                currency=credit.currency,
                total_cost=credit.total_cost,
                ended_at=credit.ended_at,
            )
        )
        return credit

    def usage(
        self, site_id: str, since: datetime | None, until: datetime | None, step_s: int = DEFAULT_STEP_S
    ) -> UsageReport:
        """The site's usage per bucket (see the module docstring), every bucket in the window, oldest first.
        Raises NotFoundError (field site_id), ValidationError naming step (not whole hours, 1 h to 31 days),
        until (not after since) or since (a window over 400 days)."""
        if step_s < HOUR_S or step_s % HOUR_S or step_s > MAX_STEP_S:
            raise ValidationError(
                f"step is a whole number of hours in seconds, {HOUR_S} to {MAX_STEP_S}", field="step"
            )
        until = until or self._clock.now()
        since = since or until - DEFAULT_WINDOW
        if until <= since:
            raise ValidationError("until must be after since", field="until")
        if until - since > MAX_WINDOW:
            raise ValidationError(f"since to until spans at most {MAX_WINDOW.days} days", field="since")
        if not self._site_exists(site_id):
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        first = int(since.timestamp() // step_s) * step_s
        end = until.timestamp()
        starts = list(range(first, int(-(-end // 1)), step_s))
        lo = datetime.fromtimestamp(first, UTC)
        rows = self._rows.usage(site_id, lo, until)
        priced = Counter(c for _, _, _, c, t in rows if c is not None and t is not None)
        currency = min(priced, key=lambda c: (-priced[c], c)) if priced else None
        sessions = dict.fromkeys(starts, 0)
        energy = dict.fromkeys(starts, 0.0)
        revenue = dict.fromkeys(starts, Decimal(0))
        for started, credit, wh, cur, total in rows:
            b = int(started.timestamp() // step_s) * step_s
            if b not in sessions:
                continue
            if not credit:
                sessions[b] += 1
                energy[b] += wh
            if cur == currency and total is not None:
                revenue[b] += total
        occupancy: dict[int, float | None] = {}
        if self._occupancy is not None:
            for o in self._occupancy(site_id, since, until, step_s):
                occupancy[o.hour_start] = o.occupancy
        return UsageReport(
            site_id=site_id,
            step_s=step_s,
            currency=currency,
            points=[
                UsagePoint(
                    at=datetime.fromtimestamp(b, UTC),
                    sessions=sessions[b],
                    energy_kwh=round(energy[b] / 1000, 3),
                    revenue=revenue[b],
                    currency=currency,
                    occupancy_pct=None if (o := occupancy.get(b)) is None else round(o * 100, 1),
                )
                for b in starts
            ],
        )
