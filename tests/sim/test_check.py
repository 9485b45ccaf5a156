"""The schema check of what the central system sends: valid payloads pass, invalid ones are named by action and
field, unknown CALLs are invalid, and the valid case stays cheap."""

from __future__ import annotations

import json
import time

from ampgate.sim.check import SchemaCheck

NOW = "2024-05-01T12:00:00.123Z"


def check(*messages: tuple[str, str, str, object]) -> list[str]:
    return SchemaCheck().check(
        [(p, k, a, v if isinstance(v, str) else json.dumps(v)) for p, k, a, v in messages]
    )


def test_valid_payloads_pass_in_both_versions():
    assert (
        check(
            (
                "ocpp1.6",
                "result",
                "BootNotification",
                {"status": "Accepted", "currentTime": NOW, "interval": 300},
            ),
            ("ocpp1.6", "result", "Heartbeat", {"currentTime": NOW}),
            ("ocpp1.6", "result", "Authorize", {"idTagInfo": {"status": "Blocked"}}),
            (
                "ocpp1.6",
                "result",
                "StartTransaction",
                {"idTagInfo": {"status": "Accepted"}, "transactionId": 7},
            ),
            ("ocpp1.6", "result", "StatusNotification", {}),
            ("ocpp1.6", "call", "Reset", {"type": "Soft"}),
            ("ocpp1.6", "call", "ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
            ("ocpp1.6", "call", "UpdateFirmware", {"location": "http://x/fw.bin", "retrieveDate": NOW}),
            (
                "ocpp2.0.1",
                "result",
                "BootNotification",
                {"status": "Pending", "currentTime": NOW, "interval": 10},
            ),
            ("ocpp2.0.1", "result", "Heartbeat", {"currentTime": NOW}),
            ("ocpp2.0.1", "result", "TransactionEvent", {}),
            ("ocpp2.0.1", "call", "Reset", {"type": "Immediate"}),
            (
                "ocpp2.0.1",
                "call",
                "GetVariables",
                {
                    "getVariableData": [
                        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                    ]
                },
            ),
        )
        == []
    )


def test_invalid_payloads_name_the_action_and_the_field():
    assert check(
        ("ocpp1.6", "result", "BootNotification", {"status": "Yes", "currentTime": NOW, "interval": 300}),
        ("ocpp1.6", "result", "BootNotification", {"currentTime": NOW, "interval": 300}),
        ("ocpp1.6", "result", "Authorize", {"idTagInfo": {}}),
        ("ocpp1.6", "result", "Heartbeat", {"currentTime": "yesterday"}),
        ("ocpp1.6", "call", "Reset", {"type": "Soft", "extra": 1}),
        ("ocpp2.0.1", "call", "Reset", {"type": "Hard"}),
        ("ocpp2.0.1", "result", "Heartbeat", {"currentTime": "2024-05-01T12:00:00"}),
        (
            "ocpp2.0.1",
            "result",
            "BootNotification",
            {"status": "Accepted", "currentTime": NOW, "interval": "10"},
        ),
    ) == [
        "BootNotification: $.status: invalid enum value 'Yes'",
        "BootNotification: $.status: missing required field",
        "Authorize: $.idTagInfo.status: missing required field",
        "Heartbeat: $.currentTime: invalid RFC3339 encoded datetime",
        "Reset: $.extra: unknown field",
        "Reset: $.type: invalid enum value 'Hard'",
        "Heartbeat: $.currentTime: expected `datetime` with a timezone component",
        "BootNotification: $.interval: expected `int`, got `str`",
    ]


def test_not_an_object_not_json_and_unknown_calls_are_invalid():
    assert check(
        ("ocpp1.6", "call", "Reset", [1]),
        ("ocpp1.6", "call", "Reset", '{"type":'),
        ("ocpp1.6", "call", "Heartbeat", {}),  # a charger's action, not the central system's
        ("ocpp2.0.1", "call", "MakeCoffee", {}),
    ) == [
        "Reset: $: expected `object`, got `array`",
        "Reset: $: not JSON (input data was truncated)",
        "Heartbeat: $: not a CALL a central system sends in ocpp1.6",
        "MakeCoffee: $: not a CALL a central system sends in ocpp2.0.1",
    ]


def test_a_reply_to_an_action_without_a_schema_is_not_blamed_on_the_central_system():
    assert check(("ocpp1.6", "result", "NoSuchAction", {"x": 1})) == []


def test_a_valid_heartbeat_reply_costs_about_a_microsecond():
    checker = SchemaCheck()
    batch = [("ocpp1.6", "result", "Heartbeat", json.dumps({"currentTime": NOW}))] * 10_000
    checker.check(batch)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        assert checker.check(batch) == []
        best = min(best, time.perf_counter() - t0)
    # ~0.3 µs here; the bound leaves room for a slow or busy CI machine.
    assert best / len(batch) < 5e-6
