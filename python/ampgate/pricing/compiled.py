"""A validated tariff turned into what the engine evaluates fast: integer prices, restrictions as numbers, and
for each phase of a session the candidates per dimension in OCPI's order.

Units inside the engine are integers: money in 1/10,000 of the currency (prices have at most 4 decimals),
VAT in 1/10,000 of a percent, time in milliseconds since the epoch, energy in milli-Wh, times of day in
milliseconds since local midnight, dates as days since 1970-01-01 in local time. Thresholds the samples are
compared with (kWh, power, current) stay floats in Wh, W and A, as the samples are.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from ampgate.pricing.model import CURRENCY_DECIMALS, Tariff, TariffDimensionType, TariffRestrictions
from ampgate.pricing.validation import validate

__all__ = ["DAY_MS", "CompiledTariff", "Component", "Restriction", "Table", "compile_tariff"]

DAY_MS = 86_400_000
_WEEKDAYS = {
    "MONDAY": 0,
    "TUESDAY": 1,
    "WEDNESDAY": 2,
    "THURSDAY": 3,
    "FRIDAY": 4,
    "SATURDAY": 5,
    "SUNDAY": 6,
}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_PRICE_SCALE = 10_000  # 4 decimals


class Component:
    """One price component, in integers: `price` in 1/10,000 currency per unit, `vat` in 1/10,000 percent
    (0 when None), `step` in the dimension's base unit (Wh or s)."""

    __slots__ = ("dimension", "element", "price", "source", "step", "vat")

    def __init__(
        self, dimension: TariffDimensionType, element: int, price: Decimal, step: int, vat: Decimal | None
    ):
        self.dimension = dimension
        self.element = element
        self.price = int(price * _PRICE_SCALE)
        self.step = step
        self.vat = 0 if vat is None else int(vat * _PRICE_SCALE)
        self.source = (price, vat)


class Restriction:
    """OCPI TariffRestrictions as numbers; None where not restricted. `tod` is (start, end) in ms of the day,
    end > start for a window within the day and end < start for one across midnight."""

    __slots__ = ("current", "dates", "days", "duration", "kwh", "power", "tod")

    def __init__(self, r: TariffRestrictions):
        self.tod: tuple[int, int] | None = None
        if r.start_time is not None or r.end_time is not None:
            start = _tod(r.start_time) if r.start_time is not None else 0
            end = _tod(r.end_time) if r.end_time is not None else 0
            self.tod = (start, end or DAY_MS)  # an end of 00:00 is the end of the day
        self.days = frozenset(_WEEKDAYS[d] for d in r.day_of_week) if r.day_of_week else None
        self.dates: tuple[int | None, int | None] | None = None
        if r.start_date is not None or r.end_date is not None:
            self.dates = (_day(r.start_date), _day(r.end_date))
        self.kwh = _range(r.min_kwh, r.max_kwh, 1000)
        self.power = _range(r.min_power, r.max_power, 1000)
        self.current = _range(r.min_current, r.max_current, 1)
        self.duration: tuple[int | None, int | None] | None = None
        if r.min_duration is not None or r.max_duration is not None:
            lo = None if r.min_duration is None else r.min_duration * 1000
            hi = None if r.max_duration is None else r.max_duration * 1000
            self.duration = (lo, hi)

    @property
    def local(self) -> bool:
        return self.tod is not None or self.days is not None or self.dates is not None

    def matches(
        self,
        tod: int,
        weekday: int,
        day: int,
        wh: float,
        power: float | None,
        current: float | None,
        dur: int,
    ) -> bool:
        """Whether every restriction holds at one instant: local time of day (ms), weekday (Monday 0), local
        day number, energy so far (Wh), power (W) and current (A) or None when unknown (a restriction on an
        unknown value does not hold), duration so far (ms)."""
        if self.tod is not None:
            s, e = self.tod
            if s < e:
                if not s <= tod < e:
                    return False
            elif not (tod >= s or tod < e):
                return False
        if self.days is not None and weekday not in self.days:
            return False
        if self.dates is not None:
            lo, hi = self.dates
            if (lo is not None and day < lo) or (hi is not None and day >= hi):
                return False
        if self.kwh is not None and not _within(self.kwh, wh):
            return False
        if self.power is not None and (power is None or not _within(self.power, power)):
            return False
        if self.current is not None and (current is None or not _within(self.current, current)):
            return False
        if self.duration is not None:
            lo_ms, hi_ms = self.duration
            if (lo_ms is not None and dur < lo_ms) or (hi_ms is not None and dur >= hi_ms):
                return False
        return True


