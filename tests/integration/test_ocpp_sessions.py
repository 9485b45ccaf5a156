"""Full charging sessions against a real node, with charge points written with the `ocpp` package's
ChargePoint classes (asyncio, on `websockets`), for 1.6 and 2.0.1: boot, status, authorization from tokens
created through the API, transactions with meter values (energy visible through the API), resends after a
reconnect, remote start/stop and configuration through the command API, reset, DataTransfer."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point

T_START = "2026-03-04T05:00:00Z"
T_MID = "2026-03-04T05:30:00Z"
T_END = "2026-03-04T06:00:00Z"


class Charger16(ChargePoint16):
    @on(Action16.remote_start_transaction)
    async def on_remote_start(self, id_tag, **_):
        return result16.RemoteStartTransaction(status="Accepted")

    @after(Action16.remote_start_transaction)
    async def after_remote_start(self, id_tag, connector_id=2, **_):
        r = await self.call(
            call16.StartTransaction(connector_id=connector_id, id_tag=id_tag, meter_start=0, timestamp=T_MID)
        )
        self.remote_tx = r.transaction_id

    @on(Action16.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id, **_):
        return result16.RemoteStopTransaction(status="Accepted")

    @after(Action16.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id, **_):
        await self.call(
            call16.StopTransaction(
                meter_stop=750, timestamp=T_END, transaction_id=transaction_id, reason="Remote"
            )
        )

    @on(Action16.get_configuration)
    async def on_get_configuration(self, **_):
        return result16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]
        )

    @on(Action16.change_configuration)
    async def on_change_configuration(self, key, value, **_):
        return result16.ChangeConfiguration(status="Accepted")

    @on(Action16.reset)
    async def on_reset(self, type, **_):
        return result16.Reset(status="Accepted")


class Charger201(ChargePoint201):
    @on(Action201.request_start_transaction)
    async def on_request_start(self, id_token, remote_start_id, **_):
        return result201.RequestStartTransaction(status="Accepted")

    @after(Action201.request_start_transaction)
    async def after_request_start(self, id_token, remote_start_id, **_):
        await self.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=T_MID,
                trigger_reason="RemoteStart",
                seq_no=0,
                transaction_info={"transaction_id": "REMOTE-1", "remote_start_id": remote_start_id},
                id_token=id_token,
                evse={"id": 2, "connector_id": 1},
            )
        )

    @on(Action201.request_stop_transaction)
    async def on_request_stop(self, transaction_id, **_):
        return result201.RequestStopTransaction(status="Accepted")

    @after(Action201.request_stop_transaction)
    async def after_request_stop(self, transaction_id, **_):
        await self.call(
            call201.TransactionEvent(
                event_type="Ended",
                timestamp=T_END,
                trigger_reason="RemoteStop",
                seq_no=1,
                transaction_info={"transaction_id": transaction_id, "stopped_reason": "Remote"},
            )
        )

    @on(Action201.get_variables)
    async def on_get_variables(self, get_variable_data, **_):
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": "60",
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in get_variable_data
            ]
        )

    @on(Action201.set_variables)
    async def on_set_variables(self, set_variable_data, **_):
        return result201.SetVariables(
            set_variable_result=[
                {"attribute_status": "Accepted", "component": d["component"], "variable": d["variable"]}
                for d in set_variable_data
            ]
        )

    @on(Action201.reset)
    async def on_reset(self, type, **_):
        return result201.Reset(status="Accepted")


def connected(cp_class, url: str, charger_id: str, protocol: str):
    return ocpp_charge_point(cp_class, url, charger_id, protocol)


def api(node) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {node.admin_token}"}
    return httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30)


async def wait_for(fetch, ready, seconds: float = 10.0):
    """Poll `fetch()` until `ready(result)`; return the last result."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await fetch()
        if ready(result) or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.05)


def start16(meter_start: int = 1000) -> call16.StartTransaction:
    return call16.StartTransaction(
        connector_id=1, id_tag="GOOD16", meter_start=meter_start, timestamp=T_START
    )


