"""BootNotification policy: unknown chargers Accepted, Pending or Rejected per configuration; what a charger
that is not accepted may send and be sent; acceptance remembered across connections and node restarts."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets
from ocpp.exceptions import SecurityError
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

BOOT_201 = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}


class Charger(ChargePoint201):
    @on(Action201.get_variables)
    async def on_get_variables(self, get_variable_data, **_):
        results = [
            {
                "attribute_status": "Accepted",
                "component": d["component"],
                "variable": d["variable"],
                "attribute_value": "42",
            }
            for d in get_variable_data
        ]
        return result201.GetVariables(get_variable_result=results)

    @on(Action201.reset)
    async def on_reset(self, type, **_):
        return result201.Reset(status="Accepted")

    @on(Action201.trigger_message)
    async def on_trigger_message(self, requested_message, **_):
        return result201.TriggerMessage(status="Accepted")

    @after(Action201.trigger_message)
    async def after_trigger_message(self, requested_message, **_):
        # What the trigger asked for, sent after its reply (as a charger does).
        if requested_message == "StatusNotification":
            self.triggered = await self.call(
                call201.StatusNotification(
                    timestamp="2026-11-30T08:00:00Z", connector_status="Available", evse_id=1, connector_id=1
                ),
                suppress=False,
            )


async def command(node, charger_id: str, name: str, body) -> httpx.Response:
    headers = {"Authorization": f"Bearer {node.admin_token}"}
    async with httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as api:
        return await api.post(f"/chargers/{charger_id}/commands/{name}", json=body)


async def raw_exchange(url: str, messages: list) -> list:
    """Send each message, collect each reply (raw OCPP-J over `websockets`)."""
    replies = []
    async with websockets.connect(url, subprotocols=["ocpp2.0.1"]) as ws:
        for m in messages:
            await ws.send(json.dumps(m))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    return replies


def test_pending_charger_may_only_be_configured_until_registered(node_factory):
    node = node_factory("--unknown-boot", "pending", "--boot-retry-interval", "7")

    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/WAIT1", subprotocols=["ocpp2.0.1"]) as ws:
            cp = Charger("WAIT1", ws)
            task = asyncio.create_task(cp.start())
            boot = await cp.call(
                call201.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                )
            )
            get = await command(
                node,
                "WAIT1",
                "GetVariables",
                {
                    "getVariableData": [
                        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
                    ]
                },
            )
            reset = await command(node, "WAIT1", "Reset", {"type": "Immediate"})
            task.cancel()
        return boot, get, reset

    boot, get, reset = asyncio.run(scenario())
    assert boot.status == "Pending" and boot.interval == 7
    assert get.status_code == 200 and get.json()["getVariableResult"][0]["attributeValue"] == "42"
    assert reset.status_code == 409 and reset.json()["code"] == "charger_not_accepted"

    # A transaction-related CALL from a Pending charger is refused with SecurityError [B02/B03].
    boot2, authorize = asyncio.run(
        raw_exchange(
            f"{node.ocpp_url}/WAIT2",
            [
                [2, "b", "BootNotification", BOOT_201],
                [2, "a", "Authorize", {"idToken": {"idToken": "TAG", "type": "ISO14443"}}],
            ],
        )
    )
    assert boot2[2]["status"] == "Pending"
    assert authorize[:3] == [4, "a", "SecurityError"]

    # Once an operator registers it (200: the node already knew it from its boot), its next boot is Accepted
    # and it is served.
    with node.api() as api:
        assert api.post("/chargers", json={"id": "WAIT2"}).status_code == 200
    boot3, authorize3 = asyncio.run(
        raw_exchange(
            f"{node.ocpp_url}/WAIT2",
            [
                [2, "b", "BootNotification", BOOT_201],
                [2, "a", "Authorize", {"idToken": {"idToken": "TAG", "type": "ISO14443"}}],
            ],
        )
    )
    assert boot3[2]["status"] == "Accepted" and boot3[2]["interval"] == 300
    assert authorize3[0] == 3


def test_pending_charger_sends_what_a_trigger_asked_for_and_nothing_else(node_factory):
    """B02.FR.09: while Pending, a charger's own messages are refused with SecurityError unless the central
    system asked for them (here with TriggerMessage through the command API)."""
    node = node_factory("--unknown-boot", "pending")

    async def scenario():
        async with websockets.connect(f"{node.ocpp_url}/WAIT3", subprotocols=["ocpp2.0.1"]) as ws:
            cp = Charger("WAIT3", ws)
            task = asyncio.create_task(cp.start())
            boot = await cp.call(
                call201.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                ),
                suppress=False,
            )
            refused = None
            try:
                await cp.call(call201.Heartbeat(), suppress=False)
            except SecurityError as e:
                refused = e
            trigger = await command(
                node, "WAIT3", "TriggerMessage", {"requestedMessage": "StatusNotification"}
            )
            for _ in range(100):
                if getattr(cp, "triggered", None) is not None:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
        return boot, refused, trigger, getattr(cp, "triggered", None)

    boot, refused, trigger, triggered = asyncio.run(scenario())
    assert boot.status == "Pending"
    assert refused is not None  # the unasked heartbeat
    assert trigger.status_code == 200 and trigger.json()["status"] == "Accepted"
    assert triggered is not None  # the StatusNotification it was asked for was answered, not refused
    statuses = node.get("/chargers/WAIT3").json()["connectors"]
    assert [(c["evse_id"], c["connector_id"], c["status"]) for c in statuses] == [(1, 1, "Available")]


def test_rejected_charger_is_told_when_to_retry_and_gets_nothing_else(node_factory):
    node = node_factory("--unknown-boot", "reject")
    boot, heartbeat = asyncio.run(
        raw_exchange(
            f"{node.ocpp_url}/NOPE",
            [
                [2, "b", "BootNotification", BOOT_201],
                [2, "h", "Heartbeat", {}],
            ],
        )
    )
    assert boot[2]["status"] == "Rejected" and boot[2]["interval"] == 60
    assert heartbeat[:3] == [4, "h", "SecurityError"]

    async def while_connected():
        async with websockets.connect(f"{node.ocpp_url}/NOPE", subprotocols=["ocpp2.0.1"]) as ws:
            await ws.send(json.dumps([2, "b", "BootNotification", BOOT_201]))
            await ws.recv()
            return await command(node, "NOPE", "GetVariables", {"getVariableData": []})

    r = asyncio.run(while_connected())
    assert r.status_code == 409 and r.json()["code"] == "charger_not_accepted"


def test_a_charger_that_never_booted_is_refused_but_one_accepted_before_is_served_after_a_restart(
    node_factory, tmp_path
):
    db = tmp_path / "shared.db"
    first = node_factory("--unknown-boot", "accept", db=db)
    never = asyncio.run(raw_exchange(f"{first.ocpp_url}/SKIPPER", [[2, "h", "Heartbeat", {}]]))
    assert never[0][:3] == [4, "h", "SecurityError"]
    boot = asyncio.run(raw_exchange(f"{first.ocpp_url}/RETURNER", [[2, "b", "BootNotification", BOOT_201]]))
    assert boot[0][2]["status"] == "Accepted"
    assert first.stop() == 0

    # Same database, and now unknown chargers are rejected: the charger accepted before reconnects without
    # a BootNotification (2.0.1 allows it) and is served; its next boot is Accepted too.
    second = node_factory("--unknown-boot", "reject", db=db)
    hb, boot2 = asyncio.run(
        raw_exchange(
            f"{second.ocpp_url}/RETURNER",
            [
                [2, "h", "Heartbeat", {}],
                [2, "b", "BootNotification", BOOT_201],
            ],
        )
    )
    assert hb[:2] == [3, "h"]
    assert boot2[2]["status"] == "Accepted"
