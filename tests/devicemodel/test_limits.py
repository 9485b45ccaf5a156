"""Splitting a request to a charger's ItemsPerMessage / BytesPerMessage and merging the replies (pure), and
what the answers teach the device model."""

from __future__ import annotations

import msgspec

from ampgate.devicemodel import convert
from ampgate.devicemodel.limits import merge_replies, split_request


def item(n: int) -> dict:
    return {"component": {"name": "C"}, "variable": {"name": f"V{n}"}}


def test_split_by_items_keeps_order_and_the_rest_of_the_payload() -> None:
    payload = {"getVariableData": [item(i) for i in range(5)], "customData": {"vendorId": "x"}}
    parts = split_request("GetVariables", payload, 2, None)
    assert [[d["variable"]["name"] for d in p["getVariableData"]] for p in parts] == [
        ["V0", "V1"],
        ["V2", "V3"],
        ["V4"],
    ]
    assert all(p["customData"] == {"vendorId": "x"} for p in parts)
    assert split_request("GetVariables", payload, None, None) == [payload]
    assert split_request("GetVariables", payload, 10, 100_000) == [payload]
    assert split_request("GetVariables", {"getVariableData": []}, 1, 1) == [{"getVariableData": []}]


def test_split_by_bytes_and_a_lone_large_item_still_goes() -> None:
    payload = {"setVariableData": [{**item(i), "attributeValue": "x" * 50} for i in range(4)]}
    one = len(msgspec.json.encode({"setVariableData": [payload["setVariableData"][0]]}))
    parts = split_request("SetVariables", payload, None, one * 2)
    assert all(len(msgspec.json.encode(p)) <= one * 2 for p in parts)
    assert sum(len(p["setVariableData"]) for p in parts) == 4 and len(parts) >= 2
    # An item larger than the limit alone still goes, alone (the charger will say what it thinks of it).
    assert [len(p["setVariableData"]) for p in split_request("SetVariables", payload, None, 10)] == [
        1,
        1,
        1,
        1,
    ]


def test_1_6_get_configuration_and_merge() -> None:
    parts = split_request("GetConfiguration", {"key": ["A", "B", "C"]}, 2, None)
    assert parts == [{"key": ["A", "B"]}, {"key": ["C"]}]
    merged = merge_replies(
        "GetConfiguration",
        [
            {"configurationKey": [{"key": "A", "readonly": True, "value": "1"}], "unknownKey": ["B"]},
            {"configurationKey": [{"key": "C", "readonly": False, "value": "3"}]},
        ],
    )
    assert merged == {
        "configurationKey": [
            {"key": "A", "readonly": True, "value": "1"},
            {"key": "C", "readonly": False, "value": "3"},
        ],
        "unknownKey": ["B"],
    }
    assert merge_replies("GetVariables", [{"getVariableResult": [1]}]) == {"getVariableResult": [1]}


def test_what_answers_teach() -> None:
    got = convert.from_get_variables(
        {
            "getVariableResult": [
                {"attributeStatus": "Accepted", "attributeValue": "300", **item(1)},
                {"attributeStatus": "UnknownVariable", **item(2)},
                {
                    "attributeStatus": "Accepted",
                    "attributeType": "MaxSet",
                    "attributeValue": "32",
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "Power", "instance": "L1"},
                },
            ]
        }
    )
    assert [
        (v.component, v.evse_id, v.variable, v.variable_instance, v.attribute_type, v.value) for v in got
    ] == [
        ("C", -1, "V1", "", "Actual", "300"),
        ("EVSE", 1, "Power", "L1", "MaxSet", "32"),
    ]
    request = {"setVariableData": [{**item(1), "attributeValue": "a"}, {**item(2), "attributeValue": "b"}]}
    reply = {
        "setVariableResult": [
            {"attributeStatus": "Rejected", **item(1)},
            {"attributeStatus": "RebootRequired", **item(2)},
        ]
    }
    assert [(v.variable, v.value) for v in convert.from_set_variables(request, reply)] == [("V2", "b")]
    keys = convert.from_configuration(
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]}
    )
    assert [(v.component, v.variable, v.value, v.mutability) for v in keys] == [
        ("", "HeartbeatInterval", "60", "ReadWrite")
    ]
    assert convert.from_change_configuration({"key": "K", "value": "1"}, {"status": "Rejected"}) == []


def test_get_report_parts_and_their_merged_status() -> None:
    cv = [{"component": {"name": f"C{i}"}} for i in range(3)]
    parts = split_request("GetReport", {"requestId": 5, "componentVariable": cv}, 2, None)
    assert [len(p["componentVariable"]) for p in parts] == [2, 1] and parts[1]["requestId"] == 5
    assert merge_replies("GetReport", [{"status": "Accepted"}, {"status": "Accepted"}]) == {
        "status": "Accepted"
    }
    assert merge_replies("GetReport", [{"status": "Accepted"}, {"status": "EmptyResultSet"}]) == {
        "status": "EmptyResultSet"
    }