def test_a_16_session_end_to_end(node):
    async def scenario():
        async with api(node) as http:
            assert (
                await http.post("/id-tokens", json={"id_token": "GOOD16", "status": "Accepted"})
            ).status_code == 201
            async with connected(Charger16, node.ocpp_url, "S16", "ocpp1.6") as cp:
                boot = await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                assert boot.status == "Accepted"
                await cp.call(
                    call16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
                )
                good = await cp.call(call16.Authorize(id_tag="GOOD16"))
                bad = await cp.call(call16.Authorize(id_tag="NOBODY"))
                assert good.id_tag_info["status"] == "Accepted" and bad.id_tag_info["status"] == "Invalid"

                started = await cp.call(start16())
                tx = started.transaction_id
                assert started.id_tag_info["status"] == "Accepted"
                await cp.call(
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=tx,
                        meter_value=[
                            {
                                "timestamp": T_MID,
                                "sampled_value": [
                                    {
                                        "value": "2.5",
                                        "measurand": "Energy.Active.Import.Register",
                                        "unit": "kWh",
                                    },
                                    {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                                    {
                                        "value": "16",
                                        "measurand": "Current.Import",
                                        "unit": "A",
                                        "phase": "L1",
                                    },
                                    {"value": "55", "measurand": "SoC", "unit": "Percent"},
                                ],
                            }
                        ],
                    )
                )
                running = (await http.get(f"/transactions/{tx}")).json()
                assert running["energy_wh"] == 1500.0 and running["stopped_at"] is None
                last = {
                    (s["measurand"], s["phase"]): (s["value"], s["unit"])
                    for s in running["last_meter_values"]
                }
                assert last == {
                    ("Energy.Active.Import.Register", None): (2500.0, "Wh"),
                    ("Power.Active.Import", None): (7200.0, "W"),
                    ("Current.Import", "L1"): (16.0, "A"),
                    ("SoC", None): (55.0, "Percent"),
                }
                stop = call16.StopTransaction(
                    meter_stop=4000,
                    timestamp=T_END,
                    transaction_id=tx,
                    reason="EVDisconnected",
                    transaction_data=[{"timestamp": T_END, "sampled_value": [{"value": "4000"}]}],
                )
                await cp.call(stop)
                unknown = await cp.call(call16.DataTransfer(vendor_id="com.example.nobody", message_id="x"))
                assert unknown.status == "UnknownVendorId"

            # After a reconnect the charger resends its queued StartTransaction and StopTransaction.
            async with connected(Charger16, node.ocpp_url, "S16", "ocpp1.6") as cp:
                again = await cp.call(start16())
                await cp.call(stop)
            assert again.transaction_id == tx

            done = (await http.get(f"/transactions/{tx}")).json()
            samples = (await http.get(f"/transactions/{tx}/samples")).json()
            page = (await http.get("/chargers/S16/transactions")).json()
            charger = (await http.get("/chargers/S16")).json()
            return tx, done, samples, page, charger

    tx, done, samples, page, charger = asyncio.run(scenario())
    assert (done["meter_start_wh"], done["meter_stop_wh"], done["energy_wh"]) == (1000.0, 4000.0, 3000.0)
    assert done["stop_reason"] == "EVDisconnected" and done["stopped_at"] == "2026-03-04T06:00:00Z"
    assert (done["protocol"], done["connector_id"], done["id_token"]) == ("ocpp1.6", 1, "GOOD16")
    assert len(samples["items"]) == 5 and samples["next_cursor"] is None
    assert "samples" not in done and done["samples_url"] == f"/api/v1/transactions/{tx}/samples"
    assert [t["id"] for t in page["items"]] == [tx]  # the resent start did not create a second one
    assert charger["connectors"] == [
        {
            "connector_id": 1,
            "status": "Available",
            "error_code": None,
            "updated_at": charger["connectors"][0]["updated_at"],
        }
    ]


def test_16_remote_start_stop_configuration_and_reset_through_the_api(node):
    async def scenario():
        async with api(node) as http:
            await http.post("/id-tokens", json={"id_token": "REMOTE16", "status": "Accepted"})
            async with connected(Charger16, node.ocpp_url, "R16", "ocpp1.6") as cp:
                await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                cmd = "/chargers/R16/commands"
                start = await http.post(
                    f"{cmd}/RemoteStartTransaction", json={"idTag": "REMOTE16", "connectorId": 2}
                )
                assert start.status_code == 200 and start.json() == {"status": "Accepted"}
                page = await wait_for(
                    lambda: http.get("/chargers/R16/transactions"), lambda r: r.json()["items"]
                )
                tx = page.json()["items"][0]
                assert (tx["connector_id"], tx["id_token"]) == (2, "REMOTE16")
                stop = await http.post(f"{cmd}/RemoteStopTransaction", json={"transactionId": tx["id"]})
                assert stop.json() == {"status": "Accepted"}
                stopped = await wait_for(
                    lambda: http.get(f"/transactions/{tx['id']}"), lambda r: r.json()["stopped_at"]
                )
                assert stopped.json()["stop_reason"] == "Remote" and stopped.json()["energy_wh"] == 750.0
                got = await http.post(f"{cmd}/GetConfiguration", json={"key": ["HeartbeatInterval"]})
                changed = await http.post(
                    f"{cmd}/ChangeConfiguration", json={"key": "HeartbeatInterval", "value": "30"}
                )
                reset = await http.post(f"{cmd}/Reset", json={"type": "Hard"})
                return got.json(), changed.json(), reset.json(), cp.remote_tx, tx["id"]

    got, changed, reset, remote_tx, tx_id = asyncio.run(scenario())
    assert got == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]}
    assert changed == {"status": "Accepted"} and reset == {"status": "Accepted"}
    assert remote_tx == tx_id


