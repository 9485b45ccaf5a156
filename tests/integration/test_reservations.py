"""Reservations end to end: a real node, the HTTP API, and charge points written with the `ocpp` package's
ChargePoint classes (asyncio, on `websockets`, validating every message against the OCPP schemas) for 1.6 and
2.0.1. The API reserves and the charger receives ReserveNow with the node's reservation id; the reserving token
may start there and another is refused; CancelReservation; 2.0.1 ReservationStatusUpdate ends one; a refused
ReserveNow leaves nothing active; a viewer cannot reserve."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point

T0 = "2026-03-04T05:00:00Z"
# A connector / EVSE the chargers below answer ReserveNow for with this status instead of Accepted.
REFUSING = {3: "Occupied"}


def expiry(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


class Charger16(ChargePoint16):
    """Accepts reservations (Occupied on connector 3) and cancels, and remembers what it was sent."""

    reserved: dict[int, dict[str, Any]]
    cancelled: list[int]

    @on(Action16.reserve_now)
    async def on_reserve_now(self, connector_id, expiry_date, id_tag, reservation_id, **rest):
        self.reserved[reservation_id] = {"connector_id": connector_id, "id_tag": id_tag, **rest}
        return result16.ReserveNow(status=REFUSING.get(connector_id, "Accepted"))

    @on(Action16.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id, **_):
        self.cancelled.append(reservation_id)
        known = self.reserved.pop(reservation_id, None) is not None
        return result16.CancelReservation(status="Accepted" if known else "Rejected")


class Charger201(ChargePoint201):
    """Accepts reservations (Faulted on EVSE 3), and remembers what it was sent."""

    reserved: dict[int, dict[str, Any]]

    @on(Action201.reserve_now)
    async def on_reserve_now(self, id, expiry_date_time, id_token, evse_id=None, **rest):
        self.reserved[id] = {"evse_id": evse_id, "id_token": id_token, **rest}
        return result201.ReserveNow(status="Faulted" if evse_id == 3 else "Accepted")


def connected(cp_class, node, charger_id: str, protocol: str):
    return ocpp_charge_point(cp_class, node.ocpp_url, charger_id, protocol, boot=True)


def api(node, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token or node.admin_token}"}
    return httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30)


def operator_token(node, role: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", role, "--db", str(node.db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def wait_for(fetch, ready, seconds: float = 10.0):
    """Poll `fetch()` until `ready(result)`; return the last result."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await fetch()
        if ready(result) or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.05)


def start16(connector: int, id_tag: str, reservation_id: int | None = None) -> call16.StartTransaction:
    return call16.StartTransaction(
        connector_id=connector, id_tag=id_tag, meter_start=0, timestamp=T0, reservation_id=reservation_id
    )


def started201(tx: str, evse: int, token: str, reservation_id: int | None = None) -> call201.TransactionEvent:
    return call201.TransactionEvent(
        event_type="Started",
        timestamp=T0,
        trigger_reason="Authorized",
        seq_no=0,
        transaction_info={"transaction_id": tx},
        evse={"id": evse, "connector_id": 1},
        id_token={"id_token": token, "type": "ISO14443"},
        reservation_id=reservation_id,
    )


