"""`current_prices`: what a tariff charges at an instant, before any session. Crafted cases (a time-of-day element
that applies now or not, across midnight, weekdays, conditions a session decides, reservation elements, a price
signal, VAT) and a property: for any tariff, what it lists is what the engine prices a session starting then
with, once the session's values pick among the conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ampgate.pricing import (
    Conditions,
    CurrentPrices,
    MeterSample,
    PriceSignal,
    SessionUsage,
    Tariff,
    current_prices,
    price,
)
from tests.pricing.builders import BERLIN, D, at, comp, element, tariff
from tests.pricing.strategies import STARTS, tariffs


def listed(c: CurrentPrices) -> list[tuple[str, Decimal, int]]:
    return [(x.type, x.price, x.element) for x in c.components]


PEAK = tariff(
    element(comp("ENERGY", "0.50", vat=19), start_time="17:00", end_time="21:00"),
    element(comp("ENERGY", "0.30", vat=19), comp("PARKING_TIME", "2.00", vat=19)),
)


def test_a_time_of_day_element_applies_inside_its_window_only() -> None:
    evening = current_prices(PEAK, at=at("2024-06-03 18:00"), tz=BERLIN)
    assert listed(evening) == [("ENERGY", D("0.50"), 0), ("PARKING_TIME", D("2.00"), 1)]
    morning = current_prices(PEAK, at=at("2024-06-03 09:00"), tz=BERLIN)
    assert listed(morning) == [("ENERGY", D("0.30"), 1), ("PARKING_TIME", D("2.00"), 1)]
    # The window's end is exclusive and read on the site's wall clock (21:00 in Berlin is 19:00 UTC).
    assert listed(current_prices(PEAK, at=at("2024-06-03 21:00"), tz=BERLIN))[0][1] == D("0.30")
    assert listed(current_prices(PEAK, at=datetime(2024, 6, 3, 18, 59, tzinfo=UTC), tz=BERLIN))[0][1] == D(
        "0.50"
    )
    assert evening.currency == "EUR" and evening.signal is None and evening.tariff_id == "T1"


def test_windows_across_midnight_weekdays_and_dates() -> None:
    night = tariff(
        element(comp("TIME", "1"), start_time="22:00", end_time="06:00"),
        element(comp("TIME", "3")),
    )
    assert listed(current_prices(night, at=at("2024-06-03 23:30"), tz=BERLIN)) == [("TIME", D(1), 0)]
    assert listed(current_prices(night, at=at("2024-06-04 05:59"), tz=BERLIN)) == [("TIME", D(1), 0)]
    assert listed(current_prices(night, at=at("2024-06-04 06:00"), tz=BERLIN)) == [("TIME", D(3), 1)]
    weekend = tariff(
        element(comp("FLAT", "0.50"), day_of_week=["SATURDAY", "SUNDAY"]),
        element(comp("FLAT", "1.00"), start_date="2024-12-24", end_date="2024-12-27"),
        element(comp("ENERGY", "0.25")),
    )
    saturday = current_prices(weekend, at=at("2024-06-08 12:00"), tz=BERLIN)
    assert listed(saturday) == [("FLAT", D("0.50"), 0), ("ENERGY", D("0.25"), 2)]
    christmas = current_prices(weekend, at=at("2024-12-24 12:00"), tz=BERLIN)  # a Tuesday
    assert listed(christmas) == [("FLAT", D("1.00"), 1), ("ENERGY", D("0.25"), 2)]
    monday = current_prices(weekend, at=at("2024-06-03 12:00"), tz=BERLIN)
    assert listed(monday) == [("ENERGY", D("0.25"), 2)]  # no start fee today


def test_what_a_session_decides_is_listed_as_conditions_down_to_the_first_unconditional_element() -> None:
    t = tariff(
        element(comp("ENERGY", "0.59"), min_power=50),
        element(comp("ENERGY", "0.69"), start_time="00:00", end_time="06:00"),  # not now: left out
        element(comp("ENERGY", "0.49"), comp("TIME", "0.10"), max_kwh=20, min_duration=600),
        element(comp("ENERGY", "0.39")),
        element(comp("ENERGY", "0.01")),  # after an unconditional one: never selected
    )
    now = current_prices(t, at=at("2024-06-03 12:00"), tz=BERLIN)
    assert listed(now) == [
        ("ENERGY", D("0.59"), 0),
        ("ENERGY", D("0.49"), 2),
        ("ENERGY", D("0.39"), 3),
        ("TIME", D("0.10"), 2),
    ]
    assert [x.conditions for x in now.components] == [
        Conditions(min_power=D(50)),
        Conditions(max_kwh=D(20), min_duration=600),
        None,
        Conditions(max_kwh=D(20), min_duration=600),
    ]


def test_reservation_elements_price_no_session() -> None:
    t = tariff(
        element(comp("FLAT", "5"), comp("TIME", "6"), reservation="RESERVATION"),
        element(comp("TIME", "2")),
    )
    assert listed(current_prices(t, at=at("2024-06-03 12:00"), tz=BERLIN)) == [("TIME", D(2), 1)]


def test_a_signal_in_force_replaces_every_energy_price_listed_with_vat_kept() -> None:
    now = at("2024-06-03 12:00")
    t = tariff(
        element(comp("ENERGY", "0.40", vat=20), min_power=50),
        element(comp("ENERGY", "0.30", vat=20, step=100), comp("TIME", "1.00", vat=20)),
        min_price=("1.00", "1.20"),
    )
    signal = PriceSignal(
        start=now - timedelta(hours=1), end=now + timedelta(hours=1), energy_price=D("0.12345")
    )
    later = PriceSignal(start=now + timedelta(hours=1), end=now + timedelta(hours=2), energy_price=D("0.99"))
    c = current_prices(t, at=now, tz=BERLIN, signals=[later, signal])
    assert c.signal == signal
    assert [(x.type, x.price, x.dynamic, x.step_size) for x in c.components] == [
        ("ENERGY", D("0.1235"), True, 1),  # half-up to 4 decimals, as the engine
        ("ENERGY", D("0.1235"), True, 100),
        ("TIME", D("1.00"), False, 1),
    ]
    assert c.components[0].price_incl_vat == D("0.1482")  # 0.1235 x 1.2
    assert c.min_price is not None and c.min_price.incl_vat == D("1.20")
    negative = PriceSignal(start=now, end=now + timedelta(minutes=15), energy_price=D("-0.05"))
    assert current_prices(t, at=now, tz=BERLIN, signals=[negative]).components[1].price == 0
    # A window is [start, end): at its end it is over.
    assert current_prices(t, at=now + timedelta(hours=2), tz=BERLIN, signals=[later]).signal is None


def test_prices_incl_vat() -> None:
    t = tariff(element(comp("ENERGY", "0.3333", vat="19"), comp("PARKING_TIME", "2", vat=None)))
    energy, parking = current_prices(t, at=at("2024-06-03 12:00"), tz=BERLIN).components
    assert energy.price_incl_vat == D("0.3966")  # 0.396627 half-up
    assert parking.price_incl_vat == D(2) and parking.vat is None


def _holds(
    c: Conditions | None, kwh: Decimal, power_kw: Decimal, current_a: Decimal, duration_s: int
) -> bool:
    if c is None:
        return True
    for lo, hi, v in (
        (c.min_kwh, c.max_kwh, kwh),
        (c.min_power, c.max_power, power_kw),
        (c.min_current, c.max_current, current_a),
        (c.min_duration, c.max_duration, duration_s),
    ):
        if (lo is not None and v < lo) or (hi is not None and v >= hi):
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    t=tariffs(),
    start=st.sampled_from(STARTS),
    minutes=st.integers(0, 7 * 24 * 60),
    power_kw=st.sampled_from([D(3), D(11), D(22), D(50), D(150)]),
    current_a=st.sampled_from([D(10), D(16), D(32), D(100)]),
    signalled=st.booleans(),
)
def test_what_is_listed_now_is_what_the_engine_prices_a_session_starting_now_with(
    t: Tariff, start: datetime, minutes: int, power_kw: Decimal, current_a: Decimal, signalled: bool
) -> None:
    now = start + timedelta(minutes=minutes)
    signals = (
        [PriceSignal(start=now - timedelta(hours=1), end=now + timedelta(hours=1), energy_price=D("0.1111"))]
        if signalled
        else []
    )
    listed_now = current_prices(t, at=now, tz=BERLIN, signals=signals)
    # A session of one second starting now, its power and current known from its first sample.
    w, a = float(power_kw * 1000), float(current_a)
    usage = SessionUsage(
        started_at=now,
        samples=(
            MeterSample(at=now, energy_wh=0.0, power_w=w, current_a=a),
            MeterSample(at=now + timedelta(seconds=1), energy_wh=1.0, power_w=w, current_a=a),
        ),
    )
    cost = price(t, usage, until=now + timedelta(seconds=1), tz=BERLIN, signals=signals)
    engine = (
        {(p.type, p.element, p.price) for p in cost.charging_periods[0].priced}
        if cost.charging_periods
        else set()
    )
    for dim in ("FLAT", "ENERGY", "TIME"):
        chosen = next(
            (
                (x.type, x.element, x.price)
                for x in listed_now.components
                if x.type == dim and _holds(x.conditions, D(0), power_kw, current_a, 0)
            ),
            None,
        )
        priced = {e for e in engine if e[0] == dim}
        assert priced == ({chosen} if chosen is not None else set()), (dim, listed_now, cost.charging_periods)
