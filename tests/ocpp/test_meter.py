"""Meter values from chargers into stored samples: what is kept, scaled and dropped."""

from __future__ import annotations

import msgspec

from ampgate.ocpp import v16, v201
from ampgate.ocpp.meter import samples16, samples201, signed16, signed201

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


def test_signed_values_are_kept_as_received_and_never_counted_as_readings():
    got16 = mv16(
        {"value": "OCMF|{...}|{...}", "format": "SignedData", "context": "Transaction.End"},
        {"value": "1500", "format": "Raw"},
    )
    assert [s.value for s in samples16(got16)] == [1500.0]
    assert [(s.format, s.signed_data, s.measurand, s.context) for s in signed16(got16)] == [
        ("SignedData", "OCMF|{...}|{...}", "Energy.Active.Import.Register", "Transaction.End")
    ]
    got201 = mv201(
        {
            "value": 1500,
            "signedMeterValue": {
                "signedMeterData": "AQID",
                "signingMethod": "ECDSA-secp256r1-SHA256",
                "encodingMethod": "OCMF",
                "publicKey": "BAUG",
            },
        },
        {"value": 3.2, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
    )
    assert [s.value for s in samples201(got201)] == [1500.0, 3200.0]
    [signed] = signed201(got201)
    assert (
        signed.format,
        signed.signed_data,
        signed.signing_method,
        signed.encoding_method,
        signed.public_key,
    ) == (
        "signedMeterValue",
        "AQID",
        "ECDSA-secp256r1-SHA256",
        "OCMF",
        "BAUG",
    )
    assert signed.at == "2026-01-01T00:00:00.000Z"
