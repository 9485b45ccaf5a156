"""OCPI 2.2.1 against a real node (`ampgate serve` with --ocpi-*, its SQLite store, real sockets), driven by the
in-repo eMSP (tests/roaming/emsp.py) over real HTTP, with `ocpp`-package charge points (1.6 and 2.0.1, every call
with suppress=False) changing connector statuses.

- The eMSP registers with the registration token (TOKEN_A → B → C), the 401 and 405 cases of the transport
  rules, 2001 naming the field of a malformed credentials object, updating (PUT) and unregistering (DELETE).
- The eMSP pulls Locations page by page and checks X-Total-Count, X-Limit and Link; one Location, EVSE, Connector.
- We register with the eMSP (admin verb), then a StatusNotification becomes a PATCH at the eMSP within seconds
  with the mapped status, a charger going offline becomes UNKNOWN, and a burst of status changes reaches a slow
  eMSP as a few coalesced pushes ending on the last status.
- Assigning a tariff (site, default; a charger's own wins) becomes a PATCH of each connector it applies to with
  the new `tariff_ids`, and the Location the eMSP GETs names it; removing it clears them.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import httpx
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import ocpp_charge_point

from .emsp import COUNTRY, PARTY, Emsp, token_header
from .nodes import add_charger, add_site, get, ocpi_node, t2

# A push reaches the eMSP within this long of the StatusNotification that caused it ("within seconds").
PUSH_WITHIN_S = 5.0


# -- they register with us ------------------------------------------------------------------------------------


def test_emsp_registers_with_the_registration_token_and_the_transport_rules_hold(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    with node.api() as api:
        created = api.post(
            "/ocpi/parties", json={"country_code": "NL", "party_id": "EMP", "name": "Test eMSP"}
        )
        assert created.status_code == 201, created.text
        party = created.json()
        assert party["versions_url"] == f"{node.ocpi}/versions" and party["state"] == "pending"
        assert created.headers["Location"] == f"/api/v1/ocpi/parties/{party['id']}"
        other = api.post("/ocpi/parties", json={"country_code": "DE", "party_id": "XYZ"}).json()
        assert api.post("/ocpi/parties", json={"country_code": "nl", "party_id": "emp"}).json()["code"] == (
            "party_exists"
        )
    token_a = party["token_a"]
    versions_url = party["versions_url"]

    # No header, an unknown token: 401 with the envelope; the registration token is good for versions only.
    no_header = httpx.get(versions_url)
    assert no_header.status_code == 401 and no_header.json()["status_code"] == 2000
    assert get(emsp, versions_url, "not-a-token").status_code == 401
    versions = get(
        emsp, versions_url, token_a, headers={"X-Request-ID": "req-1", "X-Correlation-ID": "cor-1"}
    )
    assert versions.status_code == 200 and versions.json()["status_code"] == 1000
    assert versions.headers["X-Request-ID"] == "req-1" and versions.headers["X-Correlation-ID"] == "cor-1"
    assert versions.json()["data"] == [{"version": "2.2.1", "url": f"{node.ocpi}/2.2.1"}]
    assert versions.json()["timestamp"].endswith("Z")
    details = get(emsp, f"{node.ocpi}/2.2.1", token_a).json()["data"]
    assert {(e["identifier"], e["role"]) for e in details["endpoints"]} == {
        ("credentials", "SENDER"),
        ("locations", "SENDER"),
        ("tokens", "RECEIVER"),
        ("commands", "RECEIVER"),
        ("sessions", "SENDER"),
        ("cdrs", "SENDER"),
        ("tariffs", "SENDER"),
    }
    assert get(emsp, f"{node.ocpi}/2.2.1/locations", token_a).status_code == 401
    # PUT and DELETE before registering: 405.
    assert (
        emsp.call("PUT", f"{node.ocpi}/2.2.1/credentials", token_a, json=emsp.credentials("x")).status_code
        == 405
    )
    assert emsp.call("DELETE", f"{node.ocpi}/2.2.1/credentials", token_a).status_code == 405

    # A malformed credentials object: 2001 naming the field (HTTP 200: the request reached the OCPI layer);
    # a body that is not JSON: 400. Tried with the other party's registration token, which stays unused.
    creds_url = f"{node.ocpi}/2.2.1/credentials"
    no_url = {"token": "abc", "roles": emsp.credentials("abc")["roles"]}
    missing = emsp.call("POST", creds_url, other["token_a"], json=no_url)
    assert missing.status_code == 200 and missing.json()["status_code"] == 2001
    assert missing.json()["data"]["field"] == "url" and "url" in missing.json()["status_message"]
    bad_role = emsp.credentials("abc")
    bad_role["roles"][0]["party_id"] = "TOOLONG"
    r = emsp.call("POST", creds_url, other["token_a"], json=bad_role)
    assert r.json()["status_code"] == 2001 and r.json()["data"]["field"] == "roles[0].party_id"
    r = emsp.call("POST", creds_url, other["token_a"], json=emsp.credentials("abc"))
    assert r.json()["status_code"] == 2001 and r.json()["data"]["field"] == "roles"  # it is not DE*XYZ
    r = emsp.call(
        "POST", creds_url, other["token_a"], content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["status_code"] == 2001

    # The handshake: our POST with TOKEN_A and TOKEN_B; the node reads our versions with B; we get C.
    answer = emsp.register_with(versions_url, token_a)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status_code"] == 1000, body
    ours = body["data"]
    assert ours["url"] == versions_url and ours["roles"][0]["party_id"] == "AMP"
    assert ours["roles"][0]["country_code"] == "NL" and ours["roles"][0]["role"] == "CPO"
    token_c = ours["token"]
    called_back = [r for r in emsp.received if r.path == "/emsp/versions"]
    assert called_back and called_back[-1].headers["authorization"] == token_header(
        next(iter(emsp.tokens))
    ), "the node reads our versions with TOKEN_B, Base64-encoded"

    # TOKEN_A is gone; POST again with C is 405; C works where A did not, also sent without Base64.
    assert get(emsp, versions_url, token_a).status_code == 401
    again = emsp.call("POST", creds_url, token_c, json=emsp.credentials("zzz"))
    assert again.status_code == 405 and again.json()["status_code"] == 2000
    assert get(emsp, f"{node.ocpi}/2.2.1/locations", token_c).status_code == 200
    plain = httpx.get(versions_url, headers={"Authorization": f"Token {token_c}"})
    assert plain.status_code == 200
    assert get(emsp, creds_url, token_c).json()["data"]["token"] == token_c

    with node.api() as api:
        seen = api.get(f"/ocpi/parties/{party['id']}").json()
        assert seen["state"] == "registered" and seen["registered_by"] == "them"
        assert seen["their_versions_url"] == emsp.url and seen["version"] == "2.2.1"
        assert {e["identifier"] for e in seen["endpoints"]} == {
            "credentials",
            "locations",
            "tokens",
            "commands",
            "sessions",
            "cdrs",
            "tariffs",
        }
        assert seen["roles"] == [
            {"role": "EMSP", "country_code": "NL", "party_id": "EMP", "name": "Test eMSP"}
        ]
        assert seen["push"]["sent"] == 0 and "token_a" not in seen
        listed = api.get("/ocpi/parties", params={"limit": 1}).json()
        assert [p["id"] for p in listed["items"]] == [party["id"]] and listed["next_cursor"]
        types = [
            e["type"] for e in api.get("/events", params={"type": ["ocpi.party.registered"]}).json()["items"]
        ]
        assert types == ["ocpi.party.registered"]

    # PUT: new tokens both ways (the node reads our versions again with the new B); the old C stops working.
    emsp.tokens.add("new-token-b")
    updated = emsp.call("PUT", creds_url, token_c, json=emsp.credentials("new-token-b"))
    assert updated.status_code == 200 and updated.json()["status_code"] == 1000
    token_c2 = updated.json()["data"]["token"]
    assert token_c2 != token_c
    assert get(emsp, versions_url, token_c).status_code == 401
    assert get(emsp, versions_url, token_c2).status_code == 200

    # DELETE: unregistered, every token dead.
    gone = emsp.call("DELETE", creds_url, token_c2)
    assert gone.status_code == 200 and gone.json()["status_code"] == 1000
    assert get(emsp, versions_url, token_c2).status_code == 401
    with node.api() as api:
        assert api.get(f"/ocpi/parties/{party['id']}").json()["state"] == "unregistered"
        assert api.delete(f"/ocpi/parties/{party['id']}").status_code == 204
        assert api.get(f"/ocpi/parties/{party['id']}").status_code == 404


def test_emsp_pulls_locations_page_by_page(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    with node.api() as api:
        for site in ("S1", "S2", "S3"):
            add_site(api, site)
        add_site(api, "NOADDR", address=None)  # OCPI requires an address: not published
        add_charger(api, "CPA", "S1", [t2(1, emi3_id="nl*amp*e1*1"), t2(2)])
        add_charger(api, "CPB", "S2", [t2(1)])
        add_charger(api, "CPC", "S3", [t2(1)])
        add_charger(api, "CPD", "NOADDR", [t2(1)])
        bad = api.put("/chargers/CPB/connectors", json={"evses": [t2(1, emi3_id="NL-AMP-1")]})
        assert bad.status_code == 422 and bad.json()["field"] == "evses[0].emi3_id"
        taken = api.put("/chargers/CPB/connectors", json={"evses": [t2(1, emi3_id="NL*AMP*E1*1")]})
        assert taken.status_code == 409 and taken.json()["code"] == "emi3_id_taken"
        token_a = api.post("/ocpi/parties", json={"country_code": "NL", "party_id": "EMP"}).json()["token_a"]
    assert emsp.register_with(f"{node.ocpi}/versions", token_a).json()["status_code"] == 1000
    url = emsp.cpo_endpoints["locations"]
    assert url == f"{node.ocpi}/2.2.1/locations"

    # The book follows the API through the bus: wait until the three sites are published.
    deadline = time.monotonic() + 10
    while get(emsp, url).headers.get("X-Total-Count") != "3" and time.monotonic() < deadline:
        time.sleep(0.1)
    first = get(emsp, url, params={"limit": 2})
    assert first.status_code == 200 and first.json()["status_code"] == 1000
    assert first.headers["X-Total-Count"] == "3" and first.headers["X-Limit"] == "100"
    assert [loc["id"] for loc in first.json()["data"]] == ["S1", "S2"]
    assert first.headers["OCPI-from-party-id"] == "AMP" and first.headers["OCPI-to-party-id"] == PARTY
    assert first.headers["Link"] == f'<{url}?offset=2&limit=2>; rel="next"'
    nxt = get(emsp, first.headers["Link"][1:].split(">")[0])
    assert [loc["id"] for loc in nxt.json()["data"]] == ["S3"] and "Link" not in nxt.headers
    assert nxt.headers["X-Total-Count"] == "3"

    s1 = first.json()["data"][0]
    assert s1["country_code"] == "NL" and s1["party_id"] == "AMP" and s1["publish"] is True
    assert s1["address"] == "Stationsplein 1" and s1["city"] == "Utrecht" and s1["country"] == "NLD"
    assert s1["coordinates"] == {"latitude": "52.089400", "longitude": "5.110000"}
    assert s1["time_zone"] == "Europe/Amsterdam"
    assert [e["uid"] for e in s1["evses"]] == ["CPA-1", "CPA-2"]
    assert s1["evses"][0]["evse_id"] == "NL*AMP*E1*1" and s1["evses"][1]["evse_id"] == "NL*AMP*ECPA*2"
    assert {e["status"] for e in s1["evses"]} == {"UNKNOWN"}  # never connected
    conn = s1["evses"][0]["connectors"][0]
    assert conn["id"] == "1" and conn["standard"] == "IEC_62196_T2" and conn["max_electric_power"] == 22000
    assert s1["last_updated"] >= max(e["last_updated"] for e in s1["evses"])

    # date_from / date_to are on last_updated: a window in the future has nothing; one around now has all.
    future = get(emsp, url, params={"date_from": "2999-01-01T00:00:00Z"})
    assert future.headers["X-Total-Count"] == "0" and future.json()["data"] == []
    window = get(
        emsp, url, params={"date_from": "2020-01-01T00:00:00", "date_to": "2999-01-01T00:00:00Z", "limit": 1}
    )
    assert window.headers["X-Total-Count"] == "3"
    assert "date_from=2020-01-01T00%3A00%3A00" in window.headers["Link"]
    bad_limit = get(emsp, url, params={"limit": "many"})
    assert bad_limit.json()["status_code"] == 2001 and bad_limit.json()["data"]["field"] == "limit"
    bad_date = get(emsp, url, params={"date_to": "yesterday"})
    assert bad_date.json()["status_code"] == 2001 and bad_date.json()["data"]["field"] == "date_to"

    one = get(emsp, f"{url}/S1").json()["data"]
    assert one["id"] == "S1"
    evse = get(emsp, f"{url}/s1/cpa-2").json()["data"]  # CiString: any case
    assert evse["uid"] == "CPA-2" and evse["status"] == "UNKNOWN"
    connector = get(emsp, f"{url}/S1/CPA-2/2").json()["data"]
    assert connector["id"] == "2" and connector["power_type"] == "AC_3_PHASE"
    for missing in (f"{url}/NOADDR", f"{url}/S1/CPB-1", f"{url}/S1/CPA-1/9", f"{url}/NOPE"):
        r = get(emsp, missing)
        assert r.status_code == 404 and r.json()["status_code"] == 2003, missing


# -- we register with them; pushes -------------------------------------------------------------------------------


def register_node_with(node: Any, emsp: Emsp) -> dict[str, Any]:
    token_a = emsp.issue_registration_token()
    with node.api() as api:
        party = api.post("/ocpi/parties", json={"country_code": COUNTRY, "party_id": PARTY}).json()
        r = api.post(
            f"/ocpi/parties/{party['id']}/register", json={"versions_url": emsp.url, "token": token_a}
        )
        assert r.status_code == 200, r.text
        again = api.post(
            f"/ocpi/parties/{party['id']}/register", json={"versions_url": emsp.url, "token": "x"}
        )
        assert again.status_code == 200 and again.json()["state"] == "registered"  # idempotent
        return r.json()


class Cp16(ChargePoint16):
    pass


class Cp201(ChargePoint201):
    pass


def status_pushes(emsp: Emsp, uid: str) -> list[str]:
    return [r.body["status"] for r in emsp.pushes("PATCH", f"/{uid}")]


def test_we_register_with_the_emsp_and_status_changes_are_pushed(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    with node.api() as api:
        add_site(api, "S1")
        add_charger(api, "CP16", "S1", [t2(1), t2(2)])
        add_charger(api, "CP201", "S1")  # undescribed: its EVSEs come from its statuses
    party = register_node_with(node, emsp)
    assert party["registered_by"] == "us" and party["their_versions_url"] == emsp.url
    post = next(r for r in emsp.received if r.method == "POST")
    assert post.body["url"] == f"{node.ocpi}/versions" and post.body["roles"][0]["role"] == "CPO"
    # The node's token works at once (the eMSP may read our versions while it handles the POST).
    assert get(emsp, f"{node.ocpi}/versions", post.body["token"]).status_code == 200
    emsp.cpo_token = post.body["token"]

    async def scenario() -> None:
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            await cp.call(
                call16.StatusNotification(connector_id=1, error_code="NoError", status="Charging"),
                suppress=False,
            )
            await asyncio.to_thread(
                emsp.wait_for, lambda: "CHARGING" in status_pushes(emsp, "CP16-1"), PUSH_WITHIN_S
            )
            await cp.call(
                call16.StatusNotification(connector_id=2, error_code="NoError", status="Reserved"),
                suppress=False,
            )
            await asyncio.to_thread(
                emsp.wait_for, lambda: "RESERVED" in status_pushes(emsp, "CP16-2"), PUSH_WITHIN_S
            )
            async with ocpp_charge_point(Cp201, node.ocpp_url, "CP201", "ocpp2.0.1", boot=True) as cp2:
                for status in ("Available", "Faulted"):
                    await cp2.call(
                        call201.StatusNotification(
                            timestamp="2026-11-30T08:00:00Z",
                            connector_status=status,
                            evse_id=1,
                            connector_id=1,
                        ),
                        suppress=False,
                    )
                    await asyncio.sleep(0.3)
                await asyncio.to_thread(
                    emsp.wait_for, lambda: "OUTOFORDER" in status_pushes(emsp, "CP201-1"), PUSH_WITHIN_S
                )
        # Both chargers gone: their EVSEs are UNKNOWN.
        await asyncio.to_thread(
            emsp.wait_for,
            lambda: all(status_pushes(emsp, u)[-1:] == ["UNKNOWN"] for u in ("CP16-1", "CP16-2", "CP201-1")),
            PUSH_WITHIN_S,
        )

    t0 = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - t0 < 30
    assert status_pushes(emsp, "CP16-1")[-2:] == ["CHARGING", "UNKNOWN"]
    assert status_pushes(emsp, "CP16-2")[-2:] == ["RESERVED", "UNKNOWN"]
    assert status_pushes(emsp, "CP201-1")[-2:] == ["OUTOFORDER", "UNKNOWN"]
    # The 2.0.1 charger's EVSE was new to the eMSP: the Location came whole by PUT first.
    put = emsp.pushes("PUT", "/S1")
    assert put and any(e["uid"] == "CP201-1" for e in put[-1].body["evses"])

    patch = emsp.pushes("PATCH", "/CP16-1")[0]
    assert patch.path == "/emsp/2.2.1/locations/NL/AMP/S1/CP16-1"
    assert patch.headers["authorization"] == token_header(next(iter(emsp.tokens)))
    assert patch.headers["x-request-id"] and patch.headers["x-correlation-id"]
    assert patch.headers["ocpi-from-country-code"] == "NL" and patch.headers["ocpi-from-party-id"] == "AMP"
    assert patch.headers["ocpi-to-country-code"] == COUNTRY and patch.headers["ocpi-to-party-id"] == PARTY
    assert set(patch.body) == {"status", "last_updated"} and patch.body["last_updated"].endswith("Z")
    assert base64.b64decode(patch.headers["authorization"].split()[1]).decode() in emsp.tokens

    # last_updated is carried up: the Location's is the latest of its EVSEs'.
    loc = get(emsp, f"{node.ocpi}/2.2.1/locations/S1").json()["data"]
    assert loc["last_updated"] == max(e["last_updated"] for e in loc["evses"])
    last = emsp.pushes("PATCH", "/CP201-1")[-1].body["last_updated"]
    assert loc["last_updated"] >= last
    with node.api() as api:
        push = api.get(f"/ocpi/parties/{party['id']}").json()["push"]
        assert push["sent"] >= 7 and push["failed"] == 0 and push["failing"] is False
        published = api.get("/chargers/CP201/connectors").json()
        assert published["evses"] == [] and published["published"][0]["uid"] == "CP201-1"
        assert published["published"][0]["status"] == "UNKNOWN"


def test_a_burst_of_status_changes_reaches_a_slow_emsp_coalesced(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    with node.api() as api:
        add_site(api, "S1")
        add_charger(api, "BURST", "S1", [t2(1)])
    register_node_with(node, emsp)
    emsp.delay_s = 0.3  # every push takes the eMSP 0.3 s
    changes = 40

    async def scenario() -> None:
        async with ocpp_charge_point(Cp16, node.ocpp_url, "BURST", "ocpp1.6", boot=True) as cp:
            for i in range(changes):
                status = "Charging" if i % 2 else "Available"
                await cp.call(
                    call16.StatusNotification(connector_id=1, error_code="NoError", status=status),
                    suppress=False,
                )
            await cp.call(
                call16.StatusNotification(connector_id=1, error_code="NoError", status="Unavailable"),
                suppress=False,
            )
            await asyncio.to_thread(
                emsp.wait_for, lambda: status_pushes(emsp, "BURST-1")[-1:] == ["INOPERATIVE"], PUSH_WITHIN_S
            )

    asyncio.run(scenario())
    pushed = status_pushes(emsp, "BURST-1")
    assert pushed[-1] == "INOPERATIVE"
    # 41 changes, each one a different status from the one before: a handful of pushes, the latest winning.
    assert len(pushed) <= 8, pushed


def test_ocpi_is_rate_limited_per_address_with_an_envelope(node_factory, emsp: Emsp):
    # A low limit, so that even a loaded box sends faster than it: 40 requests one after another.
    node = ocpi_node(node_factory, "--ocpi-rate-limit", "5")
    with httpx.Client(timeout=10) as http:
        answers = [http.get(f"{node.ocpi}/versions") for _ in range(40)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, [r.status_code for r in answers]
    assert {r.status_code for r in answers} <= {401, 429}  # no token: 401 until the limit
    assert limited[0].json()["status_code"] == 2000 and "ratelimit-limit" in limited[0].headers
    assert limited[0].headers["X-Request-ID"]


# -- tariffs on connectors -----------------------------------------------------------------------------------------


def tariff_patches(emsp: Emsp, suffix: str) -> list[Any]:
    """The connector PATCHes carrying tariff_ids the eMSP received at a URL ending in `suffix` (`/CPA-1/1`)."""
    return [r.body for r in emsp.pushes("PATCH", suffix) if "tariff_ids" in r.body]


def test_a_tariff_assigned_to_a_site_is_pushed_onto_its_connectors_and_in_the_location(
    node_factory, emsp: Emsp
):
    node = ocpi_node(node_factory)
    plain = {"currency": "EUR", "elements": [{"price_components": [{"type": "ENERGY", "price": 0.30}]}]}
    with node.api() as api:
        add_site(api, "S1")
        add_charger(api, "CPA", "S1", [t2(1), t2(2)])
        add_charger(api, "CPB", "S1", [t2(1)])
        for tariff_id in ("SITE", "OWN", "DEF"):
            assert api.post("/tariffs", json={"id": tariff_id, **plain}).status_code == 201
        assert api.put("/chargers/CPB/tariff", json={"tariff_id": "OWN"}).status_code == 200
    register_node_with(node, emsp)
    emsp.cpo_token = next(r for r in emsp.received if r.method == "POST").body["token"]
    url = f"{node.ocpi}/2.2.1/locations/S1"

    def connectors() -> dict[str, Any]:
        loc = get(emsp, url).json()["data"]
        return {f"{e['uid']}/{c['id']}": c for e in loc["evses"] for c in e["connectors"]}

    assert emsp.wait_for(lambda: get(emsp, url).status_code == 200)
    before = connectors()
    assert "tariff_ids" not in before["CPA-1/1"] and before["CPB-1/1"]["tariff_ids"] == ["OWN"]

    with node.api() as api:
        assert api.put("/sites/S1/tariff", json={"tariff_id": "SITE"}).status_code == 200
    assert emsp.wait_for(
        lambda: tariff_patches(emsp, "/CPA-1/1") and tariff_patches(emsp, "/CPA-2/2"), PUSH_WITHIN_S
    )
    (patch,) = emsp.pushes("PATCH", "/CPA-1/1")
    assert patch.path == "/emsp/2.2.1/locations/NL/AMP/S1/CPA-1/1"
    assert patch.body["tariff_ids"] == ["SITE"] and set(patch.body) == {"tariff_ids", "last_updated"}
    assert patch.headers["ocpi-to-party-id"] == PARTY
    assert tariff_patches(emsp, "/CPB-1/1") == []  # its own tariff still decides

    # The Location the eMSP GETs names it, and the connector's last_updated is carried up.
    loc = get(emsp, url).json()["data"]
    now = connectors()
    assert now["CPA-1/1"]["tariff_ids"] == ["SITE"] and now["CPA-2/2"]["tariff_ids"] == ["SITE"]
    assert now["CPB-1/1"]["tariff_ids"] == ["OWN"]
    assert now["CPA-1/1"]["last_updated"] == patch.body["last_updated"]
    cpa1 = next(e for e in loc["evses"] if e["uid"] == "CPA-1")
    assert cpa1["last_updated"] >= patch.body["last_updated"] and loc["last_updated"] >= cpa1["last_updated"]
    assert get(emsp, f"{url}/CPA-2/2").json()["data"]["tariff_ids"] == ["SITE"]
    # Only tariffs the eMSP can fetch from our Tariffs module.
    listed = {t["id"] for t in get(emsp, f"{node.ocpi}/2.2.1/tariffs").json()["data"]}
    assert {t for c in now.values() for t in c.get("tariff_ids", [])} <= listed

    # The site's assignment removed: an empty list (the field would otherwise stay at the eMSP); then the default.
    with node.api() as api:
        assert api.put("/sites/S1/tariff", json={"tariff_id": None}).status_code == 200
    assert emsp.wait_for(lambda: tariff_patches(emsp, "/CPA-2/2")[-1]["tariff_ids"] == [], PUSH_WITHIN_S)
    assert "tariff_ids" not in connectors()["CPA-2/2"]
    with node.api() as api:
        assert api.put("/settings/default-tariff", json={"tariff_id": "DEF"}).status_code == 200
    assert emsp.wait_for(lambda: tariff_patches(emsp, "/CPA-1/1")[-1]["tariff_ids"] == ["DEF"], PUSH_WITHIN_S)
    now = connectors()
    assert [now[k].get("tariff_ids") for k in ("CPA-1/1", "CPA-2/2", "CPB-1/1")] == [
        ["DEF"],
        ["DEF"],
        ["OWN"],
    ]
    assert tariff_patches(emsp, "/CPB-1/1") == []