def event201(seq: int, kind: str, at: str, wh: float, **extra) -> call201.TransactionEvent:
    return call201.TransactionEvent(
        event_type=kind,
        timestamp=at,
        trigger_reason={
            "Started": "Authorized",
            "Updated": "MeterValuePeriodic",
            "Ended": "EVCommunicationLost",
        }[kind],
        seq_no=seq,
        transaction_info={"transaction_id": "TX-201", **extra.pop("info", {})},
        meter_value=[{"timestamp": at, "sampled_value": [{"value": wh}]}],
        **extra,
    )


def test_a_201_session_end_to_end(node):
    async def scenario():
        async with api(node) as http:
            body = {"id_token": "GOOD201", "type": "ISO14443", "status": "Accepted", "group": "FLEET"}
            assert (await http.post("/id-tokens", json=body)).status_code == 201
            async with connected(Charger201, node.ocpp_url, "S201", "ocpp2.0.1") as cp:
                station = {"model": "M", "vendor_name": "V"}
                await cp.call(call201.BootNotification(charging_station=station, reason="PowerUp"))
                await cp.call(
                    call201.StatusNotification(
                        timestamp=T_START, connector_status="Occupied", evse_id=1, connector_id=1
                    )
                )
                await cp.call(
                    call201.NotifyEvent(
                        generated_at=T_START,
                        seq_no=0,
                        event_data=[
                            {
                                "event_id": 1,
                                "timestamp": T_START,
                                "trigger": "Delta",
                                "actual_value": "Unavailable",
                                "event_notification_type": "HardWiredNotification",
                                "component": {"name": "Connector", "evse": {"id": 2, "connector_id": 1}},
                                "variable": {"name": "AvailabilityState"},
                            }
                        ],
                    )
                )
                token = {"id_token": "GOOD201", "type": "ISO14443"}
                good = await cp.call(call201.Authorize(id_token=token))
                bad = await cp.call(call201.Authorize(id_token={"id_token": "NOBODY", "type": "ISO14443"}))
                assert good.id_token_info["status"] == "Accepted" and bad.id_token_info["status"] == "Invalid"
                assert good.id_token_info["group_id_token"]["id_token"] == "FLEET"

                started = await cp.call(
                    event201(0, "Started", T_START, 1000.0, id_token=token, evse={"id": 1, "connector_id": 1})
                )
                assert started.id_token_info["status"] == "Accepted"
                await cp.call(event201(1, "Updated", T_MID, 2000.0, offline=True))
                # The same (transactionId, seqNo) again, as after a reconnect: ignored, whatever it says.
                await cp.call(event201(1, "Updated", "2026-03-04T05:45:00Z", 99999.0, offline=True))
                await cp.call(event201(2, "Ended", T_END, 3500.0, info={"stopped_reason": "EVDisconnected"}))
                unknown = await cp.call(call201.DataTransfer(vendor_id="com.example.nobody"))
                assert unknown.status == "UnknownVendorId"

            page = (await http.get("/transactions", params={"since": "2026-03-04T04:00:00Z"})).json()
            later = (await http.get("/transactions", params={"since": "2026-03-05T00:00:00Z"})).json()
            tx = (await http.get(f"/transactions/{page['items'][0]['id']}")).json()
            samples = (await http.get(f"/transactions/{page['items'][0]['id']}/samples")).json()
            charger = (await http.get("/chargers/S201")).json()
            return page, later, tx, samples, charger

    page, later, tx, samples, charger = asyncio.run(scenario())
    assert [t["transaction_id"] for t in page["items"]] == ["TX-201"] and later["items"] == []
    assert (tx["meter_start_wh"], tx["meter_stop_wh"], tx["energy_wh"]) == (1000.0, 3500.0, 2500.0)
    assert [s["value"] for s in samples["items"]] == [1000.0, 2000.0, 3500.0]
    assert (tx["evse_id"], tx["connector_id"], tx["id_token"], tx["stop_reason"]) == (
        1,
        1,
        "GOOD201",
        "EVDisconnected",
    )
    assert [(c["evse_id"], c["connector_id"], c["status"]) for c in charger["connectors"]] == [
        (1, 1, "Occupied"),
        (2, 1, "Unavailable"),
    ]


