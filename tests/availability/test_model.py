"""The pure rules: which state a status counts as, the counts, the haversine distance, the score."""

from __future__ import annotations

import math

import pytest

from ampgate.availability import model
from ampgate.availability.model import FAULTED, FREE, IN_USE, OFFLINE, UNAVAILABLE, Counts, count, state_of


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Available", FREE),
        ("Preparing", IN_USE),
        ("Charging", IN_USE),
        ("SuspendedEV", IN_USE),
        ("SuspendedEVSE", IN_USE),
        ("Finishing", IN_USE),
        ("Reserved", IN_USE),
        ("Occupied", IN_USE),
        ("Faulted", FAULTED),
        ("Unavailable", UNAVAILABLE),
        ("SomethingNew", UNAVAILABLE),
    ],
)
def test_an_online_connector_counts_as_its_status_says(status: str, state: str) -> None:
    assert state_of(status, online=True) == state


@pytest.mark.parametrize("status", ["Available", "Charging", "Faulted", "Unavailable"])
def test_a_connector_of_an_offline_charger_is_offline_whatever_it_last_said(status: str) -> None:
    assert state_of(status, online=False) == OFFLINE


def test_the_charge_point_itself_and_evse_zero_are_not_connectors() -> None:
    assert model.is_connector(None, 1) and model.is_connector(2, 1)
    assert not model.is_connector(None, 0)  # 1.6: connectorId 0 is the charge point
    assert not model.is_connector(0, 1) and not model.is_connector(1, 0)


def test_counts() -> None:
    c = count([FREE, FREE, IN_USE, OFFLINE, FAULTED, OFFLINE])
    assert c == Counts(free=2, in_use=1, faulted=1, unavailable=0, offline=2)
    assert c.total == 6 and c.as_tuple() == (2, 1, 1, 0, 2)
    assert count([]) == model.NO_CONNECTORS and model.NO_CONNECTORS.total == 0


def test_haversine_against_known_distances() -> None:
    # Amsterdam Centraal to Utrecht Centraal: 35.4 km great circle (independent value from a GIS).
    d = model.haversine_km(52.3791, 4.9003, 52.0894, 5.1100)
    assert 35.0 < d < 35.8
    # A quarter of the equator.
    assert model.haversine_km(0, 0, 0, 90) == pytest.approx(math.pi * model.EARTH_RADIUS_KM / 2)
    assert model.haversine_km(10, 20, 10, 20) == 0.0
    # Across the antimeridian: 0.2 degrees of longitude, not 359.8.
    assert model.haversine_km(0, 179.9, 0, -179.9) == pytest.approx(22.24, abs=0.01)
    # Antipodes do not fall over rounding.
    assert model.haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * model.EARTH_RADIUS_KM)


def test_the_latitude_box_holds_the_circle() -> None:
    span = model.lat_span_deg(50)
    assert model.haversine_km(0, 0, span, 0) == pytest.approx(50)


def test_no_free_connector_scores_zero_whatever_else() -> None:
    assert model.score(0, 500.0, 0.0) == 0.0
    assert model.score(0, None, None) == 0.0


def test_more_free_more_headroom_and_less_occupancy_each_score_higher() -> None:
    base = model.score(2, 22.0, 0.5)
    assert model.score(3, 22.0, 0.5) > base
    assert model.score(2, 50.0, 0.5) > base
    assert model.score(2, 22.0, 0.2) > base
    # Any site with a free connector ranks above any with none.
    assert model.score(1, 0.0, 1.0) > model.score(0, 1000.0, 0.0)


def test_the_score_follows_the_documented_formula() -> None:
    # F = 2/4, H = 22/44, U = 1 - 0.25: 0.5 * (1 + 0.75 + 0.25) / 2.5 = 0.4
    assert model.score(2, 22.0, 0.25) == pytest.approx(0.4)
    # Unknown headroom and occupancy count as the middle value.
    assert model.score(2, None, None) == pytest.approx(model.score(2, 22.0, 0.5))
    for free in (1, 5, 100):
        assert 0 < model.score(free, 1e9, 0.0) < 1


def test_occupancy_is_in_use_over_in_service_time() -> None:
    assert model.occupancy(30.0, 90.0) == pytest.approx(0.25)
    assert model.occupancy(0.0, 0.0) is None
