"""The generated payload modules: reproducible byte for byte, complete, and shaped like their schemas."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from ampgate.ocpp import generate, v16, v201

MODULES = {"v16": v16, "v201": v201}

# The list: every 1.6 profile plus the security extension.
V16_ACTIONS = {
    # Core
    "Authorize", "BootNotification", "ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer",
    "GetConfiguration", "Heartbeat", "MeterValues", "RemoteStartTransaction", "RemoteStopTransaction", "Reset",
    "StartTransaction", "StatusNotification", "StopTransaction", "UnlockConnector",
    # FirmwareManagement
    "GetDiagnostics", "DiagnosticsStatusNotification", "FirmwareStatusNotification", "UpdateFirmware",
    # LocalAuthListManagement, Reservation, SmartCharging, RemoteTrigger
    "GetLocalListVersion", "SendLocalList", "CancelReservation", "ReserveNow",
    "ClearChargingProfile", "GetCompositeSchedule", "SetChargingProfile", "TriggerMessage",
    # Security extension
    "SecurityEventNotification", "SignCertificate", "CertificateSigned", "InstallCertificate", "DeleteCertificate",
    "GetInstalledCertificateIds", "SignedUpdateFirmware", "SignedFirmwareStatusNotification", "GetLog",
    "LogStatusNotification", "ExtendedTriggerMessage",
}  # fmt: skip


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ampgate.ocpp.generate", *args], capture_output=True, text=True, timeout=60
    )


# -- reproducible -------------------------------------------------------------------------------------------


def test_committed_modules_are_what_the_generator_writes(tmp_path):
    result = run_generator("--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for version, module in MODULES.items():
        assert (tmp_path / f"{version}.py").read_bytes() == Path(module.__file__).read_bytes(), (
            f"{version}.py is stale: run python -m ampgate.ocpp.generate"
        )


def test_check_fails_on_a_stale_module(tmp_path):
    for version, module in MODULES.items():
        (tmp_path / f"{version}.py").write_bytes(Path(module.__file__).read_bytes())
    assert run_generator("--check", "--out", str(tmp_path)).returncode == 0
    with (tmp_path / "v201.py").open("a") as f:
        f.write("# edited by hand\n")
    result = run_generator("--check", "--out", str(tmp_path))
    assert result.returncode == 1 and "v201.py differs" in result.stderr
    assert (tmp_path / "v201.py").read_text().endswith("# edited by hand\n")  # --check writes nothing


@pytest.mark.parametrize("version", MODULES)
def test_marked_generated_with_the_decisions(version):
    text = Path(MODULES[version].__file__).read_text()
    assert text.splitlines()[0] == generate.HEADER
    assert generate.HEADER.endswith("from ocpp==2.1.0 schemas. Do not edit.")
    for key in generate.DECISIONS:
        assert f"- {key}: " in text


def test_generator_reads_only_the_pinned_ocpp(monkeypatch):
    monkeypatch.setattr(generate.importlib.metadata, "version", lambda name: "2.0.0")
    with pytest.raises(RuntimeError, match=r"ocpp==2\.1\.0"):
        generate.render("v16")


def test_generator_refuses_what_it_cannot_translate():
    with pytest.raises(generate.SchemaError, match="pattern"):
        generate._check_keywords({"type": "string", "pattern": "^[A-Z]+$"})


# -- complete -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", MODULES)
def test_every_schema_file_has_a_struct(version):
    module = MODULES[version]
    files = sorted(generate.schema_dir(version).glob("*.json"))
    assert len(files) == {"v16": 78, "v201": 128}[version]
    for path in files:
        response = path.stem.endswith("Response")
        action = path.stem.removesuffix("Response" if response else "Request")
        typ = (module.RESPONSES if response else module.REQUESTS)[action]
        assert typ.__name__ == f"{action}{'Response' if response else 'Request'}"
        assert getattr(module, typ.__name__) is typ
    assert set(module.REQUESTS) == set(module.RESPONSES) == module.CHARGER_INITIATED | module.CSMS_INITIATED
    assert {"DataTransfer"} == module.CHARGER_INITIATED & module.CSMS_INITIATED


def test_every_1_6_profile_and_the_security_extension():
    assert set(v16.REQUESTS) == V16_ACTIONS
    assert len(v201.REQUESTS) == 64


def test_directions():
    for module in (v16, v201):
        assert {
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
        } <= module.CHARGER_INITIATED
        assert {"Reset", "SetChargingProfile", "TriggerMessage", "UpdateFirmware"} <= module.CSMS_INITIATED
    assert {"StartTransaction", "SignedFirmwareStatusNotification"} <= v16.CHARGER_INITIATED
    assert {"SignedUpdateFirmware", "ExtendedTriggerMessage", "GetLog"} <= v16.CSMS_INITIATED
    assert {"TransactionEvent", "NotifyReport", "Get15118EVCertificate"} <= v201.CHARGER_INITIATED
    assert {"RequestStartTransaction", "GetVariables", "PublishFirmware"} <= v201.CSMS_INITIATED


# -- shaped like the schemas --------------------------------------------------------------------------------


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return root["definitions"][ref.removeprefix("#/definitions/")] if ref else node


def _same_shape(root: dict[str, Any], node: dict[str, Any], info: mi.Type, where: str) -> None:
    """`info` (msgspec's view of a type) admits what `node` describes, field by field."""
    node = _resolve(root, node)
    kind = node.get("type")
    if isinstance(info, mi.Metadata):
        extra = info.extra_json_schema or {}
        assert not extra, where
        info = info.type
    if "enum" in node:
        assert isinstance(info, mi.LiteralType) and sorted(info.values) == sorted(node["enum"]), where
    elif kind == "object":
        assert isinstance(info, mi.StructType), where
        props = node.get("properties", {})
        assert [f.encode_name for f in info.fields] == list(props), where
        assert {f.encode_name for f in info.fields if f.required} == set(node.get("required", ())), where
        assert info.forbid_unknown_fields == (node.get("additionalProperties", True) is False), where
        for f in info.fields:
            field_type = f.type
            if not f.required:
                assert f.default is None, where
                if isinstance(field_type, mi.UnionType):
                    assert any(isinstance(t, mi.NoneType) for t in field_type.types), where
                    (field_type,) = [t for t in field_type.types if not isinstance(t, mi.NoneType)]
            _same_shape(root, props[f.encode_name], field_type, f"{where}.{f.encode_name}")
    elif kind == "array":
        assert isinstance(info, mi.ListType), where
        assert (info.min_length, info.max_length) == (node.get("minItems"), node.get("maxItems")), where
        _same_shape(root, node["items"], info.item_type, f"{where}[]")
    elif kind == "string" and node.get("format") == "date-time":
        assert isinstance(info, mi.DateTimeType) and info.tz is True, where
    elif kind == "string":
        assert isinstance(info, mi.StrType) and info.max_length == node.get("maxLength"), where
    elif kind == "integer":
        assert isinstance(info, mi.IntType), where
        # DECISIONS["integer_int64"]: a bound the schema leaves open is the 64-bit one.
        low, high = node.get("minimum", generate.INT64_MIN), node.get("maximum", generate.INT64_MAX)
        assert (info.ge, info.le) == (low, high), where
    elif kind == "number":
        assert isinstance(info, mi.FloatType) and info.multiple_of is None, where  # see multiple_of_decimal
        assert (info.ge, info.le) == (node.get("minimum"), node.get("maximum")), where
    elif kind == "boolean":
        assert isinstance(info, mi.BoolType), where
    else:
        assert isinstance(info, mi.AnyType), where


@pytest.mark.parametrize("version", MODULES)
def test_every_struct_has_its_schema_shape(version):
    module = MODULES[version]
    for action in generate.actions(version):
        for response, types in ((False, module.REQUESTS), (True, module.RESPONSES)):
            root = json.loads(generate.schema_file(version, action, response=response).read_text())
            _same_shape(root, root, mi.type_info(types[action]), types[action].__name__)


# -- use ----------------------------------------------------------------------------------------------------


def test_round_trip_keeps_the_wire_names():
    wire = {
        "chargingStation": {"model": "M", "vendorName": "V", "modem": {"iccid": "8931", "imsi": "2620"}},
        "reason": "PowerUp",
    }
    req = msgspec.convert(wire, v201.BootNotificationRequest)
    assert req.charging_station.vendor_name == "V" and req.charging_station.modem.iccid == "8931"
    assert msgspec.json.decode(msgspec.json.encode(req)) == wire
    ocsp = {"hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "c"}
    ocsp["responderURL"] = "http://ocsp"  # the one name the camelCase rule cannot rebuild
    data = msgspec.convert(ocsp, v201.OCSPRequestDataType)
    assert data.responder_url == "http://ocsp"
    assert msgspec.json.decode(msgspec.json.encode(data)) == ocsp


def test_absent_fields_are_not_encoded():
    boot = v16.BootNotificationRequest(charge_point_vendor="V", charge_point_model="M")
    assert msgspec.json.encode(boot) == b'{"chargePointVendor":"V","chargePointModel":"M"}'
    assert msgspec.json.encode(v16.HeartbeatRequest()) == b"{}"
    with pytest.raises(TypeError):
        v16.BootNotificationRequest("V", "M")  # keyword construction only


def test_nested_lists_round_trip():
    payload = {
        "connectorId": 1,
        "transactionId": 7,
        "meterValue": [
            {
                "timestamp": "2024-05-01T10:00:00Z",
                "sampledValue": [
                    {"value": "1200.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ],
            }
        ],
    }
    req = msgspec.json.decode(json.dumps(payload).encode(), type=v16.MeterValuesRequest)
    assert req.meter_value[0].sampled_value[0].measurand == "Energy.Active.Import.Register"
    assert msgspec.json.decode(msgspec.json.encode(req)) == payload


def test_enums_are_plain_strings():
    assert typing.get_args(v201.RegistrationStatusEnumType) == ("Accepted", "Pending", "Rejected")
    reply = msgspec.convert({"status": "Accepted"}, v16.ResetResponse)
    assert type(reply.status) is str


def test_only_types_that_hold_lists_are_tracked_by_the_collector():
    heartbeat = msgspec.json.decode(b"{}", type=v16.HeartbeatRequest)
    boot = msgspec.json.decode(
        b'{"chargePointVendor":"V","chargePointModel":"M"}', type=v16.BootNotificationRequest
    )
    assert not gc.is_tracked(heartbeat) and not gc.is_tracked(boot)
    assert v16.MeterValuesRequest.__struct_config__.gc and v201.DataTransferRequest.__struct_config__.gc
    assert not v201.BootNotificationRequest.__struct_config__.gc
