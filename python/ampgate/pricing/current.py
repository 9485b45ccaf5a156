"""What a tariff charges at one instant, before any session: the price list an app or a map shows (the public
locations route), selected as the engine selects (`ampgate.pricing.engine`, rule 4) so that the two agree.

For each dimension, in the order FLAT, ENERGY, TIME, PARKING_TIME: the elements that have a component of it, in
the tariff's order, whose restrictions on the local wall clock (start_time / end_time, day_of_week, start_date /
end_date: evaluated by the engine's own `Restriction` in the site's zone) hold at `at`. Restrictions that depend
on a session (min / max kWh, current, power, duration) cannot be decided before there is one: an element with
them is listed with them as its `conditions`, and the list goes on, up to and including the first element
without any (nothing after it can be selected at this instant). So a driver reads "0.59/kWh from 50 kW, else
0.49/kWh" rather than one of them on a guess. Reservation elements are left out: they price a reservation, not
a session.

A price signal covering `at` replaces the unit price of every ENERGY component listed (rule 6: a negative price
counts as 0, more than 4 decimals are rounded half-up; the component's VAT and step size stay), marked `dynamic`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

import msgspec

from ampgate.pricing.compiled import Restriction
from ampgate.pricing.localtime import LocalTime
from ampgate.pricing.model import Price, PriceSignal, Tariff, TariffDimensionType, TariffRestrictions
from ampgate.pricing.samples import ms

__all__ = ["Conditions", "CurrentComponent", "CurrentPrices", "current_prices"]

# The order a price list reads in (as the display line: a start fee, then what grows with the session).
DIMENSIONS: tuple[TariffDimensionType, ...] = ("FLAT", "ENERGY", "TIME", "PARKING_TIME")
# Unit prices have at most 4 decimals (`validate`); a price with VAT added is shown to the same precision.
_PLACES = Decimal("0.0001")


class Conditions(msgspec.Struct, frozen=True, kw_only=True):
    """The restrictions of an element that depend on the session, with OCPI's names and units: energy so far
    (kWh), current summed over phases (A), power (kW), duration so far (s); `min_*` inclusive, `max_*`
    exclusive."""

    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None


class CurrentComponent(msgspec.Struct, frozen=True, kw_only=True):
    """A price component that applies at the instant asked about (under its `conditions`, when it has any).
    `price` per unit without VAT (per kWh, per hour, or the fee for FLAT): the signal's when `dynamic`; `element`
    its index in the tariff's elements."""

    type: TariffDimensionType
    price: Decimal
    vat: Decimal | None
    step_size: int
    element: int
    conditions: Conditions | None = None
    dynamic: bool = False

    @property
    def price_incl_vat(self) -> Decimal:
        """What a driver pays per unit: the VAT added (none: the price itself), half-up to 4 decimals."""
        if self.vat is None:
            return self.price
        return (self.price * (1 + self.vat / 100)).quantize(_PLACES, ROUND_HALF_UP)


class CurrentPrices(msgspec.Struct, frozen=True, kw_only=True):
    """What a tariff charges at one instant: its components in DIMENSIONS order (a dimension absent is free
    then), the price signal in force (None: none), and the tariff's bounds on a session's total."""

    tariff_id: str
    currency: str
    components: tuple[CurrentComponent, ...]
    signal: PriceSignal | None
    min_price: Price | None
    max_price: Price | None


def _conditions(r: TariffRestrictions) -> Conditions | None:
    c = Conditions(
        min_kwh=r.min_kwh,
        max_kwh=r.max_kwh,
        min_current=r.min_current,
        max_current=r.max_current,
        min_power=r.min_power,
        max_power=r.max_power,
        min_duration=r.min_duration,
        max_duration=r.max_duration,
    )
    return None if c == Conditions() else c


def _local(r: TariffRestrictions) -> Restriction:
    """The engine's restriction on the wall clock only (what a session would add left out)."""
    return Restriction(
        TariffRestrictions(
            start_time=r.start_time,
            end_time=r.end_time,
            start_date=r.start_date,
            end_date=r.end_date,
            day_of_week=r.day_of_week,
        )
    )


def current_prices(
    tariff: Tariff, *, at: datetime, tz: tzinfo, signals: Sequence[PriceSignal] = ()
) -> CurrentPrices:
    """What `tariff` (validated) charges at `at` (aware) in the zone `tz` (the site's), with `signals` in the
    tariff's currency (the first covering `at` is in force, as in the engine). See the module docstring. Pure;
    O(the tariff's elements)."""
    t = ms(at)
    tod, weekday, day = LocalTime(tz, t, t).at(t)
    signal = next((s for s in signals if s.start <= at < s.end), None)
    signal_price = (
        None if signal is None else max(signal.energy_price, Decimal(0)).quantize(_PLACES, ROUND_HALF_UP)
    )
    # Per element: whether its wall-clock restrictions hold now, and what a session would have to meet.
    now: list[tuple[bool, Conditions | None]] = []
    for element in tariff.elements:
        r = element.restrictions
        if r is None:
            now.append((True, None))
        elif r.reservation is not None:
            now.append((False, None))
        else:
            now.append((_local(r).matches(tod, weekday, day, 0.0, None, None, 0), _conditions(r)))
    out: list[CurrentComponent] = []
    for dim in DIMENSIONS:
        for i, element in enumerate(tariff.elements):
            holds, conditions = now[i]
            component = next((c for c in element.price_components if c.type == dim), None)
            if component is None or not holds:
                continue
            dynamic = dim == "ENERGY" and signal_price is not None
            out.append(
                CurrentComponent(
                    type=dim,
                    price=signal_price if dynamic and signal_price is not None else component.price,
                    vat=component.vat,
                    step_size=component.step_size,
                    element=i,
                    conditions=conditions,
                    dynamic=dynamic,
                )
            )
            if conditions is None:
                break
    return CurrentPrices(
        tariff_id=tariff.id,
        currency=tariff.currency,
        components=tuple(out),
        signal=signal,
        min_price=tariff.min_price,
        max_price=tariff.max_price,
    )
