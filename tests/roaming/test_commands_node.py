"""The Commands module against a real node: the in-repo eMSP sends commands over real HTTP, `ocpp`-package charge
points (1.6 and 2.0.1, every call with suppress=False) receive the OCPP calls they become and answer, and the
eMSP receives each CommandResult at its response_url.

- 1.6: START_SESSION → RemoteStartTransaction; the token is let in at the charger without asking the eMSP and the
  command's authorization_reference follows the transaction; STOP_SESSION of it (by the session id rule) →
  RemoteStopTransaction; RESERVE_NOW → ReserveNow with our own reservation id (and a refused one), CANCEL_RESERVATION
  → CancelReservation, a reservation an operator cancels → CANCELED_RESERVATION; the refusals answered at once
  (unknown session, a session that ended, an offline charger, another eMSP's token, an unknown reservation, an
  unknown command) and malformed commands (2001 naming the field, 2003 for an unknown Location or EVSE).
- 2.0.1: START_SESSION → RequestStartTransaction (Central idToken, the remoteStartId), UNLOCK_CONNECTOR →
  UnlockConnector {evseId, connectorId}, STOP_SESSION → RequestStopTransaction with the charger's transaction id.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
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
from .nodes import add_charger, add_site, db_rows, emsp_registers, ocpi_node, t2

T0 = "2026-03-04T05:00:00Z"
RESULT_WITHIN_S = 10.0


class Cp16(ChargePoint16):
    """Accepts remote starts and stops, reservations (Occupied on connector 2) and their cancels; remembers what it
    was sent."""

    sent: list[tuple[str, dict[str, Any]]]

    @on(Action16.remote_start_transaction)
    async def on_remote_start(self, id_tag: str, **rest: Any) -> Any:
        self.sent.append(("RemoteStartTransaction", {"id_tag": id_tag, **rest}))
        return result16.RemoteStartTransaction(status="Accepted")

    @on(Action16.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id: int) -> Any:
        self.sent.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        return result16.RemoteStopTransaction(status="Accepted")

    @on(Action16.reserve_now)
    async def on_reserve_now(self, connector_id: int, id_tag: str, reservation_id: int, **rest: Any) -> Any:
        self.sent.append(
            ("ReserveNow", {"connector_id": connector_id, "id_tag": id_tag, "id": reservation_id})
        )
        return result16.ReserveNow(status="Occupied" if connector_id == 2 else "Accepted")

    @on(Action16.cancel_reservation)
    async def on_cancel_reservation(self, reservation_id: int) -> Any:
        self.sent.append(("CancelReservation", {"id": reservation_id}))
        return result16.CancelReservation(status="Accepted")


class Cp201(ChargePoint201):
    """Accepts remote starts and stops and unlocks; remembers what it was sent."""

    sent: list[tuple[str, dict[str, Any]]]

    @on(Action201.request_start_transaction)
    async def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **rest: Any) -> Any:
        self.sent.append(
            ("RequestStartTransaction", {"id_token": id_token, "remote_start_id": remote_start_id, **rest})
        )
        return result201.RequestStartTransaction(status="Accepted")

    @on(Action201.request_stop_transaction)
    async def on_request_stop(self, transaction_id: str) -> Any:
        self.sent.append(("RequestStopTransaction", {"transaction_id": transaction_id}))
        return result201.RequestStopTransaction(status="Accepted")

    @on(Action201.unlock_connector)
    async def on_unlock(self, evse_id: int, connector_id: int) -> Any:
        self.sent.append(("UnlockConnector", {"evse_id": evse_id, "connector_id": connector_id}))
        return result201.UnlockConnector(status="Unlocked")


def later(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ocpi_of(resp: Any) -> tuple[int, str | None]:
    """(status_code, CommandResponse result) of a command's answer."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return body["status_code"], (body.get("data") or {}).get("result")


async def send(emsp: Emsp, name: str, body: dict[str, Any]) -> Any:
    return await asyncio.to_thread(emsp.command, name, body)


async def result_at(emsp: Emsp, key: str) -> dict[str, Any]:
    """The CommandResult the eMSP received at its response_url for `key`."""
    found = await asyncio.to_thread(emsp.wait_for, lambda: emsp.results(f"/{key}"), RESULT_WITHIN_S)
    assert found, f"no result at {key}"
    return dict(found[-1].body)


def site(node: Any) -> None:
    with node.api() as api:
        add_site(api, "S1")
        add_charger(api, "CP16", "S1", [t2(1), t2(2)])
        add_charger(api, "CP201", "S1", [t2(1)])


