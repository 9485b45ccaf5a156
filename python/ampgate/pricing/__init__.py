"""Tariffs and the one pricing engine: pure values and functions (no I/O, no store, no clock).

Owns the tariff model (OCPI 2.2.1's Tariff, with its names and semantics), its validation, the engine that
prices a session, and the one-line tariff text for a charger's display. Everything that stores tariffs,
assigns them, reads meter values, talks to chargers or to OCPI parties builds on this interface:

    validate(tariff)                      raise ValidationError(field="elements[0].restrictions.min_kwh") or
                                          return; problems(tariff) lists every broken rule
    compile_tariff(tariff)                validate + compile once; pass the result to price() when the same
                                          tariff prices a session on every meter update
    price(tariff, usage, *, until, tz, signals=(), periods=True) -> Cost
                                          the session's cost up to `until`, in the site's zone `tz`;
                                          periods=False skips the period list (same totals)
    summary(tariff, *, language=None, max_length=512, incl_vat=True) -> str
                                          "0.35 EUR/kWh + 2.00 EUR/h parking", or the tariff's own text
    current_prices(tariff, *, at, tz, signals=()) -> CurrentPrices
                                          the components that apply at `at` (before any session), chosen
                                          as the engine chooses; those a session's values decide carry them
                                          as conditions

One function for every number a session shows, so they agree:
- running cost (API, CostUpdated, RunningCost): `price(t, usage_so_far, until=now, tz=site_tz)`;
- cost told to the charger when the transaction ends (TransactionEvent Ended totalCost, FinalCost):
  `price(t, usage, until=stopped_at, ...)` with `usage.stopped_at` set; equal to any later Cost's
  `transaction_cost`;
- the CDR: `price(t, usage, until=ended_at, ...)` with `usage.ended_at` set (the EVSE free again): its
  `total_cost` is the charger's total plus `parking_after_cost`, shown separately, and `final` is True.
The running total never decreases while samples arrive and `until` moves on; the final total is never below
a running total shown before it. `Cost` carries the API's `total_cost`, `energy_cost`, `time_cost`,
`parking_cost`, `flat_cost` (each a `Price` with excl and incl VAT), and OCPI's charging periods.

The rules (OCPI's, and where OCPI leaves a choice, ours) are in `ampgate.pricing.engine` and docs/pricing.md.

Modules: `model` (the Structs), `validation`, `compiled` (a tariff in integers, restrictions as numbers),
`engine` (phases, stretches, selection, step sizes) with `samples` (meter samples, read lazily), `localtime`
(the site's wall clock over DST) and `bill` (exact money, rounding, the Cost), `text` (the display line) and
`current` (what a tariff charges at an instant, before any session).
"""

from ampgate.pricing.compiled import CompiledTariff, compile_tariff
from ampgate.pricing.current import Conditions, CurrentComponent, CurrentPrices, current_prices
from ampgate.pricing.engine import price
from ampgate.pricing.model import (
    CURRENCY_DECIMALS,
    CdrDimension,
    ChargingChange,
    ChargingPeriod,
    Cost,
    DisplayText,
    MeterSample,
    Price,
    PriceComponent,
    PricedDimension,
    PriceSignal,
    Reservation,
    SessionUsage,
    Tariff,
    TariffElement,
    TariffRestrictions,
)
from ampgate.pricing.text import summary
from ampgate.pricing.validation import Problem, problems, validate

__all__ = [
    "CURRENCY_DECIMALS",
    "CdrDimension",
    "ChargingChange",
    "ChargingPeriod",
    "CompiledTariff",
    "Conditions",
    "Cost",
    "CurrentComponent",
    "CurrentPrices",
    "DisplayText",
    "MeterSample",
    "Price",
    "PriceComponent",
    "PriceSignal",
    "PricedDimension",
    "Problem",
    "Reservation",
    "SessionUsage",
    "Tariff",
    "TariffElement",
    "TariffRestrictions",
    "compile_tariff",
    "current_prices",
    "price",
    "problems",
    "summary",
    "validate",
]
