"""Sessions, CDRs and Tariffs against a real node: the in-repo eMSP registers with the registration token, a
tariff created and assigned over the operator API is pushed to it, it pushes a Token and sends START_SESSION,
which an `ocpp`-package charge point (2.0.1, then 1.6; every call with suppress=False) answers and meters. The eMSP
receives the Session PUT at the start, PATCHes with growing kwh and cost no more often than the node's
--ocpi-session-update-s, the final PATCH (COMPLETED, with every charging period), then the CDR, whose total
(VAT included) is the `totalCost` the 2.0.1 charger was told on Ended (1.6: the California Pricing FinalCost, and
the CDR in GET /api/v1/cdrs). Its first CDR POSTs are answered 500: the delivery stays pending with its attempts
counted and shown in the operator API, then goes on a retry. The GET sender interfaces list the eMSP's Sessions
and CDRs and our Tariffs, paginated. A node restarted with a CDR delivery pending delivers it exactly once."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

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

from .emsp import Emsp
from .nodes import add_charger, add_site, emsp_registers, get, ocpi_node, t2

ENERGY = "Energy.Active.Import.Register"
# 0.50 to start, 0.30/kWh and 1.20 an hour charging, 20 % VAT: the cost grows with the meter and the clock.
TARIFF = {
    "id": "FAST",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": 0.50, "vat": 20},
                {"type": "ENERGY", "price": 0.30, "vat": 20},
                {"type": "TIME", "price": 1.20, "vat": 20},
            ]
        }
    ],
}
WAIT_S = 15.0


def now() -> str:
    return datetime.now(UTC).isoformat()


def cli_token(node: Any, role: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", role, "--db", str(node.db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


class Cp201(ChargePoint201):
    starts: list[dict[str, Any]]

    @on(Action201.request_start_transaction)
    async def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **rest: Any) -> Any:
        self.starts.append({"id_token": id_token, "remote_start_id": remote_start_id, **rest})
        return result201.RequestStartTransaction(status="Accepted")

    @on(Action201.cost_updated)
    async def on_cost_updated(self, total_cost: float, transaction_id: str, **_: Any) -> Any:
        return result201.CostUpdated()

    @on(Action201.set_charging_profile)
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        return result201.SetChargingProfile(status="Accepted")


class Cp16(ChargePoint16):
    starts: list[dict[str, Any]]
    costs: list[dict[str, Any]]

    @on(Action16.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, **rest: Any) -> Any:
        self.starts.append({"id_tag": id_tag, **rest})
        return result16.RemoteStartTransaction(status="Accepted")

    @on(Action16.set_charging_profile)
    async def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        return result16.SetChargingProfile(status="Accepted")

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None) -> Any:
        self.costs.append({"message_id": message_id, "data": json.loads(data) if data else None})
        return result16.DataTransfer(status="Accepted")


async def wait(check: Any, what: str) -> Any:
    """Poll `check()` (blocking, in a thread) until truthy, for WAIT_S at most."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def api(node: Any, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    with node.api(token) as client:
        return client.request(method, path, **kw)


def setup(node: Any, emsp: Emsp, charger: str, mode: str) -> dict[str, Any]:
    with node.api() as client:
        add_site(client, "S1")
        add_charger(client, charger, "S1", [t2(1)])
        r = client.put(f"/chargers/{charger}/cost-display", json={"mode": mode})
        assert r.status_code == 200, r.text
    return emsp_registers(node, emsp)


def energy(wh: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": now(),
            "sampled_value": [{"value": wh, "measurand": ENERGY, "unit_of_measure": {"unit": "Wh"}}],
        }
    ]


def session_start(emsp: Emsp, uid: str, evse_uid: str, key: str) -> dict[str, Any]:
    token = emsp.token(uid, "APP_USER", whitelist="NEVER")
    assert emsp.push_token(token).status_code == 201
    return {
        "response_url": emsp.response_url(key),
        "token": token,
        "location_id": "S1",
        "evse_uid": evse_uid,
        "connector_id": "1",
        "authorization_reference": f"REF-{uid}",
    }