def test_16_reserve_honour_use_cancel_and_refuse(node):
    async def scenario():
        operator = operator_token(node, "operator")
        async with api(node, operator) as http:
            for token in ("ALICE", "BOB"):
                r = await http.post("/id-tokens", json={"id_token": token, "status": "Accepted"})
                assert r.status_code == 201
            async with connected(Charger16, node, "RES16", "ocpp1.6") as cp:
                cp.reserved, cp.cancelled = {}, []
                r = await http.post(
                    "/reservations",
                    json={
                        "charger_id": "RES16",
                        "connector_id": 1,
                        "id_token": "ALICE",
                        "expires_at": expiry(),
                    },
                )
                assert r.status_code == 201, r.text
                res = r.json()
                assert r.headers["location"] == f"/api/v1/reservations/{res['id']}"
                assert res["state"] == "active"
                assert (
                    cp.reserved[res["id"]]["connector_id"] == 1
                    and cp.reserved[res["id"]]["id_tag"] == "ALICE"
                )

                # Authorize names no connector: BOB gets his own status; at the reserved connector he is refused.
                auth = await cp.call(call16.Authorize(id_tag="BOB"), suppress=False)
                assert auth.id_tag_info["status"] == "Accepted"
                refused = await cp.call(start16(1, "BOB"), suppress=False)
                assert refused.id_tag_info["status"] == "Invalid"
                assert (await http.get(f"/reservations/{res['id']}")).json()["state"] == "active"
                # ALICE starts with it: the reservation ends as used.
                used = await cp.call(start16(1, "ALICE", res["id"]), suppress=False)
                assert used.id_tag_info["status"] == "Accepted"
                after = (await http.get(f"/reservations/{res['id']}")).json()
                assert (after["state"], after["end_reason"]) == ("ended", "used")

                # Cancel: the charger gets CancelReservation; twice is the same answer, sent once.
                other = (
                    await http.post(
                        "/reservations",
                        json={
                            "charger_id": "RES16",
                            "connector_id": 2,
                            "id_token": "ALICE",
                            "expires_at": expiry(),
                        },
                    )
                ).json()
                c1 = await http.post(f"/reservations/{other['id']}/cancel")
                c2 = await http.post(f"/reservations/{other['id']}/cancel")
                assert c1.status_code == c2.status_code == 200 and c1.json() == c2.json()
                assert (c1.json()["state"], c1.json()["end_reason"]) == ("ended", "cancelled")
                assert cp.cancelled == [other["id"]]
                # The cancelled reservation no longer refuses BOB on connector 2.
                ok = await cp.call(start16(2, "BOB"), suppress=False)
                assert ok.id_tag_info["status"] == "Accepted"

                # A connector reported Faulted loses its reservation at the charger (1.6 §5.13): so here too.
                faulty = (
                    await http.post(
                        "/reservations",
                        json={
                            "charger_id": "RES16",
                            "connector_id": 4,
                            "id_token": "ALICE",
                            "expires_at": expiry(),
                        },
                    )
                ).json()
                await cp.call(
                    call16.StatusNotification(connector_id=4, error_code="GroundFailure", status="Faulted"),
                    suppress=False,
                )
                removed = await wait_for(
                    lambda: http.get(f"/reservations/{faulty['id']}"), lambda r: r.json()["state"] == "ended"
                )
                assert removed.json()["end_reason"] == "removed"

                # The charger answers Occupied: 409 with its status, nothing active.
                occupied = await http.post(
                    "/reservations",
                    json={
                        "charger_id": "RES16",
                        "connector_id": 3,
                        "id_token": "ALICE",
                        "expires_at": expiry(),
                    },
                )
                assert occupied.status_code == 409
                assert occupied.json()["code"] == "reservation_refused"
                assert occupied.json()["details"]["status"] == "Occupied"
                active = (
                    await http.get("/reservations", params={"charger_id": "RES16", "state": "active"})
                ).json()
                assert active["items"] == []

                # 1.6 has no EVSEs.
                bad = await http.post(
                    "/reservations",
                    json={"charger_id": "RES16", "evse_id": 1, "id_token": "ALICE", "expires_at": expiry()},
                )
                assert bad.status_code == 422 and bad.json()["field"] == "evse_id"

            listed = (await http.get("/reservations", params={"charger_id": "RES16"})).json()
            return listed

    listed = asyncio.run(scenario())
    assert [(r["state"], r["end_reason"] or r["charger_status"]) for r in listed["items"]] == [
        ("refused", "Occupied"),
        ("ended", "removed"),
        ("ended", "cancelled"),
        ("ended", "used"),
    ]