def test_201_remote_start_stop_variables_and_reset_through_the_api(node):
    async def scenario():
        async with api(node) as http:
            await http.post("/id-tokens", json={"id_token": "REMOTE201", "status": "Accepted"})
            async with connected(Charger201, node.ocpp_url, "R201", "ocpp2.0.1") as cp:
                station = {"model": "M", "vendor_name": "V"}
                await cp.call(call201.BootNotification(charging_station=station, reason="PowerUp"))
                cmd = "/chargers/R201/commands"
                body = {
                    "idToken": {"idToken": "REMOTE201", "type": "Central"},
                    "remoteStartId": 7,
                    "evseId": 2,
                }
                start = await http.post(f"{cmd}/RequestStartTransaction", json=body)
                assert start.status_code == 200 and start.json()["status"] == "Accepted"
                page = await wait_for(
                    lambda: http.get("/chargers/R201/transactions"), lambda r: r.json()["items"]
                )
                tx = page.json()["items"][0]
                assert (tx["transaction_id"], tx["evse_id"], tx["id_token"]) == ("REMOTE-1", 2, "REMOTE201")
                stop = await http.post(f"{cmd}/RequestStopTransaction", json={"transactionId": "REMOTE-1"})
                assert stop.json()["status"] == "Accepted"
                stopped = await wait_for(
                    lambda: http.get(f"/transactions/{tx['id']}"), lambda r: r.json()["stopped_at"]
                )
                var = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                got = await http.post(f"{cmd}/GetVariables", json={"getVariableData": [var]})
                put = await http.post(
                    f"{cmd}/SetVariables", json={"setVariableData": [{**var, "attributeValue": "30"}]}
                )
                reset = await http.post(f"{cmd}/Reset", json={"type": "OnIdle"})
                return stopped.json(), got.json(), put.json(), reset.json()

    stopped, got, put, reset = asyncio.run(scenario())
    assert stopped["stop_reason"] == "Remote"
    assert got["getVariableResult"][0]["attributeValue"] == "60"
    assert put["setVariableResult"][0]["attributeStatus"] == "Accepted"
    assert reset == {"status": "Accepted"}


def test_id_tokens_api(node):
    with node.api() as http:
        created = http.post(
            "/id-tokens", json={"id_token": "T1", "status": "Accepted", "expiry": "2030-01-01T00:00:00Z"}
        )
        assert created.status_code == 201 and created.json()["expiry"] == "2030-01-01T00:00:00Z"
        assert http.post("/id-tokens", json={"id_token": "t1", "status": "Accepted"}).status_code == 409
        bad_status = http.post("/id-tokens", json={"id_token": "T2", "status": "Sure"})
        assert bad_status.status_code == 422 and bad_status.json()["field"] == "status"
        missing = http.post("/id-tokens", json={"id_token": "T2"})
        assert missing.status_code == 422 and missing.json()["field"] == "status"
        too_long = http.post("/id-tokens", json={"id_token": "X" * 37, "status": "Accepted"})
        assert too_long.status_code == 422 and too_long.json()["field"] == "id_token"
        for i in range(3):
            http.post("/id-tokens", json={"id_token": f"P{i}", "status": "Accepted"})
        first = http.get("/id-tokens", params={"limit": 2}).json()
        rest = http.get("/id-tokens", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        listed = [t["id_token"] for t in first["items"] + rest["items"]]
        assert listed[:4] == ["P0", "P1", "P2", "T1"]
        patched = http.patch("/id-tokens/T1", json={"status": "Blocked", "expiry": None})
        assert patched.status_code == 200
        assert (patched.json()["status"], patched.json()["expiry"]) == ("Blocked", None)
        assert http.patch("/id-tokens/NOPE", json={"status": "Blocked"}).status_code == 404
        assert http.delete("/id-tokens/T1").status_code == 204
        assert http.delete("/id-tokens/T1").status_code == 404
