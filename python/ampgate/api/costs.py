"""A session's cost as the API shows it (a transaction's `cost`, a CDR's): every amount a JSON number in the
tariff's currency, VAT included (what the driver pays and what the charger is told), with the same amounts
without VAT under `excl_vat` for operators."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from ampgate.billing.model import MONEY_FIELDS
from ampgate.pricing import Cost


class Amounts(msgspec.Struct, kw_only=True):
    """The amounts without VAT."""

    total_cost: Decimal
    energy_cost: Decimal
    time_cost: Decimal
    parking_cost: Decimal
    flat_cost: Decimal
    reservation_cost: Decimal
    adjustment: Decimal
    transaction_cost: Decimal
    parking_after_cost: Decimal


class CostRead(msgspec.Struct, kw_only=True):
    """What a session costs (so far, while it runs; `final` once the EVSE is free again). Amounts include VAT:
    `total_cost` = energy + time + parking + flat + reservation + adjustment (min/max price) =
    `transaction_cost` (what the charger was told at the transaction's end) + `parking_after_cost` (parking
    after it until the EVSE was free). Volumes: energy in Wh, times in seconds (`parking_time_s` includes the
    parking after the transaction)."""

    currency: str
    tariff_id: str
    total_cost: Decimal
    energy_cost: Decimal
    time_cost: Decimal
    parking_cost: Decimal
    flat_cost: Decimal
    reservation_cost: Decimal
    adjustment: Decimal
    transaction_cost: Decimal
    parking_after_cost: Decimal
    excl_vat: Amounts
    energy_wh: Decimal
    charging_time_s: Decimal
    parking_time_s: Decimal
    parking_after_s: Decimal
    final: bool


def _incl(cost: Cost, name: str) -> Decimal:
    p = getattr(cost, name)
    return p.incl_vat if p.incl_vat is not None else p.excl_vat


def cost_read(cost: Cost | None) -> CostRead | None:
    """The engine's Cost as the API shows it (None stays None: no tariff applies)."""
    if cost is None:
        return None
    return CostRead(
        currency=cost.currency,
        tariff_id=cost.tariff_id,
        **{name: _incl(cost, name) for name in MONEY_FIELDS},
        excl_vat=Amounts(**{name: getattr(cost, name).excl_vat for name in MONEY_FIELDS}),
        energy_wh=cost.energy_wh,
        charging_time_s=cost.charging_time_s,
        parking_time_s=cost.parking_time_s,
        parking_after_s=cost.parking_after_s,
        final=cost.final,
    )
