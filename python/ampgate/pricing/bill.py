"""From priced stretches to the `Cost`: exact money, min/max price, rounding once, the breakdown apportioned to
the total, and the OCPI-like charging periods.

Money is integers until the end. A component's price is in 1/10,000 of the currency per unit; energy is in
mWh (10^6 per kWh) and time in ms (3.6 * 10^6 per hour). One currency unit is `_D` "money units", the least
common multiple that makes energy, time and flat amounts integers: price * mWh * `_E`, price * ms * `_T` and
price * `_F`. VAT is in 1/10,000 of a percent, so an amount incl VAT is amount * (`_VAT_ONE` + vat) and its
unit is `_D` * `_VAT_ONE`. Nothing is rounded before `_round`, once per total.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime
from decimal import Decimal
from typing import cast

from ampgate.pricing.compiled import CompiledTariff, Component
from ampgate.pricing.model import (
    CdrDimension,
    CdrDimensionType,
    ChargingPeriod,
    Cost,
    Phase,
    Price,
    PricedDimension,
    TariffDimensionType,
)
from ampgate.pricing.samples import Samples, at_ms

__all__ = ["Period", "bill"]

_D = 180_000_000_000
_E = _D // (10_000 * 1_000_000)
_T = _D // (10_000 * 3_600_000)
_F = _D // 10_000
_VAT_ONE = 1_000_000
_MILLION = Decimal(1_000_000)  # kWh and hours in periods have 6 decimals (1 mWh, 3.6 ms)
_CATEGORIES = ("energy", "time", "parking", "flat", "reservation")


class Period:
    """A merged stretch while pricing: what applied and how much was used (mWh, ms), plus step extras."""

    __slots__ = (
        "charging", "dur", "e_comp", "e_extra", "e_price", "end", "energy", "flat", "key", "phase", "start",
        "t_comp", "t_extra",
    )  # fmt: skip

    def __init__(self, phase: Phase, start: int, key: tuple[object, ...], charging: bool):
        self.phase = phase
        self.start = start
        self.end = start
        self.key = key
        self.charging = charging
        self.energy = 0
        self.dur = 0
        self.e_comp: Component | None = None
        self.e_price: tuple[int, Decimal] | None = None
        self.t_comp: Component | None = None
        self.flat: Component | None = None
        self.e_extra = 0
        self.t_extra = 0


def bill(
    ct: CompiledTariff, periods: list[Period], final: bool, samples: Samples | None, detail: bool
) -> Cost:
    zero = [0, 0]
    sums: dict[str, list[int]] = {c: [0, 0] for c in _CATEGORIES}
    after = [0, 0]
    energy = charging_ms = parking_ms = after_ms = reservation_ms = 0

    def add(cat: str, v: int, vat: int, also: list[int] | None = None) -> None:
        s = sums[cat]
        s[0] += v
        s[1] += v * (_VAT_ONE + vat)
        if also is not None:
            also[0] += v
            also[1] += v * (_VAT_ONE + vat)

    for p in periods:
        if p.phase == "reservation":
            reservation_ms += p.dur
        elif p.phase == "after_transaction":
            after_ms += p.dur
            parking_ms += p.dur
        else:
            energy += p.energy
            if p.charging:
                charging_ms += p.dur
            else:
                parking_ms += p.dur
        if p.e_comp is not None and p.e_price is not None:
            add("energy", p.e_price[0] * (p.energy + p.e_extra) * _E, p.e_comp.vat)
        if p.t_comp is not None:
            v = p.t_comp.price * (p.dur + p.t_extra) * _T
            if p.phase == "reservation":
                add("reservation", v, p.t_comp.vat)
            elif p.phase == "after_transaction":
                add("parking", v, p.t_comp.vat, after)
            else:
                add("time" if p.charging else "parking", v, p.t_comp.vat)
        if p.flat is not None:
            add("reservation" if p.phase == "reservation" else "flat", p.flat.price * _F, p.flat.vat)
    ex = sum(s[0] for s in sums.values())
    inc = sum(s[1] for s in sums.values())
    dec = ct.decimals
    total = _clamped(ct, ex, inc, dec)
    tx = _clamped(ct, ex - after[0], inc - after[1], dec) if after != zero else total
    parts_ex = _apportion([sums[c][0] for c in _CATEGORIES], _D, dec)
    parts_in = _apportion([sums[c][1] for c in _CATEGORIES], _D * _VAT_ONE, dec)
    adj = (total[0] - sum(parts_ex), total[1] - sum(parts_in))
    money = {c: _price((parts_ex[i], parts_in[i]), dec) for i, c in enumerate(_CATEGORIES)}
    return Cost(
        tariff_id=ct.tariff.id,
        currency=ct.currency,
        total_cost=_price(total, dec),
        energy_cost=money["energy"],
        time_cost=money["time"],
        parking_cost=money["parking"],
        flat_cost=money["flat"],
        reservation_cost=money["reservation"],
        adjustment=_price(adj, dec),
        transaction_cost=_price(tx, dec),
        parking_after_cost=_price((total[0] - tx[0], total[1] - tx[1]), dec),
        energy_wh=Decimal(energy).scaleb(-3),
        charging_time_s=Decimal(charging_ms).scaleb(-3),
        parking_time_s=Decimal(parking_ms).scaleb(-3),
        parking_after_s=Decimal(after_ms).scaleb(-3),
        reservation_time_s=Decimal(reservation_ms).scaleb(-3),
        charging_periods=tuple(_period(ct, p, samples) for p in periods) if detail else (),
        final=final,
    )


def _clamped(ct: CompiledTariff, ex: int, inc: int, dec: int) -> tuple[int, int]:
    """The totals (money units; incl in money units * _VAT_ONE) bounded by min/max price, each rounded once.
    Excl and incl are bounded each by its own figure (OCPI: both rules apply); a bound without incl_vat is
    only accepted by `validate` for a tariff without VAT, where incl equals excl."""
    lo, hi = ct.min_price, ct.max_price
    if lo is None and hi is None:
        return _round(ex, _D, dec), _round(inc, _D * _VAT_ONE, dec)
    if lo is not None:
        ex = max(ex, int(lo.excl_vat * _D))
        inc = max(inc, int(_incl(lo) * _D * _VAT_ONE))
    if hi is not None:
        ex = min(ex, int(hi.excl_vat * _D))
        inc = min(inc, int(_incl(hi) * _D * _VAT_ONE))
    return _round(ex, _D, dec), _round(inc, _D * _VAT_ONE, dec)


def _incl(p: Price) -> Decimal:
    return p.excl_vat if p.incl_vat is None else p.incl_vat


def _round(v: int, den: int, dec: int) -> int:
    """v / den in minor units of the currency, half-up (amounts are never negative)."""
    q = v * 10**dec
    return (2 * q + den) // (2 * den)


def _apportion(parts: list[int], den: int, dec: int) -> list[int]:
    """Round each part to minor units so they sum to the rounded sum: floors, then one more unit to the largest
    remainders (the first category on a tie)."""
    q = 10**dec
    total = _round(sum(parts), den, dec)
    floors = [p * q // den for p in parts]
    rems = [p * q - f * den for p, f in zip(parts, floors, strict=True)]
    for i in sorted(range(len(parts)), key=lambda i: -rems[i])[: total - sum(floors)]:
        floors[i] += 1
    return floors


def _price(minor: tuple[int, int], dec: int) -> Price:
    return Price(excl_vat=Decimal(minor[0]).scaleb(-dec), incl_vat=Decimal(minor[1]).scaleb(-dec))


def _kwh(mwh: int) -> Decimal:
    return Decimal(mwh) / _MILLION  # exact, and without trailing zeros: 20.45, not 20.450000


def _hours(ms: int) -> Decimal:
    """ms in hours to 6 decimals (3.6 ms), half-up, without trailing zeros."""
    return Decimal((ms * 20 + 36) // 72) / _MILLION


def _extremes(samples: Samples, start: datetime, end: datetime) -> list[CdrDimension]:
    """MIN/MAX_POWER and MIN/MAX_CURRENT over the samples held in a transaction period, when the tariff
    restricts on them (OCPI: the period carries what made its price change)."""
    j0 = max(bisect_right(samples.ats, start) - 1, 0)
    j1 = bisect_left(samples.ats, end)
    out: list[CdrDimension] = []
    kinds: tuple[tuple[list[float | None], int, CdrDimensionType, CdrDimensionType], ...] = (
        (samples.powers, 1000, "MIN_POWER", "MAX_POWER"),
        (samples.currents, 1, "MIN_CURRENT", "MAX_CURRENT"),
    )
    for values, scale, low, high in kinds:
        if values:
            chunk = values[j0 : max(j1, j0 + 1)]
            # No None (the usual case): the slice itself, without a Python-level pass over it.
            seen = [v for v in chunk if v is not None] if None in chunk else cast("list[float]", chunk)
            if seen:
                lo, hi = min(seen) / scale, max(seen) / scale
                out.append(CdrDimension(type=low, volume=Decimal(repr(round(lo, 3)))))
                out.append(CdrDimension(type=high, volume=Decimal(repr(round(hi, 3)))))
    return out


def _period(ct: CompiledTariff, p: Period, samples: Samples | None) -> ChargingPeriod:
    start, end = at_ms(p.start), at_ms(p.end)
    dims: list[CdrDimension] = []
    priced: list[PricedDimension] = []
    if p.phase == "reservation":
        dims.append(CdrDimension(type="RESERVATION_TIME", volume=_hours(p.dur)))
    else:
        if p.phase == "transaction":
            dims.append(CdrDimension(type="ENERGY", volume=_kwh(p.energy)))
        dims.append(CdrDimension(type="TIME" if p.charging else "PARKING_TIME", volume=_hours(p.dur)))
        if p.phase == "transaction" and samples is not None and (samples.powers or samples.currents):
            dims.extend(_extremes(samples, start, end))
    if p.flat is not None:
        priced.append(_priced("FLAT", p.flat, p.flat.source[0], Decimal(1), Decimal(1)))
    if p.e_comp is not None and p.e_price is not None:
        priced.append(_priced("ENERGY", p.e_comp, p.e_price[1], _kwh(p.energy), _kwh(p.energy + p.e_extra)))
    if p.t_comp is not None:
        kind: TariffDimensionType = "TIME" if p.charging or p.phase == "reservation" else "PARKING_TIME"
        priced.append(_priced(kind, p.t_comp, p.t_comp.source[0], _hours(p.dur), _hours(p.dur + p.t_extra)))
    return ChargingPeriod(
        start_date_time=start,
        end_date_time=end,
        phase=p.phase,
        charging=p.charging,
        dimensions=tuple(dims),
        priced=tuple(priced),
        tariff_id=ct.tariff.id,
    )


def _priced(
    kind: TariffDimensionType, c: Component, unit: Decimal, volume: Decimal, billed: Decimal
) -> PricedDimension:
    return PricedDimension(
        type=kind,
        element=c.element,
        price=unit,
        vat=c.source[1],
        volume=volume,
        billed_volume=billed,
    )
