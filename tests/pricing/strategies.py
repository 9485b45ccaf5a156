"""Hypothesis strategies: valid tariffs with every kind of restriction, and whole sessions (samples, charging
changes, transaction end, parking after it, a reservation before it) from which the usage known at any instant
is cut."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ampgate.pricing import (
    ChargingChange,
    MeterSample,
    Price,
    PriceComponent,
    PriceSignal,
    Reservation,
    SessionUsage,
    Tariff,
    TariffElement,
    TariffRestrictions,
    problems,
)

PRICES = st.decimals(min_value=0, max_value=6, places=4)
VATS = st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("7.7"), Decimal(19), Decimal(20)]))
STEPS = st.sampled_from([1, 1, 60, 100, 300, 500, 900, 1800])
TIMES = ["00:00", "06:00", "09:30", "17:00", "20:00", "22:00", "02:30", "01:30", "03:00"]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
# Around both of Berlin's DST changes of 2024 and an ordinary week, so local-time rules meet both nights.
STARTS = [
    datetime(2024, 3, 30, 18, tzinfo=UTC),
    datetime(2024, 10, 26, 18, tzinfo=UTC),
    datetime(2024, 6, 1, tzinfo=UTC),
]


def _pair(values: list[Any]) -> st.SearchStrategy[tuple[Any, Any]]:
    """(min, max) with either side absent, and min < max when both are present."""
    one = st.sampled_from(values)
    return st.tuples(st.one_of(st.none(), one), st.one_of(st.none(), one)).filter(
        lambda p: p[0] is None or p[1] is None or p[0] < p[1]
    )


@st.composite
def restrictions(draw: st.DrawFn) -> TariffRestrictions:
    kw: dict[str, Any] = {}
    if draw(st.booleans()):
        start, end = draw(
            st.tuples(
                st.one_of(st.none(), st.sampled_from(TIMES)), st.one_of(st.none(), st.sampled_from(TIMES))
            )
        )
        if start is None or start != end:
            kw.update(start_time=start, end_time=end)
    if draw(st.integers(0, 3)) == 0:
        kw["day_of_week"] = tuple(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True)))
    if draw(st.integers(0, 4)) == 0:
        kw["start_date"], kw["end_date"] = draw(
            st.sampled_from([("2024-03-31", "2024-04-01"), (None, "2024-06-01"), ("2024-10-27", None)])
        )
    for name, values in (
        ("kwh", [Decimal(0), Decimal(1), Decimal(5), Decimal("12.5"), Decimal(30)]),
        ("power", [Decimal("3.7"), Decimal(7), Decimal(11), Decimal(22), Decimal(50)]),
        ("current", [Decimal(6), Decimal(16), Decimal(32), Decimal(63)]),
        ("duration", [300, 1800, 3600, 7200]),
    ):
        if draw(st.integers(0, 2)) == 0:
            kw[f"min_{name}"], kw[f"max_{name}"] = draw(_pair(values))
    return TariffRestrictions(**kw)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    elements = []
    for _ in range(draw(st.sampled_from([1, 1, 2, 3, 4]))):
        dims = draw(
            st.lists(
                st.sampled_from(["ENERGY", "TIME", "PARKING_TIME", "FLAT"]),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
        comps = tuple(
            PriceComponent(type=d, price=draw(PRICES), step_size=draw(STEPS), vat=draw(VATS)) for d in dims
        )
        r = draw(st.one_of(st.none(), restrictions()))
        elements.append(TariffElement(price_components=comps, restrictions=r))
    if draw(st.integers(0, 3)) == 0:
        comps = tuple(
            PriceComponent(type=d, price=draw(PRICES), step_size=draw(STEPS), vat=draw(VATS))
            for d in draw(st.lists(st.sampled_from(["FLAT", "TIME"]), min_size=1, max_size=2, unique=True))
        )
        kind = draw(st.sampled_from(["RESERVATION", "RESERVATION_EXPIRES"]))
        elements.insert(
            draw(st.integers(0, len(elements))),
            TariffElement(price_components=comps, restrictions=TariffRestrictions(reservation=kind)),
        )
    bounds: dict[str, Price] = {}
    if draw(st.booleans()):
        lo = draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=5, places=2)))
        hi = draw(st.one_of(st.none(), st.decimals(min_value=5, max_value=40, places=2)))
        if lo is not None:
            bounds["min_price"] = Price(excl_vat=lo, incl_vat=lo * Decimal("1.2"))
        if hi is not None:
            bounds["max_price"] = Price(excl_vat=hi, incl_vat=hi * Decimal("1.2"))
    currency = draw(st.sampled_from(["EUR", "EUR", "JPY", "KWD"]))
    t = Tariff(id="P", currency=currency, elements=tuple(elements), **bounds)
    assert problems(t) == [], problems(t)
    return t


@dataclass(frozen=True)
class Story:
    """A whole session; `known_at(u)` is what a node knows of it at u (what has happened by then)."""

    usage: SessionUsage
    end: datetime

    def known_at(self, u: datetime) -> SessionUsage:
        us = self.usage
        return SessionUsage(
            started_at=us.started_at,
            samples=tuple(s for s in us.samples if s.at <= u),
            charging=tuple(c for c in us.charging if c.at <= u),
            stopped_at=us.stopped_at if us.stopped_at is not None and us.stopped_at <= u else None,
            ended_at=us.ended_at if us.ended_at is not None and us.ended_at <= u else None,
            reservation=us.reservation,
        )


@st.composite
def stories(draw: st.DrawFn) -> Story:
    base = draw(st.sampled_from(STARTS)) + timedelta(minutes=draw(st.integers(0, 600)))
    start = base + timedelta(milliseconds=draw(st.integers(0, 999)))
    t = start
    energy = 0.0
    samples = []
    if draw(st.booleans()):
        samples.append(MeterSample(start, 0.0, draw(st.one_of(st.none(), st.floats(0, 60000))), None))
    for _ in range(draw(st.integers(0, 25))):
        t += timedelta(milliseconds=draw(st.integers(1, 1_800_000)))
        energy += draw(st.floats(0, 4000, allow_nan=False))
        power = draw(st.one_of(st.none(), st.floats(0, 60000, allow_nan=False)))
        current = draw(st.one_of(st.none(), st.floats(0, 100, allow_nan=False)))
        samples.append(MeterSample(t, round(energy, 1), power, current))
    stop = t + timedelta(seconds=draw(st.integers(0, 3600)))
    within = st.integers(0, max(int((stop - start).total_seconds()), 1))
    if draw(st.booleans()):
        # The usual story: charging until the EV is full, then plugged in without charging.
        changes: tuple[ChargingChange, ...] = (
            ChargingChange(start + timedelta(seconds=draw(within)), False),
        )
    else:
        changes = tuple(
            sorted(
                (
                    ChargingChange(start + timedelta(seconds=draw(within)), draw(st.booleans()))
                    for _ in range(draw(st.integers(0, 4)))
                ),
                key=lambda c: c.at,
            )
        )
    end = stop + timedelta(seconds=draw(st.integers(0, 7200)))
    reservation = None
    if draw(st.integers(0, 3)) == 0:
        reservation = Reservation(start=start - timedelta(seconds=draw(st.integers(0, 3600))), end=start)
    usage = SessionUsage(
        started_at=start,
        samples=tuple(samples),
        charging=changes,
        stopped_at=stop,
        ended_at=end,
        reservation=reservation,
    )
    return Story(usage=usage, end=end)


@st.composite
def signals(draw: st.DrawFn, start: datetime) -> list[PriceSignal]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        a = start + timedelta(minutes=draw(st.integers(-60, 600)))
        out.append(
            PriceSignal(
                start=a,
                end=a + timedelta(minutes=draw(st.integers(1, 300))),
                energy_price=draw(st.decimals(min_value=-1, max_value=2, places=5)),
            )
        )
    return out