def test_201_reserve_honour_status_update_and_refuse(node):
    async def scenario():
        async with api(node) as http:
            await http.post("/id-tokens", json={"id_token": "BOB", "status": "Accepted", "type": "ISO14443"})
            async with connected(Charger201, node, "RES201", "ocpp2.0.1") as cp:
                cp.reserved = {}
                r = await http.post(
                    "/reservations",
                    json={
                        "charger_id": "RES201",
                        "evse_id": 1,
                        "id_token": "GUEST",
                        "id_token_type": "ISO14443",
                        "group_id_token": "FLEET",
                        "expires_at": expiry(),
                    },
                )
                assert r.status_code == 201, r.text
                rid = r.json()["id"]
                sent = cp.reserved[rid]
                assert sent["evse_id"] == 1 and sent["id_token"] == {"id_token": "GUEST", "type": "ISO14443"}
                assert sent["group_id_token"] == {"id_token": "FLEET", "type": "Central"}

                # GUEST is not in the id-token table, but holds the reservation here: Accepted.
                guest = await cp.call(
                    call201.Authorize(id_token={"id_token": "GUEST", "type": "ISO14443"}), suppress=False
                )
                assert guest.id_token_info["status"] == "Accepted"
                # BOB may not start at the reserved EVSE.
                refused = await cp.call(started201("TX-BOB", 1, "BOB"), suppress=False)
                assert refused.id_token_info["status"] == "NotAtThisTime"

                # The charger says the reservation expired: it ends, and BOB may start there.
                await cp.call(
                    call201.ReservationStatusUpdate(reservation_id=rid, reservation_update_status="Expired"),
                    suppress=False,
                )
                ended = (await http.get(f"/reservations/{rid}")).json()
                assert (ended["state"], ended["end_reason"]) == ("ended", "expired")
                ok = await cp.call(started201("TX-BOB-2", 1, "BOB"), suppress=False)
                assert ok.id_token_info["status"] == "Accepted"

                # A second reservation, used by its token naming it.
                r2 = await http.post(
                    "/reservations",
                    json={
                        "charger_id": "RES201",
                        "evse_id": 2,
                        "id_token": "BOB",
                        "expires_at": expiry(),
                    },
                )
                assert r2.status_code == 201 and r2.json()["id_token_type"] == "ISO14443"  # from the table
                used = await cp.call(started201("TX-BOB-3", 2, "BOB", r2.json()["id"]), suppress=False)
                assert used.id_token_info["status"] == "Accepted"
                assert (await http.get(f"/reservations/{r2.json()['id']}")).json()["end_reason"] == "used"

                # The charger answers Faulted: 409, nothing active.
                faulted = await http.post(
                    "/reservations",
                    json={"charger_id": "RES201", "evse_id": 3, "id_token": "BOB", "expires_at": expiry()},
                )
                assert faulted.status_code == 409 and faulted.json()["details"]["status"] == "Faulted"
                active = (await http.get("/reservations", params={"state": "active"})).json()
                assert active["items"] == []

                # 2.0.1 reserves EVSEs, not connectors.
                bad = await http.post(
                    "/reservations",
                    json={
                        "charger_id": "RES201",
                        "connector_id": 1,
                        "id_token": "BOB",
                        "expires_at": expiry(),
                    },
                )
                assert bad.status_code == 422 and bad.json()["field"] == "connector_id"

    asyncio.run(scenario())


def test_reservation_errors_and_roles(node):
    async def scenario():
        viewer = operator_token(node, "viewer")
        body = {"charger_id": "NOBODY", "connector_id": 1, "id_token": "ALICE", "expires_at": expiry()}
        async with api(node, viewer) as http:
            forbidden = await http.post("/reservations", json=body)
            forbidden_cancel = await http.post("/reservations/1/cancel")
            listed = await http.get("/reservations")
        async with api(node) as http:
            unknown = await http.post("/reservations", json=body)
            past = await http.post("/reservations", json={**body, "expires_at": "2020-01-01T00:00:00Z"})
            await http.post("/chargers", json={"id": "OFFLINE1"})
            offline = await http.post("/reservations", json={**body, "charger_id": "OFFLINE1"})
        return forbidden, forbidden_cancel, listed, unknown, past, offline

    forbidden, forbidden_cancel, listed, unknown, past, offline = asyncio.run(scenario())
    assert forbidden.status_code == 403 and forbidden_cancel.status_code == 403
    assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}
    assert unknown.status_code == 404 and unknown.json()["field"] == "charger_id"
    assert past.status_code == 422 and past.json()["field"] == "expires_at"
    assert offline.status_code == 409 and offline.json()["code"] == "charger_offline"