def _tod(text: str) -> int:
    return (int(text[:2]) * 60 + int(text[3:5])) * 60_000


def _day(text: str | None) -> int | None:
    return None if text is None else date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL


def _range(lo: Decimal | None, hi: Decimal | None, scale: int) -> tuple[float | None, float | None] | None:
    if lo is None and hi is None:
        return None
    return (None if lo is None else float(lo * scale), None if hi is None else float(hi * scale))


def _within(bounds: tuple[float | None, float | None], v: float) -> bool:
    lo, hi = bounds
    return (lo is None or v >= lo) and (hi is None or v < hi)


# A candidate: the restriction (None: none) and the component, in the tariff's element order.
Candidate = tuple[Restriction | None, Component]


class Table:
    """The candidates of one phase, per dimension, and the values at which any of them may start or stop
    matching: times of day, durations and the thresholds of energy, power and current."""

    __slots__ = ("candidates", "current", "durations", "kwh", "local", "power", "tods", "wants_day")

    def __init__(self, candidates: dict[str, tuple[Candidate, ...]]):
        self.candidates = candidates
        restrictions = [r for cands in candidates.values() for r, _ in cands if r is not None]
        self.local = any(r.local for r in restrictions)
        self.wants_day = any(r.days is not None or r.dates is not None for r in restrictions)
        self.tods = sorted({t for r in restrictions if r.tod is not None for t in r.tod if t != DAY_MS})
        self.durations = sorted({d for r in restrictions if r.duration for d in r.duration if d is not None})
        self.kwh = _thresholds(r.kwh for r in restrictions)
        self.power = _thresholds(r.power for r in restrictions)
        self.current = _thresholds(r.current for r in restrictions)

    def bucket(self, wh: float, power: float | None, current: float | None) -> tuple[int, int, int]:
        """Which side of every threshold the values are on: two samples in the same bucket match exactly the
        same restrictions (a min is `>=`, a max `<`, both decided by `bisect_right`)."""
        return (
            bisect_right(self.kwh, wh),
            -1 if power is None else bisect_right(self.power, power),
            -1 if current is None else bisect_right(self.current, current),
        )


def _thresholds(ranges: Iterable[tuple[float | None, float | None] | None]) -> list[float]:
    out: set[float] = set()
    for rng in ranges:
        if rng is not None:
            out.update(v for v in rng if v is not None)
    return sorted(out)


class CompiledTariff:
    """A tariff ready for the engine: `compile_tariff(tariff)` once, then `price(compiled, ...)` as often as a
    session's meter values arrive. Holds no state that pricing changes; safe to share."""

    __slots__ = (
        "currency",
        "decimals",
        "max_price",
        "min_price",
        "reserved",
        "reserved_expired",
        "session",
        "tariff",
    )

    def __init__(self, tariff: Tariff, decimals: int):
        self.tariff = tariff
        self.currency = tariff.currency
        self.decimals = decimals
        self.min_price = tariff.min_price
        self.max_price = tariff.max_price
        session: dict[str, list[Candidate]] = {"FLAT": [], "ENERGY": [], "TIME": [], "PARKING_TIME": []}
        reserved: dict[str, list[Candidate]] = {"FLAT": [], "TIME": []}
        expired: dict[str, list[Candidate]] = {"FLAT": [], "TIME": []}
        for i, element in enumerate(tariff.elements):
            r = element.restrictions
            compiled = None if r is None else Restriction(r)
            kind = None if r is None else r.reservation
            for c in element.price_components:
                cand = (compiled, Component(c.type, i, c.price, c.step_size, c.vat))
                if kind is None:
                    session[c.type].append(cand)
                else:
                    # Both kinds price an expired reservation (RESERVATION_EXPIRES first where it comes first,
                    # as OCPI's order decides); only RESERVATION prices one that led to a session.
                    expired[c.type].append(cand)
                    if kind == "RESERVATION":
                        reserved[c.type].append(cand)
        self.session = Table({k: tuple(v) for k, v in session.items()})
        self.reserved = Table({k: tuple(v) for k, v in reserved.items()})
        self.reserved_expired = Table({k: tuple(v) for k, v in expired.items()})


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Validate and compile. Raises `ValidationError` (naming the field) for a tariff `validate` refuses."""
    validate(tariff)
    return CompiledTariff(tariff, CURRENCY_DECIMALS[tariff.currency])
