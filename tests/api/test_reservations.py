"""/api/v1/reservations over the real service and repository, with a stand-in commander whose replies the
test scripts: create (201 + Location, or 409 with the charger's status and nothing active), the errors that name
their field, list and filters, cancel (idempotent), and the roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ampgate.errors import ChargerCallError, ChargerTimeoutError
from ampgate.events import ReservationCreated, ReservationEnded

from .conftest import Api, Scenario

RESERVATIONS = "/api/v1/reservations"


def soon(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def body16(**extra: Any) -> dict[str, Any]:
    return {"charger_id": "CP16", "connector_id": 1, "id_token": "ALICE", "expires_at": soon(), **extra}


def body201(**extra: Any) -> dict[str, Any]:
    return {
        "charger_id": "CP201",
        "evse_id": 1,
        "id_token": "ALICE",
        "id_token_type": "ISO14443",
        "expires_at": soon(),
        **extra,
    }


def online(a: Api) -> None:
    a.node.protocols.update({"CP16": "ocpp1.6", "CP201": "ocpp2.0.1"})
    for cp in ("CP16", "CP201"):
        a.node.replies[(cp, "ReserveNow")] = {"status": "Accepted"}
        a.node.replies[(cp, "CancelReservation")] = {"status": "Accepted"}


def events(a: Api) -> list[Any]:
    out = []
    while (e := a.node.events.receive_nowait()) is not None:
        out.append(e)
    return out


def test_create_16_sends_reserve_now_and_answers_201_with_location(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        await a.node.id_token_table.create("ALICE", status="Accepted", type=None, expiry=None, group="FLEET")
        r = await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))
        assert r.status_code == 201, r.text
        res = r.json()
        assert r.headers["location"] == f"{RESERVATIONS}/{res['id']}"
        assert res["state"] == "active" and res["charger_status"] == "Accepted"
        assert (res["connector_id"], res["evse_id"], res["group_id_token"]) == (1, None, "FLEET")
        ((cp, action, payload),) = a.node.calls
        assert (cp, action) == ("CP16", "ReserveNow")
        assert payload["reservationId"] == res["id"] and payload["connectorId"] == 1
        assert payload["idTag"] == "ALICE" and payload["parentIdTag"] == "FLEET"
        assert [h.id for h in a.node.reservation_book.holds("CP16")] == [res["id"]]
        (created,) = events(a)
        assert isinstance(created, ReservationCreated) and created.reservation_id == res["id"]
        got = await a.client.get(f"{RESERVATIONS}/{res['id']}", headers=a.auth("viewer"))
        assert got.status_code == 200 and got.json() == res

    api(scenario)


def test_create_201_sends_the_evse_token_type_and_group(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        r = await a.client.post(
            RESERVATIONS,
            json=body201(group_id_token="FLEET", connector_type="cType2"),
            headers=a.auth("operator"),
        )
        assert r.status_code == 201, r.text
        (_, _, payload) = a.node.calls[0]
        assert payload["id"] == r.json()["id"] and payload["evseId"] == 1
        assert payload["idToken"] == {"idToken": "ALICE", "type": "ISO14443"}
        assert payload["groupIdToken"] == {"idToken": "FLEET", "type": "Central"}
        assert payload["connectorType"] == "cType2"

    api(scenario)


@pytest.mark.parametrize("status", ["Occupied", "Faulted", "Unavailable", "Rejected"])
def test_a_refusal_is_409_with_the_chargers_status_and_nothing_active(api: Scenario, status: str) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        a.node.replies[("CP16", "ReserveNow")] = {"status": status}
        r = await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))
        assert r.status_code == 409
        err = r.json()
        assert err["code"] == "reservation_refused" and err["details"]["status"] == status
        kept = (
            await a.client.get(f"{RESERVATIONS}/{err['details']['reservation_id']}", headers=a.auth("viewer"))
        ).json()
        assert (kept["state"], kept["charger_status"]) == ("refused", status)
        assert a.node.reservation_book.holds("CP16") == () and events(a) == []
        active = await a.client.get(RESERVATIONS, params={"state": "active"}, headers=a.auth("viewer"))
        assert active.json() == {"items": [], "next_cursor": None}

    api(scenario)


def test_a_failed_call_keeps_the_error_as_outcome(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        a.node.replies[("CP16", "ReserveNow")] = ChargerCallError("no", ocpp_code="NotSupported")
        r = await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))
        assert r.status_code == 502 and r.json()["ocpp_code"] == "NotSupported"
        (row,) = (await a.client.get(RESERVATIONS, headers=a.auth("viewer"))).json()["items"]
        assert (row["state"], row["charger_status"]) == ("failed", "charger_error")
        a.node.replies[("CP16", "ReserveNow")] = ChargerTimeoutError("slow")
        r = await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))
        assert r.status_code == 504
        assert a.node.reservation_book.holds("CP16") == ()

    api(scenario)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body16(connector_id=None, evse_id=1), "evse_id"),
        (body16(connector_type="cType2"), "connector_type"),
        (body16(id_token_type="ISO14443"), "id_token_type"),
        (body16(id_token="A" * 21), "id_token"),
        (body16(group_id_token="G" * 21), "group_id_token"),
        (body201(evse_id=None, connector_id=1), "connector_id"),
        (body201(connector_type="Banana"), "connector_type"),
        (body201(id_token_type=None), "id_token_type"),  # no type given, none stored
        (body201(id_token_type="NoAuthorization"), "id_token_type"),
        (body16(expires_at="2020-01-01T00:00:00Z"), "expires_at"),
        (body16(expires_at="2099-01-01T00:00:00"), "expires_at"),  # no zone
        (body16(connector_id=-1), "connector_id"),
        (body201(evse_id=0), "evse_id"),
        (body16(id_token=""), "id_token"),
        (body16(colour="red"), "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_sends_nothing(
    api: Scenario, body: dict[str, Any], field: str
) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        r = await a.client.post(RESERVATIONS, json=body, headers=a.auth("operator"))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert a.node.calls == []
        assert (await a.client.get(RESERVATIONS, headers=a.auth("viewer"))).json()["items"] == []

    api(scenario)


def test_unknown_charger_is_404_on_charger_id_and_offline_is_409(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(RESERVATIONS, json=body16(charger_id="NOBODY"), headers=a.auth("operator"))
        assert r.status_code == 404 and r.json()["field"] == "charger_id"
        await a.node.chargers.register("CP16", None)
        r = await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))
        assert r.status_code == 409 and r.json()["code"] == "charger_offline"

    api(scenario)


def test_the_type_of_a_201_token_comes_from_the_id_token_table(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        await a.node.id_token_table.create("BOB", status="Accepted", type="eMAID", expiry=None, group=None)
        r = await a.client.post(
            RESERVATIONS, json=body201(id_token="BOB", id_token_type=None), headers=a.auth("operator")
        )
        assert r.status_code == 201 and r.json()["id_token_type"] == "eMAID"

    api(scenario)


def test_cancel_ends_it_and_is_idempotent(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        rid = (await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))).json()["id"]
        events(a)
        r = await a.client.post(f"{RESERVATIONS}/{rid}/cancel", headers=a.auth("operator"))
        assert r.status_code == 200
        assert (r.json()["state"], r.json()["end_reason"]) == ("ended", "cancelled")
        assert r.json()["ended_at"] is not None
        assert a.node.calls[-1] == ("CP16", "CancelReservation", {"reservationId": rid})
        (ended,) = events(a)
        assert isinstance(ended, ReservationEnded) and (ended.reservation_id, ended.reason) == (
            rid,
            "cancelled",
        )
        again = await a.client.post(f"{RESERVATIONS}/{rid}/cancel", headers=a.auth("operator"))
        assert again.status_code == 200 and again.json() == r.json()
        assert len(a.node.calls) == 2 and events(a) == []  # nothing sent, nothing published
        missing = await a.client.post(f"{RESERVATIONS}/999/cancel", headers=a.auth("operator"))
        assert missing.status_code == 404 and missing.json()["field"] == "id"

    api(scenario)


def test_cancel_that_the_charger_cannot_take_changes_nothing(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        rid = (await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("operator"))).json()["id"]
        a.node.replies[("CP16", "CancelReservation")] = ChargerTimeoutError("slow")
        r = await a.client.post(f"{RESERVATIONS}/{rid}/cancel", headers=a.auth("operator"))
        assert r.status_code == 504
        assert (await a.client.get(f"{RESERVATIONS}/{rid}", headers=a.auth("viewer"))).json()[
            "state"
        ] == "active"
        # The charger no longer has it (Rejected): it is over there, so it ends here too.
        a.node.replies[("CP16", "CancelReservation")] = {"status": "Rejected"}
        r = await a.client.post(f"{RESERVATIONS}/{rid}/cancel", headers=a.auth("operator"))
        assert r.status_code == 200 and r.json()["end_reason"] == "cancelled"

    api(scenario)


def test_list_filters_and_pages_newest_first(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        ids = []
        for body in (body16(), body201(), body16(connector_id=2)):
            ids.append(
                (await a.client.post(RESERVATIONS, json=body, headers=a.auth("operator"))).json()["id"]
            )
        await a.client.post(f"{RESERVATIONS}/{ids[0]}/cancel", headers=a.auth("operator"))
        page = (await a.client.get(RESERVATIONS, params={"limit": 2}, headers=a.auth("viewer"))).json()
        assert [r["id"] for r in page["items"]] == [ids[2], ids[1]] and page["next_cursor"] == str(ids[1])
        rest = await a.client.get(
            RESERVATIONS, params={"cursor": page["next_cursor"]}, headers=a.auth("viewer")
        )
        assert [r["id"] for r in rest.json()["items"]] == [ids[0]] and rest.json()["next_cursor"] is None
        cp16 = await a.client.get(RESERVATIONS, params={"charger_id": "CP16"}, headers=a.auth("viewer"))
        assert [r["id"] for r in cp16.json()["items"]] == [ids[2], ids[0]]
        active = await a.client.get(
            RESERVATIONS, params={"charger_id": "CP16", "state": "active"}, headers=a.auth("viewer")
        )
        assert [r["id"] for r in active.json()["items"]] == [ids[2]]
        bad = await a.client.get(RESERVATIONS, params={"state": "happy"}, headers=a.auth("viewer"))
        assert bad.status_code == 422 and bad.json()["field"] == "state"
        bad = await a.client.get(RESERVATIONS, params={"cursor": "x"}, headers=a.auth("viewer"))
        assert bad.status_code == 422 and bad.json()["field"] == "cursor"
        assert (await a.client.get(f"{RESERVATIONS}/999", headers=a.auth("viewer"))).status_code == 404

    api(scenario)


def test_a_viewer_cannot_create_or_cancel(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        online(a)
        r = await a.client.post(RESERVATIONS, json=body16(), headers=a.auth("viewer"))
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = await a.client.post(f"{RESERVATIONS}/1/cancel", headers=a.auth("viewer"))
        assert r.status_code == 403
        assert a.node.calls == []

    api(scenario)


@pytest.mark.parametrize("path", [RESERVATIONS, f"{RESERVATIONS}/1"])
def test_reading_needs_a_token(api: Scenario, path: str) -> None:
    async def scenario(a: Api) -> None:
        assert (await a.client.get(path)).status_code == 401

    api(scenario)


def test_every_route_states_its_role_in_the_openapi_description(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        schema = (await a.client.get("/api/v1/schema/openapi.json")).json()
        ops = {
            (path, method): op
            for path, item in schema["paths"].items()
            if path.startswith(RESERVATIONS)
            for method, op in item.items()
        }
        assert len(ops) == 4
        roles = {op["operationId"]: op["description"].split(".")[0] for op in ops.values()}
        assert roles == {
            "create_reservation": "Role: operator",
            "list_reservations": "Role: viewer",
            "get_reservation": "Role: viewer",
            "cancel_reservation": "Role: operator",
        }

    api(scenario)