def test_201_session_pushes_the_cdr_equal_to_the_chargers_total_and_a_failed_delivery_retried(
    node_factory, emsp: Emsp
):
    node = ocpi_node(node_factory, "--ocpi-session-update-s", "1", "--ocpi-cdr-retry-s", "1")
    party = setup(node, emsp, "CP201", "ocpp201")
    out: dict[str, Any] = {}

    # Tariffs: created, assigned and replaced over the operator API; each version is PUT to the eMSP.
    assert api(node, "POST", "/tariffs", json={**TARIFF, "elements": [{"price_components": [
        {"type": "ENERGY", "price": 0.99}]}]}).status_code == 201  # fmt: skip
    assert api(node, "PUT", "/sites/S1/tariff", json={"tariff_id": "FAST"}).status_code == 200
    first = emsp.wait_for(lambda: emsp.tariffs.get("FAST"))
    assert first and first["elements"][0]["price_components"][0]["price"] == 0.99
    assert (first["country_code"], first["party_id"]) == ("NL", "AMP") and first["last_updated"].endswith("Z")
    assert api(node, "PUT", "/tariffs/FAST", json=TARIFF).status_code == 200
    pushed = emsp.wait_for(
        lambda: (emsp.tariffs.get("FAST") or {}).get("elements", [{}])[0].get("price_components", [{}])[0]
    )
    assert emsp.wait_for(lambda: len(emsp.tariff_pushes("FAST")) == 2), pushed
    assert emsp.tariffs["FAST"]["elements"][0]["price_components"][0] == {
        "type": "FLAT",
        "price": 0.5,
        "step_size": 1,
        "vat": 20,
    }

    async def scenario() -> None:
        async with ocpp_charge_point(Cp201, node.ocpp_url, "CP201", "ocpp2.0.1", boot=True) as cp:
            cp.starts = []
            await cp.call(
                call201.StatusNotification(
                    timestamp=now(), connector_status="Available", evse_id=1, connector_id=1
                ),
                suppress=False,
            )
            start = session_start(emsp, "APP-201", "CP201-1", "s1")
            answer = await asyncio.to_thread(emsp.command, "START_SESSION", start)
            assert answer.json()["data"]["result"] == "ACCEPTED", answer.text
            (sent,) = await wait(lambda: cp.starts, "RequestStartTransaction")
            started = await cp.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=now(),
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={
                        "transaction_id": "TX-1",
                        "remote_start_id": sent["remote_start_id"],
                        "charging_state": "Charging",
                    },
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "APP-201", "type": "Central"},
                    meter_value=energy(0),
                ),
                suppress=False,
            )
            assert started.id_token_info["status"] == "Accepted"
            await cp.call(
                call201.StatusNotification(
                    timestamp=now(), connector_status="Occupied", evse_id=1, connector_id=1
                ),
                suppress=False,
            )
            put = await wait(lambda: emsp.session_pushes(), "the Session PUT")
            out["put"] = put[0]
            for seq, wh in ((1, 2000), (2, 5000), (3, 8000)):
                await cp.call(
                    call201.TransactionEvent(
                        event_type="Updated",
                        timestamp=now(),
                        trigger_reason="MeterValuePeriodic",
                        seq_no=seq,
                        transaction_info={"transaction_id": "TX-1"},
                        evse={"id": 1, "connector_id": 1},
                        meter_value=energy(wh),
                    ),
                    suppress=False,
                )
                await asyncio.sleep(2.0)
            emsp.cdr_failures = 2  # the first two POSTs of the CDR are answered 500
            ended = await cp.call(
                call201.TransactionEvent(
                    event_type="Ended",
                    timestamp=now(),
                    trigger_reason="StopAuthorized",
                    seq_no=4,
                    transaction_info={"transaction_id": "TX-1", "stopped_reason": "Local"},
                    evse={"id": 1, "connector_id": 1},
                    meter_value=energy(10_000),
                ),
                suppress=False,
            )
            out["total_cost"] = ended.total_cost
            await cp.call(
                call201.StatusNotification(
                    timestamp=now(), connector_status="Available", evse_id=1, connector_id=1
                ),
                suppress=False,
            )
            sid = out["put"].body["id"]
            await wait(
                lambda: (emsp.sessions.get(sid) or {}).get("status") == "COMPLETED", "the final Session PATCH"
            )
            # The delivery: pending with its failed attempts, seen through the operator API, then delivered.
            pending = await wait(
                lambda: [
                    d
                    for d in api(node, "GET", "/ocpi/cdr-deliveries").json()["items"]
                    if d["attempts"] >= 1 and d["state"] == "pending"
                ],
                "a pending delivery with attempts",
            )
            out["pending"] = pending[0]
            await wait(lambda: emsp.cdrs, "the CDR")

    asyncio.run(scenario())

    # -- the Session -------------------------------------------------------------------------------------------
    put = out["put"]
    sid = put.body["id"]
    assert put.method == "PUT" and put.path == f"/emsp/2.2.1/sessions/NL/AMP/{sid}"
    assert put.headers["ocpi-to-party-id"] == "EMP" and put.headers["ocpi-from-party-id"] == "AMP"
    s = put.body
    assert s["status"] == "ACTIVE" and s["kwh"] == 0 and "charging_periods" not in s
    assert s["cdr_token"] == {
        "country_code": "NL",
        "party_id": "EMP",
        "uid": "APP-201",
        "type": "APP_USER",
        "contract_id": "NL-EMP-CAPP-201",
    }
    assert (s["auth_method"], s["authorization_reference"]) == ("COMMAND", "REF-APP-201")
    assert (s["location_id"], s["evse_uid"], s["connector_id"], s["currency"]) == (
        "S1",
        "CP201-1",
        "1",
        "EUR",
    )
    patches = [r for r in emsp.session_pushes(sid) if r.method == "PATCH"]
    costs = [r for r in patches if "kwh" in r.body or "total_cost" in r.body]
    kwhs = [r.body["kwh"] for r in costs if "kwh" in r.body]
    assert len(kwhs) >= 3 and kwhs == sorted(kwhs) and kwhs[-1] == 10.0  # typically 2, 5, 8, 10
    totals = [r.body["total_cost"]["incl_vat"] for r in costs if "total_cost" in r.body]
    assert totals == sorted(totals) and len(set(totals)) >= 3
    # At most one cost PATCH a second (--ocpi-session-update-s 1); the status change is not held back.
    gaps = [b.at - a.at for a, b in itertools.pairwise(costs) if b.body.get("status") != "COMPLETED"]
    assert all(g >= 0.9 for g in gaps), gaps
    final = patches[-1].body
    assert final["status"] == "COMPLETED" and final["end_date_time"].endswith("Z")
    held = emsp.sessions[sid]  # what the eMSP holds: the PUT with every PATCH applied
    assert held["total_cost"]["incl_vat"] == out["total_cost"] and held["kwh"] == 10.0
    assert held["status"] == "COMPLETED" and held["end_date_time"] == final["end_date_time"]
    periods = emsp.sessions[sid]["charging_periods"]
    assert periods and all(p["tariff_id"] == "FAST" for p in periods)
    assert sum(d["volume"] for p in periods for d in p["dimensions"] if d["type"] == "ENERGY") == 10.0
    assert all("charging_periods" not in r.body for r in patches[:-1]), "periods only once final"

    # -- the CDR: its total is what the charger was told ---------------------------------------------------------
    (cdr,) = emsp.cdrs
    assert out["total_cost"] is not None and out["total_cost"] > 0
    assert cdr["total_cost"]["incl_vat"] == out["total_cost"]
    assert (
        cdr["session_id"] == sid and cdr["cdr_token"]["uid"] == "APP-201" and cdr["auth_method"] == "COMMAND"
    )
    assert cdr["authorization_reference"] == "REF-APP-201" and cdr["total_energy"] == 10.0
    assert (
        cdr["cdr_location"]["evse_uid"] == "CP201-1" and cdr["cdr_location"]["address"] == "Stationsplein 1"
    )
    assert (
        cdr["tariffs"][0]["id"] == "FAST"
        and cdr["tariffs"][0]["elements"] == emsp.tariffs["FAST"]["elements"]
    )
    assert cdr["charging_periods"] == periods
    # Billing's own CDR carries the same token and authorization reference (the API, its CSV export).
    ours = api(node, "GET", f"/cdrs/{cdr['id']}").json()
    assert (ours["id_token"], ours["authorization_reference"]) == ("APP-201", "REF-APP-201")
    assert ours["total_cost"] == out["total_cost"]
    (row,) = csv.DictReader(io.StringIO(api(node, "GET", "/cdrs", headers={"Accept": "text/csv"}).text))
    assert (row["id"], row["authorization_reference"]) == (cdr["id"], "REF-APP-201")
    posts = emsp.cdr_posts()
    assert len(posts) == 3 and all(p.body == cdr for p in posts), "the same CDR every attempt"
    assert out["pending"]["last_error"] and "500" in out["pending"]["last_error"]
    deliveries = api(node, "GET", "/ocpi/cdr-deliveries", params={"state": "sent"}).json()["items"]
    (d,) = deliveries
    assert d["cdr_id"] == int(cdr["id"]) and d["attempts"] == 3 and d["party_ref"] == party["id"]
    assert d["location"] == f"{emsp.base}/2.2.1/cdrs/{cdr['id']}" and d["session_id"] == sid
    assert api(node, "GET", "/ocpi/cdr-deliveries", params={"state": "failed"}).json()["items"] == []
    assert api(node, "GET", "/ocpi/cdr-deliveries", params={"state": "bogus"}).status_code == 422
    assert api(node, "GET", "/ocpi/cdr-deliveries", params={"party_id": "XYZ"}).json()["items"] == []
    # Reads are a viewer's, a retry an admin's; a sent one is not sent again.
    viewer = cli_token(node, "viewer")
    operator = cli_token(node, "operator")
    assert api(node, "GET", f"/ocpi/cdr-deliveries/{d['id']}", viewer).json()["state"] == "sent"
    assert api(node, "POST", f"/ocpi/cdr-deliveries/{d['id']}/retry", operator).status_code == 403
    again = api(node, "POST", f"/ocpi/cdr-deliveries/{d['id']}/retry")
    assert again.status_code == 409 and again.json()["code"] == "already_delivered"
    events = api(node, "GET", "/events", params={"type": ["ocpi.cdr.delivery"]}).json()["items"]
    assert [(e["state"], e["cdr_id"]) for e in events] == [("sent", int(cdr["id"]))]

    # -- the Sender interfaces --------------------------------------------------------------------------------
    sessions = get(emsp, f"{node.ocpi}/2.2.1/sessions")
    assert sessions.status_code == 200 and sessions.headers["X-Total-Count"] == "1"
    assert sessions.json()["data"][0]["id"] == sid and sessions.json()["data"][0]["status"] == "COMPLETED"
    assert sessions.json()["data"][0]["charging_periods"] == periods
    cdrs = get(emsp, f"{node.ocpi}/2.2.1/cdrs")
    assert cdrs.json()["data"] == [cdr] and cdrs.headers["X-Limit"] == "100"
    assert (
        get(emsp, f"{node.ocpi}/2.2.1/cdrs", params={"date_from": "2999-01-01T00:00:00Z"}).json()["data"]
        == []
    )
    bad = get(emsp, f"{node.ocpi}/2.2.1/sessions", params={"offset": "-1"})
    assert bad.json()["status_code"] == 2001 and bad.json()["data"]["field"] == "offset"
    prefs = emsp.call(
        "PUT",
        f"{node.ocpi}/2.2.1/sessions/{sid}/charging_preferences",
        emsp.cpo_token or "",
        json={"profile_type": "FAST", "energy_need": 20},
    )
    assert prefs.status_code == 404 and prefs.json()["status_code"] == 2001
    missing = emsp.call(
        "PUT",
        f"{node.ocpi}/2.2.1/sessions/999999/charging_preferences",
        emsp.cpo_token or "",
        json={"profile_type": "FAST"},
    )
    assert missing.status_code == 404 and missing.json()["status_code"] == 2003

    # -- tariffs: GET, and a deleted one is DELETEd at the eMSP -------------------------------------------------
    assert api(node, "POST", "/tariffs", json={**TARIFF, "id": "TMP"}).status_code == 201
    assert emsp.wait_for(lambda: emsp.tariffs.get("TMP"))
    listed = get(emsp, f"{node.ocpi}/2.2.1/tariffs", params={"limit": "1"})
    assert listed.headers["X-Total-Count"] == "2" and [t["id"] for t in listed.json()["data"]] == ["FAST"]
    assert 'rel="next"' in listed.headers["Link"] and "offset=1" in listed.headers["Link"]
    assert api(node, "DELETE", "/tariffs/TMP").status_code == 204
    assert emsp.wait_for(lambda: "TMP" in emsp.tariffs and emsp.tariffs["TMP"] is None)
    assert [r.method for r in emsp.tariff_pushes("TMP")] == ["PUT", "DELETE"]


