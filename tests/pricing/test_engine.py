"""The engine's rules on crafted sessions: one behaviour per test, with the arithmetic in the comment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ampgate.errors import ValidationError
from ampgate.pricing import (
    ChargingChange,
    MeterSample,
    PriceSignal,
    SessionUsage,
    compile_tariff,
    price,
)
from tests.pricing.builders import BERLIN, at, comp, cost_of, element, money, session, steady, tariff

MONDAY = at("2024-06-03 09:30")
H = timedelta(hours=1)


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- dimensions --------------------------------------------------------------------------------------------


def test_energy_only() -> None:
    c = cost_of(tariff(element(comp("ENERGY", "0.3456"))), session(MONDAY, charge_min=90, kwh=12.5))
    assert money(c.total_cost) == ("4.32", "4.32")  # 12.5 * 0.3456 = 4.32
    assert c.energy_wh == Decimal("12500.000")
    assert c.charging_time_s == 5400
    assert c.final


def test_time_only_counts_charging_not_parking() -> None:
    t = tariff(element(comp("TIME", "2.00")))
    c = cost_of(t, session(MONDAY, charge_min=90, kwh=10, park_min=30))
    assert money(c.total_cost)[0] == "3.00"
    assert (c.charging_time_s, c.parking_time_s) == (5400, 1800)


def test_parking_while_plugged_in_after_charging_stops_and_resumes() -> None:
    t = tariff(element(comp("ENERGY", "0.30"), comp("PARKING_TIME", "6.00")))
    s = MONDAY
    usage = SessionUsage(
        started_at=s,
        samples=steady(s, 180, 30),
        charging=(
            ChargingChange(s + timedelta(minutes=60), False),  # EV suspends 20 min
            ChargingChange(s + timedelta(minutes=80), True),
            ChargingChange(s + timedelta(minutes=150), False),  # full; 30 min plugged in
        ),
        ended_at=s + timedelta(minutes=180),
    )
    c = cost_of(t, usage)
    assert money(c.parking_cost)[0] == "5.00"  # 50 minutes at 6.00/h
    assert money(c.energy_cost)[0] == "9.00"
    assert [p.charging for p in c.charging_periods] == [True, False, True, False]


def test_before_the_first_change_the_ev_counts_as_charging() -> None:
    t = tariff(element(comp("TIME", "1.00"), comp("PARKING_TIME", "10.00")))
    usage = SessionUsage(started_at=MONDAY, ended_at=MONDAY + H)
    assert money(cost_of(t, usage).total_cost)[0] == "1.00"


# -- FLAT ----------------------------------------------------------------------------------------------------


def test_flat_is_charged_once_from_the_first_matching_element() -> None:
    # Night start fee 1.00 (22-06), day start fee 0.50; a session from 21:30 to 23:30 pays the day fee once.
    t = tariff(
        element(comp("FLAT", "1.00"), comp("TIME", "0.00"), start_time="22:00", end_time="06:00"),
        element(comp("FLAT", "0.50"), comp("TIME", "0.00")),
    )
    c = cost_of(t, session(at("2024-06-03 21:30"), charge_min=120, kwh=10))
    assert money(c.flat_cost)[0] == "0.50"
    flats = [d for p in c.charging_periods for d in p.priced if d.type == "FLAT"]
    assert len(flats) == 1 and flats[0].element == 1


def test_flat_whose_restriction_matches_later_is_charged_when_it_starts_to_match() -> None:
    t = tariff(element(comp("FLAT", "5.00"), min_duration=4 * 3600), element(comp("ENERGY", "0.20")))
    usage = session(MONDAY, charge_min=300, kwh=20, ended=False)
    early = price(t, usage, until=MONDAY + 3 * H, tz=BERLIN)
    late = price(t, usage, until=MONDAY + 5 * H, tz=BERLIN)
    assert money(early.flat_cost)[0] == "0.00"
    assert money(late.flat_cost)[0] == "5.00"


def test_no_flat_after_the_transaction() -> None:
    t = tariff(element(comp("FLAT", "3.00"), comp("PARKING_TIME", "1.00"), min_duration=3600))
    c = cost_of(t, session(MONDAY, charge_min=30, kwh=5, after_min=60))
    assert money(c.flat_cost)[0] == "0.00"
    assert money(c.parking_after_cost)[0] == "0.50"  # 30 of the 60 minutes are past one hour


# -- step sizes ------------------------------------------------------------------------------------------------


def test_steps_apply_only_when_the_phase_is_over() -> None:
    t = tariff(element(comp("TIME", "6.00", step=900)))
    usage = session(MONDAY, charge_min=20, kwh=3)
    running = price(
        t, session(MONDAY, charge_min=20, kwh=3, ended=False), until=MONDAY + timedelta(minutes=20), tz=BERLIN
    )
    assert money(running.total_cost)[0] == "2.00"  # 20 minutes, exact while running
    assert not running.final
    assert money(cost_of(t, usage).total_cost)[0] == "3.00"  # closed: 30 minutes


def test_energy_step_uses_the_last_billed_component() -> None:
    t = tariff(
        element(comp("ENERGY", "0.20", step=1000), max_duration=1800),
        element(comp("ENERGY", "0.40", step=100)),
    )
    c = cost_of(t, session(MONDAY, charge_min=60, kwh=10.05))  # 5.025 + 5.025 kWh; total 10.05 -> 10.1
    late = c.charging_periods[-1].priced[0]
    assert (str(late.volume), str(late.billed_volume)) == ("5.025", "5.075")
    assert money(c.total_cost)[0] == "3.04"  # 1.005 + 2.03


# -- local time ----------------------------------------------------------------------------------------------


def test_time_of_day_window_across_midnight_on_the_night_clocks_go_forward() -> None:
    # Berlin, 31 March 2024: 02:00 CET -> 03:00 CEST. Night 22:00-06:00 at 1.00/h, day 2.00/h.
    # 21:00 CET (20:00Z) to 08:00 CEST (06:00Z): 10 hours, of which night 21:00Z-04:00Z = 7 h.
    t = tariff(
        element(comp("TIME", "1.00"), start_time="22:00", end_time="06:00"), element(comp("TIME", "2.00"))
    )
    usage = SessionUsage(started_at=z("2024-03-30T20:00"), ended_at=z("2024-03-31T06:00"))
    c = cost_of(t, usage)
    assert money(c.total_cost)[0] == "13.00"  # 7 * 1 + 3 * 2
    assert [p.start_date_time for p in c.charging_periods] == [
        z("2024-03-30T20:00"),
        z("2024-03-30T21:00"),
        z("2024-03-31T04:00"),
    ]


def test_time_of_day_window_across_midnight_on_the_night_clocks_go_back() -> None:
    # 27 October 2024: 03:00 CEST -> 02:00 CET. 21:00 CEST (19:00Z) to 08:00 CET (07:00Z): 12 hours, night
    # 22:00 CEST (20:00Z) to 06:00 CET (05:00Z) = 9 h.
    t = tariff(
        element(comp("TIME", "1.00"), start_time="22:00", end_time="06:00"), element(comp("TIME", "2.00"))
    )
    usage = SessionUsage(started_at=z("2024-10-26T19:00"), ended_at=z("2024-10-27T07:00"))
    assert money(cost_of(t, usage).total_cost)[0] == "15.00"  # 9 * 1 + 3 * 2


def test_a_window_in_the_repeated_hour_happens_twice() -> None:
    # 00:00-02:30 local on 27 October 2024: 22:00Z-00:30Z (CEST), then 02:00-02:30 CET again = 01:00Z-01:30Z.
    t = tariff(element(comp("TIME", "10.00"), start_time="00:00", end_time="02:30"))
    usage = SessionUsage(started_at=z("2024-10-26T21:00"), ended_at=z("2024-10-27T03:00"))
    assert money(cost_of(t, usage).total_cost)[0] == "30.00"


def test_a_window_in_the_skipped_hour_ends_when_the_clock_jumps() -> None:
    # 01:30-02:30 local on 31 March 2024: only 01:30-02:00 CET (00:30Z-01:00Z) happens.
    t = tariff(element(comp("TIME", "10.00"), start_time="01:30", end_time="02:30"))
    usage = SessionUsage(started_at=z("2024-03-30T23:00"), ended_at=z("2024-03-31T03:00"))
    assert money(cost_of(t, usage).total_cost)[0] == "5.00"


def test_day_of_week_switches_at_local_midnight() -> None:
    # Sunday 23:00 to Monday 01:00 Berlin (summer): weekend energy 0.20, weekdays 0.40; 2 kWh per hour.
    t = tariff(
        element(comp("ENERGY", "0.20"), day_of_week=["SATURDAY", "SUNDAY"]), element(comp("ENERGY", "0.40"))
    )
    c = cost_of(t, session(at("2024-06-02 23:00"), charge_min=120, kwh=4))
    assert money(c.total_cost)[0] == "1.20"  # 2 * 0.20 + 2 * 0.40
    assert c.charging_periods[1].start_date_time == at("2024-06-03 00:00")


def test_date_range_end_is_exclusive() -> None:
    t = tariff(
        element(comp("TIME", "1.00"), start_date="2024-06-01", end_date="2024-06-03"),
        element(comp("TIME", "3.00")),
    )
    c = cost_of(t, session(at("2024-06-02 23:00"), charge_min=120, kwh=1))
    assert money(c.total_cost)[0] == "4.00"  # 1 h on the 2nd at 1.00, 1 h on the 3rd at 3.00


def test_the_zone_decides_local_time() -> None:
    t = tariff(
        element(comp("TIME", "1.00"), start_time="00:00", end_time="12:00"), element(comp("TIME", "5.00"))
    )
    usage = SessionUsage(started_at=z("2024-06-03T10:00"), ended_at=z("2024-06-03T11:00"))
    assert money(price(t, usage, until=usage.ended_at, tz=ZoneInfo("UTC")).total_cost)[0] == "1.00"  # type: ignore[arg-type]
    assert money(price(t, usage, until=usage.ended_at, tz=BERLIN).total_cost)[0] == "5.00"  # type: ignore[arg-type]


# -- energy, power, current, duration -------------------------------------------------------------------------


def test_min_max_kwh_switch_elements_at_the_sample_that_reaches_the_threshold() -> None:
    # 15 kWh in 90 one-minute samples (1/6 kWh each); the first 10 kWh at 0.30, the rest at 0.40.
    t = tariff(element(comp("ENERGY", "0.30"), max_kwh=10), element(comp("ENERGY", "0.40"), min_kwh=10))
    c = cost_of(t, session(MONDAY, charge_min=90, kwh=15))
    assert money(c.total_cost)[0] == "5.00"  # 3.00 + 2.00
    assert [str(p.priced[0].volume) for p in c.charging_periods] == ["10", "5"]


def test_a_kwh_threshold_between_samples_switches_at_the_next_sample() -> None:
    # Samples every 10 minutes, 1 kWh each; threshold 2.5 kWh: the 2-3 kWh stretch is held at the sample
    # reading 2 kWh, so it is priced by the first element; the switch is at the sample reading 3 kWh.
    t = tariff(element(comp("ENERGY", "0.30"), max_kwh="2.5"), element(comp("ENERGY", "0.40")))
    usage = SessionUsage(
        started_at=MONDAY, samples=steady(MONDAY, 50, 5, every_s=600), ended_at=MONDAY + timedelta(minutes=50)
    )
    c = cost_of(t, usage)
    assert [str(p.priced[0].volume) for p in c.charging_periods] == ["3", "2"]


def test_power_without_power_readings_is_the_average_since_the_previous_sample() -> None:
    # 7 kW for 30 minutes then 22 kW for 30 minutes, energy only; max_power 11 kW at 0.30 else 0.50.
    t = tariff(element(comp("ENERGY", "0.30"), max_power=11), element(comp("ENERGY", "0.50")))
    first = steady(MONDAY, 30, 3.5, every_s=300)
    second = tuple(
        MeterSample(s.at, s.energy_wh + 3500)
        for s in steady(MONDAY + timedelta(minutes=30), 30, 11, every_s=300)[1:]
    )
    usage = SessionUsage(started_at=MONDAY, samples=first + second, ended_at=MONDAY + H)
    c = cost_of(t, usage)
    # The sample at the start has no previous one: power unknown, so the first 5 minutes (0.5833 kWh) go to the
    # fallback. The sample at 5 minutes says 7 kW, held until the sample 5 minutes into the fast half says
    # 22 kW: 5-35 minutes (4.75 kWh) at 0.30; 0.5833 + 9.1667 kWh at 0.50. 1.425 + 4.875 = 6.30.
    assert [p.priced[0].element for p in c.charging_periods] == [1, 0, 1]
    assert money(c.total_cost)[0] == "6.30"


def test_current_restriction_does_not_hold_when_current_is_unknown() -> None:
    t = tariff(element(comp("TIME", "1.00"), max_current=32), element(comp("TIME", "3.00")))
    c = cost_of(t, session(MONDAY, charge_min=60, kwh=10))  # no current reported
    assert money(c.total_cost)[0] == "3.00"
    c = cost_of(t, session(MONDAY, charge_min=60, kwh=10, current_a=16))
    assert money(c.total_cost)[0] == "1.00"


def test_min_duration_makes_long_sessions_pay_more_per_hour() -> None:
    t = tariff(element(comp("TIME", "4.00"), min_duration=7200), element(comp("TIME", "1.00")))
    c = cost_of(t, session(MONDAY, charge_min=180, kwh=30))
    assert money(c.total_cost)[0] == "6.00"  # 2 h at 1.00 + 1 h at 4.00


# -- min / max price, VAT, rounding ---------------------------------------------------------------------------


def test_max_price_clamps_excl_and_incl_each_and_the_breakdown_shows_the_adjustment() -> None:
    t = tariff(element(comp("ENERGY", "0.50", vat=19)), max_price=("10.00", "11.90"))
    c = cost_of(t, session(MONDAY, charge_min=120, kwh=30))
    assert money(c.total_cost) == ("10.00", "11.90")
    assert money(c.energy_cost) == ("15.00", "17.85")
    assert money(c.adjustment) == ("-5.00", "-5.95")


def test_min_price_without_vat_components_needs_no_incl() -> None:
    t = tariff(element(comp("ENERGY", "0.50")), min_price=("2.00", None))
    c = cost_of(t, session(MONDAY, charge_min=10, kwh=1))
    assert money(c.total_cost) == ("2.00", "2.00")


def test_vat_per_component_and_none_is_no_vat() -> None:
    t = tariff(element(comp("FLAT", "1.00", vat=20), comp("ENERGY", "0.10", vat="7.7"), comp("TIME", "1.00")))
    c = cost_of(t, session(MONDAY, charge_min=60, kwh=10))
    # excl 1.00 + 1.00 + 1.00; incl 1.20 + 1.077 + 1.00 = 3.277 -> 3.28
    assert money(c.total_cost) == ("3.00", "3.28")
    assert money(c.energy_cost) == ("1.00", "1.08")


@pytest.mark.parametrize(
    ("currency", "unit", "kwh", "expected"),
    [
        ("EUR", "0.25", 0.5, "0.13"),
        ("JPY", "35", 10.5, "368"),
        ("KWD", "0.0125", 1.0, "0.013"),
        ("JPY", "35", 10.4, "364"),
    ],
)
def test_totals_round_half_up_once_to_the_currency(
    currency: str, unit: str, kwh: float, expected: str
) -> None:
    # 0.125 -> 0.13; 367.5 JPY -> 368; 0.0125 KWD -> 0.013; 364.0 JPY -> 364
    c = cost_of(
        tariff(element(comp("ENERGY", unit)), currency=currency), session(MONDAY, charge_min=60, kwh=kwh)
    )
    assert str(c.total_cost.excl_vat) == expected


def test_breakdown_is_apportioned_to_sum_to_the_total() -> None:
    # Three halves of a cent: each 0.005, sum 0.015 -> 0.02; the parts are 0.01, 0.01, 0.00 (first two win).
    t = tariff(element(comp("ENERGY", "0.005"), comp("TIME", "0.005"), comp("PARKING_TIME", "0.005")))
    c = cost_of(t, session(MONDAY, charge_min=60, kwh=1, park_min=60))
    assert str(c.total_cost.excl_vat) == "0.02"
    parts = [c.energy_cost, c.time_cost, c.parking_cost, c.flat_cost, c.reservation_cost]
    assert [str(p.excl_vat) for p in parts] == ["0.01", "0.01", "0.00", "0.00", "0.00"]


# -- price signals -------------------------------------------------------------------------------------------


def test_a_signal_replaces_the_energy_price_in_its_window_only() -> None:
    t = tariff(element(comp("ENERGY", "0.40", vat=19, step=1000)))
    sig = PriceSignal(start=MONDAY + timedelta(minutes=30), end=MONDAY + H, energy_price=Decimal("0.10"))
    c = cost_of(t, session(MONDAY, charge_min=90, kwh=9), signals=[sig])
    # 3 kWh per half hour: 3 at 0.40, 3 at 0.10, 3 at 0.40 = 2.70; VAT and step stay the component's.
    assert money(c.total_cost) == ("2.70", "3.21")
    assert [str(p.priced[0].price) for p in c.charging_periods] == ["0.40", "0.1000", "0.40"]


def test_signal_split_between_samples_takes_its_linear_share() -> None:
    t = tariff(element(comp("ENERGY", "0.40")))
    sig = PriceSignal(start=MONDAY + timedelta(minutes=15), end=MONDAY + H, energy_price=Decimal("0"))
    usage = SessionUsage(
        started_at=MONDAY,
        samples=(MeterSample(MONDAY, 0.0), MeterSample(MONDAY + timedelta(minutes=30), 2000.0)),
        ended_at=MONDAY + timedelta(minutes=30),
    )
    assert money(cost_of(t, usage, signals=[sig]).total_cost)[0] == "0.40"  # 1 kWh before 15 min


def test_negative_signal_counts_as_free_and_first_signal_wins() -> None:
    t = tariff(element(comp("ENERGY", "0.40")))
    sigs = [
        PriceSignal(start=MONDAY, end=MONDAY + H, energy_price=Decimal("-0.05")),
        PriceSignal(start=MONDAY, end=MONDAY + 2 * H, energy_price=Decimal("0.99")),
    ]
    c = cost_of(t, session(MONDAY, charge_min=120, kwh=2), signals=sigs)
    assert money(c.total_cost)[0] == "0.99"  # 1 kWh free, 1 kWh at 0.99


def test_a_signal_does_not_make_free_energy_billable() -> None:
    t = tariff(element(comp("TIME", "1.00")))
    sig = PriceSignal(start=MONDAY, end=MONDAY + H, energy_price=Decimal("0.50"))
    assert money(cost_of(t, session(MONDAY, charge_min=60, kwh=10), signals=[sig]).total_cost)[0] == "1.00"


# -- the transaction end and the CDR ---------------------------------------------------------------------------


def test_the_cdr_adds_exactly_the_parking_after_the_transaction() -> None:
    t = tariff(element(comp("ENERGY", "0.3333", vat=19), comp("PARKING_TIME", "3.00", step=600, vat=19)))
    usage = session(MONDAY, charge_min=60, kwh=7.77, after_min=25)
    assert usage.stopped_at is not None and usage.ended_at is not None
    told = price(t, usage, until=usage.stopped_at, tz=BERLIN)
    cdr = price(t, usage, until=usage.ended_at, tz=BERLIN)
    assert cdr.transaction_cost == told.total_cost
    assert money(cdr.parking_after_cost) == ("1.50", "1.79")  # 25 -> 30 minutes at 3.00/h
    assert cdr.total_cost.excl_vat == told.total_cost.excl_vat + cdr.parking_after_cost.excl_vat
    assert cdr.total_cost.incl_vat == told.total_cost.incl_vat + cdr.parking_after_cost.incl_vat  # type: ignore[operator]
    assert cdr.parking_after_s == 1500
    assert [p.phase for p in cdr.charging_periods] == ["transaction", "after_transaction"]
    assert cdr.final and not told.final


def test_the_charger_total_keeps_its_step_rounding_when_parking_follows() -> None:
    """The transaction is closed when it ends: its TIME is rounded then (21 -> 30 minutes) and stays so in the
    CDR, where OCPI, seeing parking after it, would not round it. The charger was told that number."""
    t = tariff(element(comp("TIME", "3.00", step=600), comp("PARKING_TIME", "5.00", step=300)))
    usage = session(MONDAY, charge_min=21, kwh=3, after_min=7)
    assert usage.stopped_at is not None
    told = price(t, usage, until=usage.stopped_at, tz=BERLIN)
    cdr = cost_of(t, usage)
    assert money(told.total_cost)[0] == "1.50"
    assert money(cdr.total_cost)[0] == "2.33"  # + 10 minutes at 5.00/h


def test_samples_after_the_transaction_end_are_ignored() -> None:
    t = tariff(element(comp("ENERGY", "1.00")))
    usage = session(MONDAY, charge_min=60, kwh=10, after_min=30)
    late = SessionUsage(
        started_at=usage.started_at,
        samples=(*usage.samples, MeterSample(MONDAY + 2 * H, 12000.0)),
        stopped_at=usage.stopped_at,
        ended_at=usage.ended_at,
    )
    assert cost_of(t, late).total_cost == cost_of(t, usage).total_cost


# -- odd input -----------------------------------------------------------------------------------------------


def test_until_before_the_start_prices_nothing() -> None:
    t = tariff(element(comp("FLAT", "1.00"), comp("TIME", "1.00")))
    c = price(t, session(MONDAY, charge_min=60, kwh=1), until=MONDAY - H, tz=BERLIN)
    assert money(c.total_cost) == ("0.00", "0.00") and c.charging_periods == ()


def test_a_falling_register_is_held() -> None:
    t = tariff(element(comp("ENERGY", "1.00")))
    samples = (
        MeterSample(MONDAY, 0.0),
        MeterSample(MONDAY + H, 5000.0),
        MeterSample(MONDAY + 2 * H, 100.0),  # glitch
        MeterSample(MONDAY + 3 * H, 6000.0),
    )
    usage = SessionUsage(started_at=MONDAY, samples=samples, ended_at=MONDAY + 3 * H)
    assert money(cost_of(t, usage).total_cost)[0] == "6.00"


def test_an_invalid_tariff_is_refused_with_the_field() -> None:
    t = tariff(element(comp("ENERGY", "0.12345")))
    with pytest.raises(ValidationError) as e:
        price(t, session(MONDAY, charge_min=1), until=MONDAY, tz=BERLIN)
    assert e.value.field == "elements[0].price_components[0].price"


def test_compiled_and_plain_tariffs_price_alike() -> None:
    t = tariff(element(comp("ENERGY", "0.30"), max_power=11), element(comp("ENERGY", "0.50")))
    usage = session(MONDAY, charge_min=60, kwh=15, power_w=15000)
    assert cost_of(compile_tariff(t), usage) == cost_of(t, usage)