def test_16_start_stop_reserve_cancel_and_the_refusals(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    site(node)
    party = emsp_registers(node, emsp)
    app = emsp.token("APP-START-1", "APP_USER", whitelist="NEVER")
    emsp.answers["APP-START-1"] = "BLOCKED"  # were it asked, it would be refused: it must not be

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        # The charger is offline: refused at once.
        offline = await send(
            emsp,
            "START_SESSION",
            {
                "response_url": emsp.response_url("s0"),
                "token": app,
                "location_id": "S1",
                "evse_uid": "CP16-1",
            },
        )
        assert ocpi_of(offline) == (1000, "REJECTED")
        assert "not connected" in offline.json()["data"]["message"][0]["text"]
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            cp.sent = []
            start = await send(
                emsp,
                "START_SESSION",
                {
                    "response_url": emsp.response_url("s1"),
                    "token": app,
                    "location_id": "s1",
                    "evse_uid": "CP16-1",
                    "authorization_reference": "AUTH-REF-1",
                },
            )
            assert ocpi_of(start) == (1000, "ACCEPTED")
            assert (
                start.json()["data"]["timeout"] == 40
            )  # the OCPP call timeout (30 s) + the result's delivery
            assert await result_at(emsp, "s1") == {"result": "ACCEPTED"}
            assert cp.sent == [("RemoteStartTransaction", {"id_tag": "APP-START-1", "connector_id": 1})]
            # The charger authorizes and starts with the command's token: let in without asking the eMSP.
            auth = await cp.call(call16.Authorize(id_tag="APP-START-1"), suppress=False)
            assert auth.id_tag_info["status"] == "Accepted"
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="APP-START-1", meter_start=0, timestamp=T0),
                suppress=False,
            )
            assert started.id_tag_info["status"] == "Accepted"
            tx = started.transaction_id
            out["tx"] = tx

            # STOP_SESSION by the session id rule (our transaction id as text).
            unknown = await send(
                emsp, "STOP_SESSION", {"response_url": emsp.response_url("x"), "session_id": "999999"}
            )
            assert ocpi_of(unknown) == (1000, "UNKNOWN_SESSION")
            stop = await send(
                emsp, "STOP_SESSION", {"response_url": emsp.response_url("p1"), "session_id": str(tx)}
            )
            assert ocpi_of(stop) == (1000, "ACCEPTED")
            assert await result_at(emsp, "p1") == {"result": "ACCEPTED"}
            assert cp.sent[-1] == ("RemoteStopTransaction", {"transaction_id": tx})
            await cp.call(
                call16.StopTransaction(transaction_id=tx, meter_stop=1200, timestamp=T0), suppress=False
            )
            ended = await send(
                emsp, "STOP_SESSION", {"response_url": emsp.response_url("p2"), "session_id": str(tx)}
            )
            assert ocpi_of(ended) == (1000, "REJECTED")

            # RESERVE_NOW: the charger gets our reservation id, never the eMSP's.
            card = emsp.token("RES-CARD", whitelist="NEVER")
            emsp.answers["RES-CARD"] = "BLOCKED"
            reserve = {
                "response_url": emsp.response_url("r1"),
                "token": card,
                "expiry_date": later(30),
                "reservation_id": "R-1",
                "location_id": "S1",
                "evse_uid": "CP16-1",
                "authorization_reference": "RES-REF",
            }
            assert ocpi_of(await send(emsp, "RESERVE_NOW", reserve)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "r1") == {"result": "ACCEPTED"}
            kind, sent = cp.sent[-1]
            assert kind == "ReserveNow" and sent["connector_id"] == 1 and sent["id_tag"] == "RES-CARD"
            assert isinstance(sent["id"], int)
            out["reservation"] = sent["id"]
            auth = await cp.call(call16.Authorize(id_tag="RES-CARD"), suppress=False)
            assert auth.id_tag_info["status"] == "Accepted"  # the reserving token, not asked again
            cancel = {"response_url": emsp.response_url("c1"), "reservation_id": "r-1"}  # CiString
            assert ocpi_of(await send(emsp, "CANCEL_RESERVATION", cancel)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "c1") == {"result": "ACCEPTED"}
            assert cp.sent[-1] == ("CancelReservation", {"id": sent["id"]})
            missing = {"response_url": emsp.response_url("c2"), "reservation_id": "R-404"}
            assert ocpi_of(await send(emsp, "CANCEL_RESERVATION", missing)) == (1000, "REJECTED")
            # The charger refuses (connector 2 occupied).
            occupied = {
                **reserve,
                "response_url": emsp.response_url("r2"),
                "reservation_id": "R-2",
                "evse_uid": "CP16-2",
            }
            assert ocpi_of(await send(emsp, "RESERVE_NOW", occupied)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "r2") == {"result": "EVSE_OCCUPIED"}
            # An operator cancels a reservation an eMSP made: the eMSP is told at its RESERVE_NOW response_url.
            third = {**reserve, "response_url": emsp.response_url("r3"), "reservation_id": "R-3"}
            assert ocpi_of(await send(emsp, "RESERVE_NOW", third)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "r3") == {"result": "ACCEPTED"}
            ours = cp.sent[-1][1]["id"]

            def operator_cancels() -> int:
                with node.api() as api:
                    return int(api.post(f"/reservations/{ours}/cancel").status_code)

            assert await asyncio.to_thread(operator_cancels) == 200  # the charger answers meanwhile
            found = await asyncio.to_thread(
                emsp.wait_for, lambda: len(emsp.results("/r3")) == 2, RESULT_WITHIN_S
            )
            assert found and emsp.results("/r3")[-1].body == {"result": "CANCELED_RESERVATION"}

            # Refused at once: another eMSP's token; an unknown command.
            theirs = {**app, "country_code": "DE", "party_id": "XYZ"}
            other = await send(
                emsp,
                "START_SESSION",
                {"response_url": emsp.response_url("s2"), "token": theirs, "location_id": "S1"},
            )
            assert ocpi_of(other) == (1000, "REJECTED")
            assert ocpi_of(await send(emsp, "SELF_DESTRUCT", {})) == (1000, "NOT_SUPPORTED")
        return out

    out = asyncio.run(scenario())
    assert not emsp.authorize_requests(), "a command's token is not authorized again at that charger"
    row = db_rows(node, "SELECT * FROM ocpi_authorizations WHERE transaction_id = ?", out["tx"])[0]
    assert row["auth_method"] == "COMMAND" and row["command"] == "START_SESSION"
    assert row["authorization_reference"] == "AUTH-REF-1" and row["party_ref"] == party["id"]
    assert row["evse_uid"] == "CP16-1" and row["location_id"] == "s1"
    reserved = db_rows(node, "SELECT * FROM ocpi_authorizations WHERE reservation_id = 'R-1'")[0]
    assert (
        reserved["reservation_ref"] == out["reservation"] and reserved["authorization_reference"] == "RES-REF"
    )
    with node.api() as api:
        recorded = api.get("/chargers/CP16/commands").json()["items"]
        assert {"RemoteStartTransaction", "RemoteStopTransaction"} <= {c["action"] for c in recorded}
        finished = api.get("/events", params={"type": ["ocpi.command.finished"]}).json()["items"]
        assert {(e["command"], e["result"]) for e in finished} >= {
            ("START_SESSION", "ACCEPTED"),
            ("STOP_SESSION", "ACCEPTED"),
            ("RESERVE_NOW", "EVSE_OCCUPIED"),
            ("RESERVE_NOW", "CANCELED_RESERVATION"),
            ("CANCEL_RESERVATION", "ACCEPTED"),
        }
        assert all(e["delivered"] for e in finished)