def test_16_session_cdr_equals_the_final_cost_and_a_pending_delivery_survives_a_restart(
    node_factory, emsp: Emsp
):
    node = ocpi_node(node_factory, "--ocpi-session-update-s", "1", "--ocpi-cdr-retry-s", "1")
    setup(node, emsp, "CP16", "california")
    plain = {"id": "KWH", "currency": "EUR", "elements": [{"price_components": [
        {"type": "FLAT", "price": 0.50, "vat": 20}, {"type": "ENERGY", "price": 0.30, "vat": 20}]}]}  # fmt: skip
    assert api(node, "POST", "/tariffs", json=plain).status_code == 201
    assert api(node, "PUT", "/chargers/CP16/tariff", json={"tariff_id": "KWH"}).status_code == 200
    emsp.cdr_failures = 1000  # the eMSP refuses every CDR until the node is restarted
    out: dict[str, Any] = {}

    async def scenario() -> None:
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            cp.starts, cp.costs = [], []
            start = session_start(emsp, "APP-16", "CP16-1", "s16")
            answer = await asyncio.to_thread(emsp.command, "START_SESSION", start)
            assert answer.json()["data"]["result"] == "ACCEPTED", answer.text
            await wait(lambda: cp.starts, "RemoteStartTransaction")
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="APP-16", meter_start=1000, timestamp=now()),
                suppress=False,
            )
            assert started.id_tag_info["status"] == "Accepted"
            tx = started.transaction_id
            await cp.call(
                call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"),
                suppress=False,
            )
            await wait(lambda: emsp.session_pushes(str(tx)), "the Session PUT")
            meter = [{"timestamp": now(), "sampled_value": [{"value": "4000", "measurand": ENERGY}]}]
            await cp.call(
                call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=meter), suppress=False
            )
            await cp.call(
                call16.StopTransaction(transaction_id=tx, meter_stop=6000, timestamp=now(), reason="Local"),
                suppress=False,
            )
            final = await wait(lambda: [c for c in cp.costs if c["message_id"] == "FinalCost"], "FinalCost")
            out["final"] = final[0]["data"]
            await cp.call(
                call16.StatusNotification(connector_id=1, error_code="NoError", status="Available"),
                suppress=False,
            )
            out["tx"] = tx
            await wait(lambda: len(emsp.cdr_posts()) >= 2, "two refused CDR POSTs")

    asyncio.run(scenario())
    sid = str(out["tx"])
    assert emsp.sessions[sid]["status"] == "COMPLETED" and emsp.sessions[sid]["kwh"] == 5.0
    (ours,) = api(node, "GET", "/cdrs").json()["items"]
    assert ours["authorization_reference"] == "REF-APP-16"
    (pending,) = api(node, "GET", "/ocpi/cdr-deliveries").json()["items"]
    assert pending["state"] == "pending" and pending["attempts"] >= 2 and pending["cdr_id"] == ours["id"]
    assert emsp.cdrs == []

    # The node stops with the delivery pending; the eMSP takes CDRs again; the restarted node delivers it once.
    node.stop()
    emsp.cdr_failures = 0
    again = ocpi_node(node_factory, "--ocpi-cdr-retry-s", "1", db=node.db)
    assert emsp.wait_for(lambda: emsp.cdrs, timeout=WAIT_S)
    time.sleep(2.5)  # a second delivery would come within this
    (cdr,) = emsp.cdrs
    assert cdr["id"] == str(ours["id"]) and cdr["session_id"] == sid
    # 5 kWh at 0.36 + 0.60: what the charger was told at the stop, what billing's CDR says, what the eMSP bills.
    assert cdr["total_cost"] == {"excl_vat": 2.0, "incl_vat": 2.4}
    assert out["final"]["cost"] == cdr["total_cost"]["incl_vat"] == ours["total_cost"]
    assert cdr["tariffs"][0]["id"] == "KWH" and cdr["auth_method"] == "COMMAND"
    (sent,) = api(again, "GET", "/ocpi/cdr-deliveries", node.admin_token).json()["items"]
    assert sent["state"] == "sent" and sent["attempts"] > pending["attempts"]
