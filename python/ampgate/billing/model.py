"""Billing's values: a priced session as recorded at its start (`SessionRow`), a charge detail record (`Cdr`),
and the money helpers both the API and the CDR export use.

Amounts shown as one number (the API's `total_cost`, a CSV's columns, what a charger is told) include VAT:
what the driver pays. Each CDR keeps the engine's whole `Cost` (both figures of every amount, the charging
periods), so nothing is lost by showing one.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from ampgate.pricing import Cost, Price, Tariff
from ampgate.store.transactions import SignedValue

__all__ = ["END_REASONS", "MONEY_FIELDS", "Cdr", "EndReason", "SessionRow", "negate"]

EndReason = Literal["evse_free", "charger_offline", "max_parking"]
# Why a session ended (the EVSE free again): the connector reported Available (or Reserved); the charger
# went offline; nobody said, and the longest wait after the transaction's stop passed (--cdr-max-parking-s).
END_REASONS: tuple[EndReason, ...] = ("evse_free", "charger_offline", "max_parking")
# The amounts of a `Cost`, in the order the API, the CSV export and a credit list them.
MONEY_FIELDS = (
    "total_cost",
    "energy_cost",
    "time_cost",
    "parking_cost",
    "flat_cost",
    "reservation_cost",
    "adjustment",
    "transaction_cost",
    "parking_after_cost",
)


class SessionRow(msgspec.Struct, frozen=True, kw_only=True):
    """A session as billing recorded it when it started: its charger and site, the site's time zone, the id
    token's group and the tariff it is priced by (a snapshot; None: no tariff applied), and when it ended."""

    transaction_id: int
    charger_id: str
    site_id: str | None
    time_zone: str
    group_id: str | None
    tariff: Tariff | None
    created_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None

    @property
    def tariff_id(self) -> str | None:
        return None if self.tariff is None else self.tariff.id


class Cdr(msgspec.Struct, frozen=True, kw_only=True):
    """A charge detail record: one per session, created when the EVSE is free again, never changed. A credit
    (`credit_of` the original's id) repeats the original's session with every amount negated.

    `started_at` / `stopped_at` are the transaction's, `ended_at` the session's end (`end_reason`); the times
    are seconds charging, not charging during the transaction, and parked after it (OCPI: total_time is
    charging + parking, total_parking_time parking). `cost` is the engine's `price(..., until=ended_at)` (None:
    no tariff applied), with `tariff` as it was at the session's start."""

    id: int
    transaction_id: int
    credit_of: int | None
    charger_id: str
    site_id: str | None
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    group_id: str | None
    authorization_reference: str | None
    started_at: datetime
    stopped_at: datetime
    ended_at: datetime
    end_reason: str
    energy_wh: float
    charging_time_s: float
    parking_time_s: float
    parking_after_s: float
    currency: str | None
    tariff: Tariff | None
    cost: Cost | None
    signed_meter_values: tuple[SignedValue, ...]
    created_at: datetime

    @property
    def tariff_id(self) -> str | None:
        return None if self.tariff is None else self.tariff.id

    @property
    def total_cost(self) -> Decimal | None:
        """What the driver pays, VAT included; None without a tariff."""
        return None if self.cost is None else self.cost.total_cost.incl_vat


def _neg(p: Price) -> Price:
    return Price(excl_vat=-p.excl_vat, incl_vat=None if p.incl_vat is None else -p.incl_vat)


def negate(cost: Cost) -> Cost:
    """`cost` with every amount negated (a credit): volumes and periods stay as they were."""
    return msgspec.structs.replace(cost, **{f: _neg(getattr(cost, f)) for f in MONEY_FIELDS})
