"""Meter values from chargers into stored samples: what is kept, scaled and dropped."""

from __future__ import annotations

import msgspec

from ampgate.ocpp import v16, v201
from ampgate.ocpp.meter import samples16, samples201

T = "2026-01-01T00:00:00Z"


def mv16(*sampled):
    return [msgspec.convert({"timestamp": T, "sampledValue": list(sampled)}, v16.MeterValue)]


def mv201(*sampled):
    return [msgspec.convert({"timestamp": T, "sampledValue": list(sampled)}, v201.MeterValueType)]


def test_non_finite_and_unreadable_values_are_dropped_not_fatal():
    got = samples16(
        mv16({"value": "NaN"}, {"value": "Infinity"}, {"value": "abc"}, {"value": "1.5", "unit": "kWh"})
    )
    assert [(s.measurand, s.value, s.unit) for s in got] == [("Energy.Active.Import.Register", 1500.0, "Wh")]


def test_only_outlet_readings_are_kept():
    got = samples16(
        mv16(
            {"value": "10", "location": "Inlet"},
            {"value": "20", "location": "Outlet"},
            {"value": "30", "location": "EV"},
        )
    )
    assert [s.value for s in got] == [20.0]


def test_multiplier_scales_and_an_absurd_one_is_dropped():
    got = samples201(
        mv201(
            {"value": 2.5, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}},
            {"value": 1.0, "unitOfMeasure": {"unit": "Wh", "multiplier": 400}},
        )
    )
    assert [s.value for s in got] == [2500.0]