def test_malformed_commands_name_the_field_and_unknown_places_are_2003(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    site(node)
    emsp_registers(node, emsp)
    app = emsp.token("APP-2", "APP_USER")
    good = {"response_url": emsp.response_url("m"), "token": app, "location_id": "S1", "evse_uid": "CP16-1"}

    def field_of(name: str, body: Any) -> str:
        resp = emsp.command(name, body)
        assert resp.status_code == 200 and resp.json()["status_code"] == 2001, resp.text
        return str(resp.json()["data"]["field"])

    assert field_of("START_SESSION", {k: v for k, v in good.items() if k != "token"}) == "token"
    assert (
        field_of("START_SESSION", {**good, "token": {k: v for k, v in app.items() if k != "uid"}})
        == "token.uid"
    )
    assert field_of("START_SESSION", {**good, "response_url": "not a url"}) == "response_url"
    assert field_of("START_SESSION", {**good, "token": {**app, "whitelist": "MAYBE"}}) == "token.whitelist"
    assert field_of("STOP_SESSION", {"response_url": emsp.response_url("m")}) == "session_id"
    assert field_of("RESERVE_NOW", {**good, "reservation_id": "R", "expiry_date": "soon"}) == "expiry_date"
    assert (
        field_of("UNLOCK_CONNECTOR", {"response_url": emsp.response_url("m"), "location_id": "S1"})
        == "evse_uid"
    )
    assert field_of("CANCEL_RESERVATION", {"response_url": emsp.response_url("m")}) == "reservation_id"
    not_json = emsp.call(
        "POST", f"{emsp.cpo_endpoints['commands']}/START_SESSION", emsp.cpo_token or "", content=b"{"
    )
    assert not_json.status_code == 400 and not_json.json()["status_code"] == 2001

    for body in (
        {**good, "location_id": "NOWHERE"},
        {**good, "evse_uid": "CP16-9"},
        {**good, "evse_uid": "CP16-1", "connector_id": "7"},
    ):
        resp = emsp.command("START_SESSION", body)
        assert ocpi_of(resp) == (2003, "REJECTED"), body
    unlock = {
        "response_url": emsp.response_url("u"),
        "location_id": "S1",
        "evse_uid": "CP16-1",
        "connector_id": "2",
    }
    assert ocpi_of(emsp.command("UNLOCK_CONNECTOR", unlock)) == (2003, "REJECTED")
    # A Location of two charge points needs an EVSE named.
    whole = emsp.command("START_SESSION", {k: v for k, v in good.items() if k != "evse_uid"})
    assert ocpi_of(whole) == (1000, "REJECTED") and "evse_uid" in whole.json()["data"]["message"][0]["text"]
    assert (
        emsp.call("POST", f"{emsp.cpo_endpoints['commands']}/START_SESSION", "bad", json=good).status_code
        == 401
    )
    assert not emsp.results()


def test_201_start_unlock_and_stop(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    site(node)
    emsp_registers(node, emsp)
    app = emsp.token("APP-201", "APP_USER", whitelist="NEVER", group_id="FAMILY")

    async def scenario() -> None:
        async with ocpp_charge_point(Cp201, node.ocpp_url, "CP201", "ocpp2.0.1", boot=True) as cp:
            cp.sent = []
            start = {
                "response_url": emsp.response_url("s1"),
                "token": app,
                "location_id": "S1",
                "evse_uid": "CP201-1",
                "connector_id": "1",
                "authorization_reference": "REF-201",
            }
            assert ocpi_of(await send(emsp, "START_SESSION", start)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "s1") == {"result": "ACCEPTED"}
            kind, sent = cp.sent[-1]
            assert kind == "RequestStartTransaction" and sent["evse_id"] == 1
            assert sent["id_token"] == {"id_token": "APP-201", "type": "Central"}
            assert sent["group_id_token"] == {"id_token": "FAMILY", "type": "Central"}
            event = await cp.call(
                call201.TransactionEvent(
                    event_type="Started",
                    timestamp=T0,
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={"transaction_id": "TX-201", "remote_start_id": sent["remote_start_id"]},
                    evse={"id": 1, "connector_id": 1},
                    id_token={"id_token": "APP-201", "type": "Central"},
                ),
                suppress=False,
            )
            assert event.id_token_info["status"] == "Accepted"

            unlock = {
                "response_url": emsp.response_url("u1"),
                "location_id": "S1",
                "evse_uid": "cp201-1",
                "connector_id": "1",
            }
            assert ocpi_of(await send(emsp, "UNLOCK_CONNECTOR", unlock)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "u1") == {"result": "ACCEPTED"}
            assert cp.sent[-1] == ("UnlockConnector", {"evse_id": 1, "connector_id": 1})

            rows = db_rows(node, "SELECT transaction_id, id FROM ocpi_authorizations WHERE uid = 'APP-201'")
            assert rows and rows[0]["id"] == sent["remote_start_id"]
            tx = await asyncio.to_thread(_wait_bound, node, "APP-201")
            stop = {"response_url": emsp.response_url("p1"), "session_id": str(tx)}
            assert ocpi_of(await send(emsp, "STOP_SESSION", stop)) == (1000, "ACCEPTED")
            assert await result_at(emsp, "p1") == {"result": "ACCEPTED"}
            assert cp.sent[-1] == ("RequestStopTransaction", {"transaction_id": "TX-201"})

    asyncio.run(scenario())
    assert not emsp.authorize_requests()
    row = db_rows(node, "SELECT * FROM ocpi_authorizations WHERE uid = 'APP-201'")[0]
    assert row["authorization_reference"] == "REF-201" and row["auth_method"] == "COMMAND"


def _wait_bound(node: Any, uid: str) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = db_rows(node, "SELECT transaction_id FROM ocpi_authorizations WHERE uid = ?", uid)
        if rows and rows[0]["transaction_id"] is not None:
            return int(rows[0]["transaction_id"])
        time.sleep(0.1)
    raise AssertionError(f"{uid}: no transaction bound")
