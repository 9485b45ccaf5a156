"""The device model against a real node, from `ocpp` package charge points (schema validation on): a refresh
waits for a multi-part NotifyReport sent out of order (2.0.1) or asks GetConfiguration (1.6); what they report is
shown by the API; GetVariables / GetConfiguration requests are split to the charger's ItemsPerMessage /
GetConfigurationMaxKeys and the results merged; what answers say is recorded."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point


def attr(value: str, mutability: str = "ReadOnly") -> list[dict]:
    return [{"type": "Actual", "value": value, "mutability": mutability}]


REPORT_PARTS = [
    # seqNo 0
    [
        {
            "component": {"name": "DeviceDataCtrlr"},
            "variable": {"name": "ItemsPerMessage", "instance": "GetVariables"},
            "variable_attribute": attr("2"),
            "variable_characteristics": {"data_type": "integer", "supports_monitoring": False},
        },
        {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
            "variable_attribute": attr("300", "ReadWrite"),
            "variable_characteristics": {"unit": "s", "data_type": "integer", "supports_monitoring": True},
        },
    ],
    # seqNo 1 (the last)
    [
        {
            "component": {"name": "SampledDataCtrlr"},
            "variable": {"name": "TxUpdatedMeasurands"},
            "variable_attribute": attr("Energy.Active.Import.Register", "ReadWrite"),
            "variable_characteristics": {
                "data_type": "MemberList",
                "values_list": "Energy.Active.Import.Register,Power.Active.Import",
                "supports_monitoring": False,
            },
        },
        {
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "Power"},
            "variable_attribute": [{"type": "MaxSet", "value": "22000"}, {"type": "Actual", "value": "0"}],
            "variable_characteristics": {"unit": "W", "data_type": "decimal", "supports_monitoring": True},
        },
    ],
]


class Station(ChargePoint201):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.get_calls: list[int] = []
        self.report_calls: list[tuple[int, int]] = []

    @on(Action201.get_base_report)
    async def on_get_base_report(self, request_id, report_base, **_):
        return result201.GetBaseReport(status="Accepted")

    @after(Action201.get_base_report)
    async def send_report(self, request_id, report_base, **_):
        for seq in (1, 0):  # out of order
            await self.call(
                call201.NotifyReport(
                    request_id=request_id,
                    generated_at="2026-11-30T07:00:00Z",
                    seq_no=seq,
                    tbc=seq == 0,
                    report_data=REPORT_PARTS[seq],
                ),
                suppress=False,
            )

    @on(Action201.get_report)
    async def on_get_report(self, request_id, component_variable=None, **_):
        self.report_calls.append((request_id, len(component_variable or [])))
        return result201.GetReport(status="Accepted")

    @on(Action201.get_variables)
    async def on_get_variables(self, get_variable_data, **_):
        self.get_calls.append(len(get_variable_data))
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                    "attribute_value": f"v-{d['variable']['name']}",
                }
                for d in get_variable_data
            ]
        )


def api(node) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    )


def test_201_refresh_waits_for_the_report_and_requests_follow_its_limits(node) -> None:
    async def scenario():
        async with (
            ocpp_charge_point(Station, node.ocpp_url, "DM201", "ocpp2.0.1", boot=True) as cp,
            api(node) as http,
        ):
            refresh = await http.post("/chargers/DM201/device-model/refresh")
            # Answered only once both parts were in: the model is complete when it returns.
            model = (await http.get("/chargers/DM201/device-model")).json()
            items = [{"component": {"name": "C"}, "variable": {"name": f"V{i}"}} for i in range(5)]
            got = await http.post("/chargers/DM201/commands/GetVariables", json={"getVariableData": items})
            learned = (await http.get("/chargers/DM201/device-model", params={"variable": "V3"})).json()
            page = (await http.get("/chargers/DM201/device-model", params={"limit": 2})).json()
            rest = (
                await http.get(
                    "/chargers/DM201/device-model", params={"limit": 100, "cursor": page["next_cursor"]}
                )
            ).json()
            viewer_refresh = await http.post(
                "/chargers/DM201/device-model/refresh", headers={"Authorization": "Bearer nope"}
            )
            caps = (await http.get("/chargers/DM201/device-model/capabilities")).json()
            # A charger that takes 2 componentVariables per GetReport: 3 go as two reports.
            await cp.call(
                call201.NotifyReport(
                    request_id=998,
                    generated_at="2026-11-30T07:00:00Z",
                    seq_no=0,
                    report_data=[
                        {
                            "component": {"name": "DeviceDataCtrlr"},
                            "variable": {"name": "ItemsPerMessage", "instance": "GetReport"},
                            "variable_attribute": attr("2"),
                        }
                    ],
                ),
                suppress=False,
            )
            cvs = [{"component": {"name": f"C{i}"}} for i in range(3)]
            report = await http.post(
                "/chargers/DM201/commands/GetReport", json={"requestId": 4242, "componentVariable": cvs}
            )
            assert report.status_code == 200 and report.json() == {"status": "Accepted"}
            assert [r[1] for r in cp.report_calls] == [2, 1] and cp.report_calls[0][0] == 4242
            assert cp.report_calls[1][0] != 4242
            return refresh, model, got, learned, page, rest, cp.get_calls, viewer_refresh, caps

    refresh, model, got, learned, page, rest, calls, unauthorised, caps = asyncio.run(scenario())
    assert caps == {
        "security_profile": None,
        "signed_firmware": True,
        "supported_measurands": ["Energy.Active.Import.Register", "Power.Active.Import"],
        "items_per_message": {"GetVariables": 2},  # GetReport's limit arrives later
        "bytes_per_message": {},
    }
    assert refresh.status_code == 200 and refresh.json()["status"] == "Accepted"
    assert isinstance(refresh.json()["request_id"], int)
    rows = {(r["component"], r["variable"], r["attribute_type"]): r for r in model["items"]}
    assert rows[("DeviceDataCtrlr", "ItemsPerMessage", "Actual")]["value"] == "2"
    assert rows[("DeviceDataCtrlr", "ItemsPerMessage", "Actual")]["variable_instance"] == "GetVariables"
    heartbeat = rows[("OCPPCommCtrlr", "HeartbeatInterval", "Actual")]
    assert (heartbeat["value"], heartbeat["mutability"], heartbeat["characteristics"]["unit"]) == (
        "300",
        "ReadWrite",
        "s",
    )
    power = rows[("EVSE", "Power", "MaxSet")]
    assert (power["evse_id"], power["value"], power["characteristics"]["dataType"]) == (1, "22000", "decimal")
    # ItemsPerMessage GetVariables = 2: five items went as three calls, answered as one.
    assert calls == [2, 2, 1]
    assert got.status_code == 200
    assert [r["attributeValue"] for r in got.json()["getVariableResult"]] == [f"v-V{i}" for i in range(5)]
    assert [r["value"] for r in learned["items"]] == ["v-V3"]
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert len(page["items"]) + len(rest["items"]) == len(model["items"]) + 5 and rest["next_cursor"] is None
    assert unauthorised.status_code == 401


KEYS16 = {
    "HeartbeatInterval": ("60", False),
    "SecurityProfile": ("1", False),
    "GetConfigurationMaxKeys": ("2", True),
    "NumberOfConnectors": ("2", True),
}


class Point(ChargePoint16):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.calls: list[list[str] | None] = []

    @on(Action16.get_configuration)
    async def on_get_configuration(self, key=None, **_):
        self.calls.append(key)
        names = key if key else list(KEYS16)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": k, "readonly": KEYS16[k][1], "value": KEYS16[k][0]} for k in names if k in KEYS16
            ],
            unknown_key=[k for k in names if k not in KEYS16] or None,
        )


def test_16_refresh_reads_the_configuration_and_get_configuration_is_split(node) -> None:
    async def scenario():
        async with (
            ocpp_charge_point(Point, node.ocpp_url, "DM16", "ocpp1.6", boot=True) as cp,
            api(node) as http,
        ):
            refresh = await http.post("/chargers/DM16/device-model/refresh")
            keys = (await http.get("/chargers/DM16/device-model", params={"component": ""})).json()
            got = await http.post(
                "/chargers/DM16/commands/GetConfiguration",
                json={"key": ["HeartbeatInterval", "Nope", "NumberOfConnectors"]},
            )
            caps = (await http.get("/chargers/DM16/device-model/capabilities")).json()
            return refresh, keys, got, cp.calls, caps

    refresh, keys, got, calls, caps = asyncio.run(scenario())
    assert (caps["security_profile"], caps["signed_firmware"], caps["items_per_message"]) == (
        1,
        True,
        {"GetConfiguration": 2},
    )
    assert refresh.status_code == 200 and refresh.json() == {"request_id": None, "status": "Accepted"}
    assert {(k["component"], k["variable"], k["value"], k["mutability"]) for k in keys["items"]} == {
        (None, "HeartbeatInterval", "60", "ReadWrite"),
        (None, "SecurityProfile", "1", "ReadWrite"),
        (None, "GetConfigurationMaxKeys", "2", "ReadOnly"),
        (None, "NumberOfConnectors", "2", "ReadOnly"),
    }
    # GetConfigurationMaxKeys = 2: three keys went as two calls.
    assert calls == [None, ["HeartbeatInterval", "Nope"], ["NumberOfConnectors"]]
    body = got.json()
    assert [k["key"] for k in body["configurationKey"]] == ["HeartbeatInterval", "NumberOfConnectors"]
    assert body["unknownKey"] == ["Nope"]
