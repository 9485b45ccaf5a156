"""Short constructors for tariffs and sessions in the pricing tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ampgate.pricing import (
    ChargingChange,
    Cost,
    MeterSample,
    Price,
    PriceComponent,
    SessionUsage,
    Tariff,
    TariffElement,
    TariffRestrictions,
    price,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def D(x: str | int) -> Decimal:
    return Decimal(str(x))


def comp(kind: str, unit: str | int, *, step: int = 1, vat: str | int | None = None) -> PriceComponent:
    return PriceComponent(
        type=kind,  # type: ignore[arg-type]
        price=D(unit),
        step_size=step,
        vat=None if vat is None else D(vat),
    )


def element(*components: PriceComponent, **restrictions: Any) -> TariffElement:
    r = None
    if restrictions:
        fixed = {k: (D(v) if k.endswith(("kwh", "current", "power")) else v) for k, v in restrictions.items()}
        if "day_of_week" in fixed:
            fixed["day_of_week"] = tuple(fixed["day_of_week"])
        r = TariffRestrictions(**fixed)
    return TariffElement(price_components=tuple(components), restrictions=r)


def tariff(*elements: TariffElement, currency: str = "EUR", id: str = "T1", **kw: Any) -> Tariff:
    for bound in ("min_price", "max_price"):
        if bound in kw and isinstance(kw[bound], tuple):
            excl, incl = kw[bound]
            kw[bound] = Price(excl_vat=D(excl), incl_vat=None if incl is None else D(incl))
    return Tariff(id=id, currency=currency, elements=tuple(elements), **kw)


def at(text: str, tz: ZoneInfo = BERLIN) -> datetime:
    """A local wall time in `tz` ("2024-06-03 09:30")."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def steady(
    start: datetime,
    minutes: float,
    kwh: float,
    *,
    every_s: int = 60,
    power_w: float | None = None,
    current_a: float | None = None,
) -> tuple[MeterSample, ...]:
    """Samples every `every_s` over `minutes` from `start`, energy rising linearly to `kwh`."""
    total_s = int(minutes * 60)
    out = []
    for s in range(0, total_s + 1, every_s):
        out.append(MeterSample(start + timedelta(seconds=s), kwh * 1000 * s / total_s, power_w, current_a))
    if total_s % every_s:
        out.append(MeterSample(start + timedelta(seconds=total_s), kwh * 1000, power_w, current_a))
    return tuple(out)


def session(
    start: datetime,
    *,
    charge_min: float,
    kwh: float = 0.0,
    park_min: float = 0.0,
    after_min: float = 0.0,
    power_w: float | None = None,
    current_a: float | None = None,
    ended: bool = True,
) -> SessionUsage:
    """Charging `charge_min` (energy `kwh`), then not charging for `park_min` inside the transaction, then
    `after_min` of parking after the transaction ended; ended (EVSE free) at the end when `ended`."""
    stop = start + timedelta(minutes=charge_min + park_min)
    end = stop + timedelta(minutes=after_min)
    changes = (ChargingChange(start + timedelta(minutes=charge_min), False),) if park_min else ()
    return SessionUsage(
        started_at=start,
        samples=steady(start, charge_min, kwh, power_w=power_w, current_a=current_a),
        charging=changes,
        stopped_at=stop if ended or after_min else None,
        ended_at=end if ended else None,
    )


def cost_of(t: Tariff, usage: SessionUsage, until: datetime | None = None, **kw: Any) -> Cost:
    end = until or usage.ended_at or usage.stopped_at
    assert end is not None
    return price(t, usage, until=end, tz=kw.pop("tz", BERLIN), **kw)


def money(p: Price) -> tuple[str, str]:
    return (str(p.excl_vat), str(p.incl_vat))
