"""The CallError table and the classification of payload validation errors."""

from __future__ import annotations

import msgspec
import pytest

from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import (
    OCPP16,
    OCPP201,
    Fault,
    RpcFault,
    call_error,
    error_code,
    fault_from_validation,
)


@pytest.mark.parametrize(
    ("fault", "v16", "v201"),
    [
        (Fault.NOT_RPC, "ProtocolError", "RpcFrameworkError"),
        (Fault.UNKNOWN_MESSAGE_TYPE, "ProtocolError", "MessageTypeNotSupported"),
        (Fault.UNKNOWN_ACTION, "NotImplemented", "NotImplemented"),
        (Fault.UNSUPPORTED_ACTION, "NotSupported", "NotSupported"),
        (Fault.CSMS_ONLY_ACTION, "NotSupported", "NotSupported"),
        (Fault.FORMAT, "FormationViolation", "FormatViolation"),
        (Fault.MISSING, "OccurenceConstraintViolation", "OccurrenceConstraintViolation"),
        (Fault.TYPE, "TypeConstraintViolation", "TypeConstraintViolation"),
        (Fault.VALUE, "PropertyConstraintViolation", "PropertyConstraintViolation"),
        (Fault.INTERNAL, "InternalError", "InternalError"),
    ],
)
def test_error_table(fault, v16, v201):
    assert error_code(fault, OCPP16) == v16
    assert error_code(fault, OCPP201) == v201


def classify(payload, typ):
    with pytest.raises(msgspec.ValidationError) as e:
        msgspec.convert(payload, typ)
    return fault_from_validation(e.value)


def test_missing_required_field():
    f = classify({"chargePointVendor": "V"}, v16.BootNotificationRequest)
    assert f.fault is Fault.MISSING and f.details["field"] == "$"
    assert "chargePointModel" in f.description


def test_wrong_type_and_too_long_are_type_constraint():
    f = classify({"chargePointVendor": 5, "chargePointModel": "M"}, v16.BootNotificationRequest)
    assert f.fault is Fault.TYPE and f.details["field"] == "$.chargePointVendor"
    f = classify({"chargePointVendor": "V" * 21, "chargePointModel": "M"}, v16.BootNotificationRequest)
    assert f.fault is Fault.TYPE


def test_unknown_field_is_format():
    f = classify(
        {"chargePointVendor": "V", "chargePointModel": "M", "colour": "red"}, v16.BootNotificationRequest
    )
    assert f.fault is Fault.FORMAT


# (A name that itself ends in " - at `$.y`" still reads as FORMAT, with msgspec's text no longer telling where.)
@pytest.mark.parametrize("name", ["", "a`b", "line\nbreak"])
def test_an_unknown_field_of_any_name_is_format(name: str) -> None:
    # Found by the router fuzz: an empty name ({"": 1}) was read as a wrong type (TypeConstraintViolation).
    with pytest.raises(msgspec.ValidationError) as e:
        msgspec.json.decode(msgspec.json.encode({name: 1}), type=v16.HeartbeatRequest)
    fault = fault_from_validation(e.value)
    assert (fault.fault, fault.details["field"]) == (Fault.FORMAT, "$")


def test_bad_enum_is_property_constraint():
    payload = {"reason": "Bored", "chargingStation": {"model": "M", "vendorName": "V"}}
    f = classify(payload, v201.BootNotificationRequest)
    assert f.fault is Fault.VALUE and f.details["field"] == "$.reason"


def test_call_error_echoes_id_and_uses_protocol_code():
    raw = call_error("abc", RpcFault(Fault.FORMAT, "no"), OCPP201)
    assert msgspec.json.decode(raw) == [4, "abc", "FormatViolation", "no", {}]


def test_a_call_error_quoting_a_huge_field_is_bounded() -> None:
    from ampgate.ocpp.envelope import MAX_ERROR_TEXT, Fault, RpcFault, call_error

    name = '"' * 100_000
    fault = RpcFault(Fault.FORMAT, f"Object contains unknown field `{name}`", {"field": f"$.{name}"})
    frame = msgspec.json.decode(call_error("u1", fault, "ocpp1.6"))
    assert frame[:3] == [4, "u1", "FormationViolation"]
    assert len(frame[3]) == MAX_ERROR_TEXT and frame[3].endswith("\u2026")
    assert len(frame[4]["field"]) == MAX_ERROR_TEXT
    short = msgspec.json.decode(
        call_error("u2", RpcFault(Fault.FORMAT, "bad", {"field": "$.x", "n": 3}), "ocpp1.6")
    )
    assert short[3:] == ["bad", {"field": "$.x", "n": 3}]
