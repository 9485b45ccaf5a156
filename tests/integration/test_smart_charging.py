"""Smart-charging notifications against a real node from `ocpp` package charge points (schema validation on):
limits other sources set and clear, an EV's charging needs and schedule kept with the transaction on its EVSE
(needs answered Rejected/NotEnabled: no load management yet), charging profiles reported in parts and refreshed
through the API, composite schedules (1.6 and 2.0.1) kept from the command's answer."""

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

SCHEDULE = {
    "id": 1,
    "charging_rate_unit": "A",
    "charging_schedule_period": [{"start_period": 0, "limit": 16.0}],
}


def profile(pid: int) -> dict:
    return {
        "id": pid,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [{**SCHEDULE, "start_schedule": "2026-11-30T07:00:00Z"}],
    }


class Station(ChargePoint201):
    @on(Action201.get_charging_profiles)
    async def on_get_charging_profiles(self, request_id, charging_profile, **_):
        return result201.GetChargingProfiles(status="Accepted")

    @after(Action201.get_charging_profiles)
    async def report(self, request_id, charging_profile, **_):
        for evse, pids, tbc in ((1, [1, 2], True), (2, [3], False)):
            await self.call(
                call201.ReportChargingProfiles(
                    request_id=request_id,
                    charging_limit_source="CSO",
                    evse_id=evse,
                    charging_profile=[profile(p) for p in pids],
                    tbc=tbc,
                ),
                suppress=False,
            )

    @on(Action201.get_composite_schedule)
    async def on_composite(self, duration, evse_id, **_):
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": "2026-11-30T07:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 7400.0}],
            },
        )


def api(node) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    )


def test_201_notifications_profiles_and_composite_schedule(node) -> None:
    async def scenario():
        async with (
            ocpp_charge_point(Station, node.ocpp_url, "SC201", "ocpp2.0.1", boot=True) as cp,
            api(node) as http,
        ):
            await cp.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp="2026-11-30T07:00:00Z",
                    trigger_reason="CablePluggedIn",
                    seq_no=0,
                    transaction_info={"transaction_id": "tx-1"},
                    evse={"id": 1, "connector_id": 1},
                ),
                suppress=False,
            )
            await cp.call(
                call201.NotifyChargingLimit(
                    charging_limit={"charging_limit_source": "EMS", "is_grid_critical": True},
                    evse_id=1,
                    charging_schedule=[SCHEDULE],
                ),
                suppress=False,
            )
            await cp.call(
                call201.NotifyChargingLimit(charging_limit={"charging_limit_source": "SO"}), suppress=False
            )
            limits_before = (await http.get("/chargers/SC201/charging-limits")).json()["items"]
            await cp.call(call201.ClearedChargingLimit(charging_limit_source="SO"), suppress=False)
            needs = await cp.call(
                call201.NotifyEVChargingNeeds(
                    evse_id=1,
                    charging_needs={
                        "requested_energy_transfer": "AC_three_phase",
                        "departure_time": "2026-11-30T09:00:00Z",
                        "ac_charging_parameters": {
                            "energy_amount": 20000,
                            "ev_min_current": 6,
                            "ev_max_current": 32,
                            "ev_max_voltage": 400,
                        },
                    },
                ),
                suppress=False,
            )
            schedule = await cp.call(
                call201.NotifyEVChargingSchedule(
                    time_base="2026-11-30T07:00:00Z", evse_id=1, charging_schedule=SCHEDULE
                ),
                suppress=False,
            )
            refresh = await http.post("/chargers/SC201/charging-profiles/refresh", json={"criterion": {}})
            profiles = (await http.get("/chargers/SC201/charging-profiles")).json()
            composite = await http.post(
                "/chargers/SC201/commands/GetCompositeSchedule", json={"duration": 3600, "evseId": 1}
            )
            limits = (await http.get("/chargers/SC201/charging-limits")).json()["items"]
            reports = (await http.get("/chargers/SC201/charging-reports")).json()["items"]
            tx = (await http.get("/chargers/SC201/transactions")).json()["items"][0]["id"]
            of_tx = (await http.get("/chargers/SC201/charging-reports", params={"transaction_id": tx})).json()
            return limits_before, needs, schedule, refresh, profiles, composite, limits, reports, tx, of_tx

    limits_before, needs, schedule, refresh, profiles, composite, limits, reports, tx, of_tx = asyncio.run(
        scenario()
    )
    assert [(x["evse_id"], x["source"], x["grid_critical"]) for x in limits_before] == [
        (None, "SO", None),
        (1, "EMS", True),
    ]
    assert [(x["evse_id"], x["source"]) for x in limits] == [(1, "EMS")]  # SO cleared
    assert limits[0]["schedules"][0]["chargingSchedulePeriod"][0]["limit"] == 16.0
    assert needs.status == "Rejected" and needs.status_info["reason_code"] == "NotEnabled"
    assert schedule.status == "Accepted"
    assert refresh.status_code == 200 and refresh.json() == {"profiles": 3}
    assert [(p["evse_id"], p["charging_profile"]["id"]) for p in profiles["items"]] == [
        (1, 1),
        (1, 2),
        (2, 3),
    ]
    assert profiles["reported_at"] is not None
    assert composite.status_code == 200 and composite.json()["status"] == "Accepted"
    assert [r["kind"] for r in reports] == [
        "composite_schedule",
        "ev_charging_schedule",
        "ev_charging_needs",
        "charging_limit.cleared",
        "charging_limit.set",
        "charging_limit.set",
    ]
    assert reports[0]["payload"]["reply"]["schedule"]["chargingSchedulePeriod"][0]["limit"] == 7400.0
    assert [(r["kind"], r["transaction_id"]) for r in of_tx["items"]] == [
        ("ev_charging_schedule", tx),
        ("ev_charging_needs", tx),
    ]
    assert of_tx["items"][1]["payload"]["chargingNeeds"]["acChargingParameters"]["energyAmount"] == 20000


class Point(ChargePoint16):
    @on(Action16.get_composite_schedule)
    async def on_composite(self, connector_id, duration, **_):
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start="2026-11-30T07:00:00Z",
            charging_schedule={
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": 10.0}],
            },
        )


def test_16_composite_schedule_is_kept(node) -> None:
    async def scenario():
        async with ocpp_charge_point(Point, node.ocpp_url, "SC16", "ocpp1.6", boot=True), api(node) as http:
            got = await http.post(
                "/chargers/SC16/commands/GetCompositeSchedule", json={"connectorId": 2, "duration": 600}
            )
            kept = (
                await http.get("/chargers/SC16/charging-reports", params={"kind": "composite_schedule"})
            ).json()
            refused = await http.post("/chargers/SC16/charging-profiles/refresh", json={})
            return got, kept, refused

    got, kept, refused = asyncio.run(scenario())
    assert got.status_code == 200
    (item,) = kept["items"]
    assert (
        item["evse_id"] == 2
        and item["payload"]["reply"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10.0
    )
    assert refused.status_code == 422 and refused.json()["field"] == "charger_id"
