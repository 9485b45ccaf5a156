"""Variable monitoring against a real node from an `ocpp` package 2.0.1 charge point (schema validation on):
the monitoring report (parts out of order) waited for and listed, monitors set and cleared through the command
API learned, SetVariableMonitoring split to ItemsPerMessage, and NotifyEvent events kept and linked to their
monitor (the AvailabilityState ones still update connector status)."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point

TEMP = {"component": {"name": "ChargingStation"}, "variable": {"name": "Temperature"}}


def monitor(mid: int, kind: str, value: float) -> dict:
    return {"id": mid, "transaction": False, "value": value, "type": kind, "severity": 4}


class Station(ChargePoint201):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.set_calls: list[int] = []
        self.next_id = 100

    @on(Action201.get_monitoring_report)
    async def on_report(self, request_id, **_):
        return result201.GetMonitoringReport(status="Accepted")

    @after(Action201.get_monitoring_report)
    async def send_report(self, request_id, **_):
        parts = {
            0: [{**TEMP, "variable_monitoring": [monitor(1, "UpperThreshold", 80.0)]}],
            1: [
                {
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "Power"},
                    "variable_monitoring": [monitor(2, "Delta", 1000.0)],
                }
            ],
        }
        for seq in (1, 0):
            await self.call(
                call201.NotifyMonitoringReport(
                    request_id=request_id,
                    seq_no=seq,
                    generated_at="2026-11-30T07:00:00Z",
                    tbc=seq == 0,
                    monitor=parts[seq],
                ),
                suppress=False,
            )

    @on(Action201.set_variable_monitoring)
    async def on_set(self, set_monitoring_data, **_):
        self.set_calls.append(len(set_monitoring_data))
        results = []
        for d in set_monitoring_data:
            self.next_id += 1
            results.append(
                {
                    "id": self.next_id,
                    "status": "Accepted",
                    "type": d["type"],
                    "severity": d["severity"],
                    "component": d["component"],
                    "variable": d["variable"],
                }
            )
        return result201.SetVariableMonitoring(set_monitoring_result=results)

    @on(Action201.clear_variable_monitoring)
    async def on_clear(self, id, **_):
        return result201.ClearVariableMonitoring(
            clear_monitoring_result=[{"id": i, "status": "Accepted"} for i in id]
        )


def api(node) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    )


def test_monitors_and_their_events(node) -> None:
    async def scenario():
        async with (
            ocpp_charge_point(Station, node.ocpp_url, "MON1", "ocpp2.0.1", boot=True) as cp,
            api(node) as http,
        ):
            # The charger says it takes at most 2 monitors per SetVariableMonitoring.
            await cp.call(
                call201.NotifyReport(
                    request_id=999,
                    generated_at="2026-11-30T07:00:00Z",
                    seq_no=0,
                    report_data=[
                        {
                            "component": {"name": "DeviceDataCtrlr"},
                            "variable": {"name": "ItemsPerMessage", "instance": "SetVariableMonitoring"},
                            "variable_attribute": [
                                {"type": "Actual", "value": "2", "mutability": "ReadOnly"}
                            ],
                        }
                    ],
                ),
                suppress=False,
            )
            refresh = await http.post("/chargers/MON1/monitors/refresh", json={})
            after_report = (await http.get("/chargers/MON1/monitors")).json()["items"]
            data = [
                {**TEMP, "value": float(v), "type": "UpperThreshold", "severity": 2} for v in (60, 70, 90)
            ]
            set_reply = await http.post(
                "/chargers/MON1/commands/SetVariableMonitoring", json={"setMonitoringData": data}
            )
            clear = await http.post("/chargers/MON1/commands/ClearVariableMonitoring", json={"id": [2]})
            monitors = (await http.get("/chargers/MON1/monitors")).json()["items"]
            await cp.call(
                call201.NotifyEvent(
                    generated_at="2026-11-30T07:10:00Z",
                    seq_no=0,
                    event_data=[
                        {
                            "event_id": 7,
                            "timestamp": "2026-11-30T07:09:00Z",
                            "trigger": "Alerting",
                            "actual_value": "85",
                            "component": TEMP["component"],
                            "variable": TEMP["variable"],
                            "variable_monitoring_id": 1,
                            "event_notification_type": "PreconfiguredMonitor",
                        },
                        {
                            "event_id": 8,
                            "timestamp": "2026-11-30T07:09:30Z",
                            "trigger": "Delta",
                            "actual_value": "Unavailable",
                            "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
                            "variable": {"name": "AvailabilityState"},
                            "event_notification_type": "HardWiredNotification",
                        },
                    ],
                ),
                suppress=False,
            )
            await asyncio.sleep(0.3)  # events and status are recorded fire-and-forget
            events = (await http.get("/chargers/MON1/device-events")).json()["items"]
            of_monitor = (await http.get("/chargers/MON1/device-events", params={"monitor_id": 1})).json()[
                "items"
            ]
            charger = (await http.get("/chargers/MON1")).json()
            return (
                refresh,
                after_report,
                set_reply,
                clear,
                monitors,
                cp.set_calls,
                events,
                of_monitor,
                charger,
            )

    refresh, after_report, set_reply, clear, monitors, calls, events, of_monitor, charger = asyncio.run(
        scenario()
    )
    assert refresh.status_code == 200 and refresh.json()["monitors"] == 2
    assert [(m["id"], m["component"], m["evse_id"], m["type"], m["value"]) for m in after_report] == [
        (1, "ChargingStation", None, "UpperThreshold", 80.0),
        (2, "EVSE", 1, "Delta", 1000.0),
    ]
    assert set_reply.status_code == 200 and len(set_reply.json()["setMonitoringResult"]) == 3
    assert calls == [2, 1]  # split to ItemsPerMessage SetVariableMonitoring = 2
    assert clear.status_code == 200
    assert [(m["id"], m["value"]) for m in monitors] == [(1, 80.0), (101, 60.0), (102, 70.0), (103, 90.0)]
    assert [(e["event_id"], e["monitor_id"]) for e in events] == [(8, None), (7, 1)]
    assert events[1]["monitor"]["type"] == "UpperThreshold" and events[1]["actual_value"] == "85"
    assert [e["event_id"] for e in of_monitor] == [7]
    assert charger["connectors"][0]["status"] == "Unavailable"  # the status part still sees it
