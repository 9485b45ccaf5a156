"""The load control plane's pure rules: demand of a session, the profiles that carry an allocation, when one
goes out. Profiles are checked against the OCPP JSON schemas of the version they are for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ampgate.loadctl import model
from ampgate.ocpp import payloads

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
V16, V201 = "ocpp1.6", "ocpp2.0.1"


def test_phases_used_are_those_carrying_current() -> None:
    assert model.phases_used((16.0, 0.2, 0.0), 3) == 1
    assert model.phases_used((16.0, 15.8, 16.1), 3) == 3
    assert model.phases_used((0.0, 0.0, 0.0), 3) is None
    # A one-phase charger: only its first phase counts.
    assert model.phases_used((10.0, 10.0, 10.0), 1) == 1


def test_the_phase_mask_follows_the_wiring_and_the_ev() -> None:
    assert model.phase_mask((0, 1, 2), None) == 0b111
    assert model.phase_mask((1, 2, 0), 1) == 0b010  # STR: the charger's phase 1 is the site's L2
    assert model.phase_mask((2,), None) == 0b100
    assert model.phase_mask((2, 0, 1), 2) == 0b101


def test_the_maximum_is_the_rating_an_external_cap_or_what_the_ev_draws() -> None:
    assert model.max_current(32.0, None, None, None) == 32.0
    assert model.max_current(32.0, 20.0, None, None) == 20.0
    # Drawing what it was given: only the charger limits it.
    assert model.max_current(32.0, None, 16.0, 15.5) == 32.0
    # Drawing clearly less: capped at its draw plus room to grow, more than the hysteresis.
    capped = model.max_current(32.0, None, 16.0, 10.0)
    assert capped == pytest.approx(10.0 + 2.0 + 2.0)
    assert capped - 10.0 > max(1.0, 0.1 * 10.0)


def test_priority_rises_as_departure_nears() -> None:
    assert model.priority(0, None, True, NOW) == 0
    assert model.priority(0, NOW + timedelta(hours=3), True, NOW) == 0
    assert model.priority(0, NOW + timedelta(minutes=45), True, NOW) == 1
    assert model.priority(5, NOW + timedelta(minutes=10), True, NOW) == 7
    assert model.priority(0, NOW + timedelta(minutes=10), False, NOW) == 0


@pytest.mark.parametrize("unit", ["A", "W"])
def test_a_16_tx_profile_is_valid_and_replaces_the_last(unit: str) -> None:
    p = model.tx_profile(V16, 2, "41", 15.9, unit, NOW, 60)
    payloads.validate_request(V16, "SetChargingProfile", p)
    cp = p["csChargingProfiles"]
    assert p["connectorId"] == 2
    assert cp["chargingProfileId"] == model.TX_PROFILE_ID + 2
    assert cp["transactionId"] == 41
    assert cp["chargingProfilePurpose"] == "TxProfile"
    assert cp["validTo"] == "2026-11-30T12:01:00.000Z"
    assert cp["chargingSchedule"]["duration"] == 60
    assert cp["chargingSchedule"]["chargingRateUnit"] == unit
    assert cp["chargingSchedule"]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 15.9}]


def test_a_201_tx_profile_is_valid_for_the_evse_and_transaction() -> None:
    p = model.tx_profile(V201, 1, "tx-abc", 10.0, "A", NOW, 30)
    payloads.validate_request(V201, "SetChargingProfile", p)
    cp = p["chargingProfile"]
    assert p["evseId"] == 1
    assert cp["id"] == model.TX_PROFILE_ID + 1
    assert cp["transactionId"] == "tx-abc"
    assert cp["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 10.0


@pytest.mark.parametrize("protocol", [V16, V201])
def test_boot_profiles_are_valid_fallbacks_without_end(protocol: str) -> None:
    profiles = model.boot_profiles(protocol, 32.0, 6.0, NOW)
    assert len(profiles) == 2
    for p in profiles:
        payloads.validate_request(protocol, "SetChargingProfile", p)
    key = "csChargingProfiles" if protocol == V16 else "chargingProfile"
    purposes = [p[key]["chargingProfilePurpose"] for p in profiles]
    assert purposes[1] == "TxDefaultProfile"
    assert purposes[0] == ("ChargePointMaxProfile" if protocol == V16 else "ChargingStationMaxProfile")
    assert all("validTo" not in p[key] for p in profiles)


def test_limits_in_the_chargers_unit_are_rounded_down() -> None:
    assert model.in_unit(15.96, "A", 230.0, 3) == 15.9
    assert model.in_unit(16.0, "W", 230.0, 3) == 11040.0
    assert model.in_unit(10.0, "W", 230.0, 1) == 2300.0


def test_due_sends_decreases_at_once_and_throttles_increases_and_refreshes() -> None:
    args = {"sent": 16.0, "sent_at": 100.0, "valid_until": 160.0, "min_interval_s": 10.0}
    assert model.due(want=10.0, now=101.0, **args)  # a decrease: at once
    assert not model.due(want=20.0, now=105.0, **args)  # an increase: not yet
    assert model.due(want=20.0, now=110.0, **args)
    assert not model.due(want=16.0, now=120.0, **args)  # the same: only to refresh, past half its validity
    assert model.due(want=16.0, now=130.0, **args)
    assert model.due(want=16.0, sent=None, sent_at=None, valid_until=None, now=0.0, min_interval_s=10.0)
