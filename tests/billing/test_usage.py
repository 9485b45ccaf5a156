"""A session's usage assembled from stored samples (pure): energy since the start, power and current summed over
phases, the stop's register as the sample at the stop, 1.6 statuses read as charging or not."""

from __future__ import annotations

from datetime import UTC, datetime

from ampgate.billing.usage import FREE_STATUSES, Meter, charging_from_status, session_usage
from ampgate.pricing import ChargingChange, MeterSample
from ampgate.store.transactions import ENERGY, Sample

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0.replace(minute=minute)


def iso(minute: int) -> str:
    return at(minute).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def energy(minute: int, wh: float) -> Sample:
    return Sample(iso(minute), ENERGY, "", wh, "Wh")


def test_energy_is_counted_from_the_start_reading_and_instants_without_energy_are_left_out() -> None:
    m = Meter(1000.0)
    m.add([energy(1, 1500.0), Sample(iso(1), "Power.Active.Import", "", 7000.0, "W")])
    m.add([Sample(iso(2), "Power.Active.Import", "", 3000.0, "W")])  # no register reading: left out
    m.add([energy(3, 2500.0), Sample(iso(3), "Current.Import", "L1", 10.0, "A")])
    m.add(
        [Sample(iso(3), "Current.Import", "L2", 11.0, "A"), Sample(iso(3), "Current.Import", "N", 1.0, "A")]
    )
    assert m.samples() == (
        MeterSample(at(1), 500.0, 7000.0, None),
        MeterSample(at(3), 1500.0, None, 11.0),  # a later batch at the same instant adds what it knows
    )


def test_per_phase_readings_are_summed_when_no_total_is_sent_and_the_total_wins_when_it_is() -> None:
    m = Meter(0.0)
    m.add(
        [
            energy(1, 10.0),
            Sample(iso(1), "Current.Import", "L1", 16.0, "A"),
            Sample(iso(1), "Current.Import", "L2", 16.0, "A"),
            Sample(iso(1), "Current.Import", "L3", 15.5, "A"),
            Sample(iso(1), "Power.Active.Import", "L1-N", 3000.0, "W"),
            Sample(iso(1), "Power.Active.Import", "L2-N", 3000.0, "W"),
            Sample(iso(1), "Power.Active.Import", "", 6100.0, "W"),
        ]
    )
    assert m.samples() == (MeterSample(at(1), 10.0, 6100.0, 47.5),)


def test_without_a_start_reading_the_first_register_reading_is_the_start_as_the_store_takes_it() -> None:
    m = Meter(None)
    m.add([energy(5, 20_000.0)])
    m.add([energy(2, 19_000.0)])  # delivered later (offline queue): counted from the first reading received
    m.add([energy(9, 21_000.0)])
    assert m.start_wh == 20_000.0
    assert [s.energy_wh for s in m.samples()] == [-1000.0, 0.0, 1000.0]
    assert [s.at for s in m.samples()] == [at(2), at(5), at(9)]


def test_the_stop_reading_becomes_the_sample_at_the_stop() -> None:
    samples = (
        MeterSample(at(1), 100.0, 7000.0),
        MeterSample(at(4), 400.0, 6000.0),
        MeterSample(at(9), 900.0),
    )
    u = session_usage(at(0), samples, [ChargingChange(at(0), True)], stopped_at=at(4), stop_energy_wh=450.0)
    assert u.samples == (MeterSample(at(1), 100.0, 7000.0), MeterSample(at(4), 450.0, 6000.0), samples[2])
    assert u.stopped_at == at(4) and u.ended_at is None
    u = session_usage(at(0), samples, (), stopped_at=at(5), stop_energy_wh=460.0, ended_at=at(7))
    assert u.samples == (*samples[:2], MeterSample(at(5), 460.0), samples[2])
    assert u.ended_at == at(7)
    assert session_usage(at(0), samples, ()).samples == samples


def test_16_statuses_say_charging_or_not_and_201_statuses_never_do() -> None:
    assert charging_from_status("ocpp1.6", "Charging") is True
    for status in ("SuspendedEV", "SuspendedEVSE", "Finishing", "Faulted"):
        assert charging_from_status("ocpp1.6", status) is False
    for status in ("Available", "Preparing", "Reserved", "Unavailable"):
        assert charging_from_status("ocpp1.6", status) is None
    assert charging_from_status("ocpp2.0.1", "Occupied") is None
    assert {"Available", "Reserved"} == FREE_STATUSES
