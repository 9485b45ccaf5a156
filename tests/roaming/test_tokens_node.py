"""The Tokens module against a real node: the in-repo eMSP registers with us and pushes its Tokens over real
HTTP (PUT, PATCH, GET; malformed ones refused with 2001 naming the field), and `ocpp`-package charge points (1.6
and 2.0.1, every call with suppress=False) present tokens:

- a pushed token is accepted from the whitelist without a call to the eMSP, an invalidated one is refused, and
  our own id-token table is asked first;
- a token nobody pushed goes to the eMSP's authorize endpoint: allowed (its authorization_reference recorded and
  bound to the transaction the token then starts, without a second call), refused, unknown, the eMSP down;
- each whitelist rule with the eMSP answering, refusing, down and too slow (the charger is still answered in
  time).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import ocpp_charge_point

from .emsp import COUNTRY, PARTY, Emsp
from .nodes import add_charger, add_site, db_rows, emsp_registers, ocpi_node, t2

T0 = "2026-03-04T05:00:00Z"
# The node's real-time authorization bound in these tests (a SLOW eMSP answers after 3 s).
TIMEOUT_S = 1.0


class Cp16(ChargePoint16):
    pass


class Cp201(ChargePoint201):
    pass


async def auth16(cp: Cp16, uid: str) -> str:
    reply = await cp.call(call16.Authorize(id_tag=uid), suppress=False)
    return str(reply.id_tag_info["status"])


async def auth201(cp: Cp201, uid: str, type_: str = "ISO14443") -> str:
    reply = await cp.call(call201.Authorize(id_token={"id_token": uid, "type": type_}), suppress=False)
    return str(reply.id_token_info["status"])


def site_with_chargers(node: Any) -> None:
    with node.api() as api:
        add_site(api, "S1")
        add_charger(api, "CP16", "S1", [t2(1), t2(2)])
        add_charger(api, "CP201", "S1", [t2(1)])


def test_pushed_tokens_are_stored_read_back_and_authorize_from_the_whitelist(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory)
    site_with_chargers(node)
    emsp_registers(node, emsp)
    url = emsp.cpo_endpoints["tokens"]
    assert url == f"{node.ocpi}/2.2.1/tokens"

    card = emsp.token("CARD-1", whitelist="ALWAYS", group_id="FLEET-7")
    created = emsp.push_token(card)
    assert created.status_code == 201 and created.json()["status_code"] == 1000, created.text
    assert "data" not in created.json()
    assert created.headers["OCPI-to-party-id"] == PARTY
    again = emsp.push_token(card)
    assert again.status_code == 200 and again.json()["status_code"] == 1000
    back = emsp.call("GET", f"{url}/NL/EMP/card-1", emsp.cpo_token or "")  # CiString: any case
    assert back.status_code == 200 and back.json()["data"] == card
    app = emsp.token("APP-1", "APP_USER", whitelist="ALWAYS")
    assert emsp.push_token(app).status_code == 201
    assert emsp.call("GET", f"{url}/NL/EMP/APP-1", emsp.cpo_token or "").status_code == 404  # RFID by default
    got = emsp.call("GET", f"{url}/NL/EMP/APP-1?type=APP_USER", emsp.cpo_token or "")
    assert got.json()["data"]["type"] == "APP_USER"

    # Refusals: the field at fault named with 2001; an owner that is not the caller's is 404; unknown is 2004.
    def refused(resp: Any, field: str) -> None:
        assert resp.status_code == 200 and resp.json()["status_code"] == 2001, resp.text
        assert resp.json()["data"]["field"] == field

    refused(emsp.push_token({**card, "uid": "OTHER"}, url_uid="CARD-1"), "uid")
    bad = dict(card)
    del bad["issuer"]
    refused(emsp.push_token(bad), "issuer")
    refused(emsp.push_token({**card, "whitelist": "SOMETIMES"}), "whitelist")
    refused(emsp.push_token({"uid": "CARD-1", "valid": False}, method="PATCH"), "last_updated")
    refused(emsp.push_token({"uid": "CARD-1", "valid": "no", "last_updated": T0}, method="PATCH"), "valid")
    refused(emsp.push_token(card, url_type="APP_USER"), "type")
    foreign = emsp.call("PUT", f"{url}/DE/XYZ/CARD-1", emsp.cpo_token or "", json=card)
    assert foreign.status_code == 404
    unknown = emsp.push_token({"uid": "NOPE", "valid": False, "last_updated": T0}, method="PATCH")
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 2004
    assert emsp.call("PUT", f"{url}/NL/EMP/X", "not-a-token", json=card).status_code == 401

    # Our own table first: a token we hold as Blocked stays Blocked, whatever the eMSP pushed.
    emsp.push_token(emsp.token("OURS-1", whitelist="ALWAYS"))
    with node.api() as api:
        assert api.post("/id-tokens", json={"id_token": "OURS-1", "status": "Blocked"}).status_code == 201

    async def scenario() -> None:
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            assert await auth16(cp, "CARD-1") == "Accepted"
            reply = await cp.call(call16.Authorize(id_tag="card-1"), suppress=False)
            assert reply.id_tag_info == {"status": "Accepted", "parent_id_tag": "FLEET-7"}
            assert await auth16(cp, "OURS-1") == "Blocked"
            started = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=T0),
                suppress=False,
            )
            assert started.id_tag_info["status"] == "Accepted"
        async with ocpp_charge_point(Cp201, node.ocpp_url, "CP201", "ocpp2.0.1", boot=True) as cp2:
            assert await auth201(cp2, "CARD-1") == "Accepted"
            assert await auth201(cp2, "APP-1", "Central") == "Accepted"
            # Invalidated by PATCH: refused from the whitelist at a charger it was not let in at yet.
            invalidate = {"uid": "APP-1", "type": "APP_USER", "valid": False, "last_updated": T0}
            patched = emsp.push_token(invalidate, "PATCH")
            assert patched.status_code == 200 and patched.json()["status_code"] == 1000, patched.text
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            assert await auth16(cp, "APP-1") == "Invalid"
            assert await auth16(cp, "NOBODY") == "Invalid"  # the eMSP does not know it either (404)

    asyncio.run(scenario())
    assert [r.path for r in emsp.authorize_requests()] == ["/emsp/2.2.1/tokens/NOBODY/authorize?type=RFID"]
    stored = emsp.call("GET", f"{url}/NL/EMP/APP-1?type=APP_USER", emsp.cpo_token or "").json()["data"]
    assert stored["valid"] is False and stored["whitelist"] == "ALWAYS"
    # The whitelisted start is recorded with its eMSP, bound to its transaction.
    rows = db_rows(
        node, "SELECT * FROM ocpi_authorizations WHERE uid = 'CARD-1' AND transaction_id IS NOT NULL"
    )
    assert len(rows) == 1 and rows[0]["auth_method"] == "WHITELIST" and rows[0]["charger_id"] == "CP16"
    assert (rows[0]["country_code"], rows[0]["party_id"]) == (COUNTRY, PARTY)


def test_unknown_tokens_are_authorized_in_real_time_at_the_emsp(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory, "--ocpi-authorize-timeout", str(TIMEOUT_S))
    site_with_chargers(node)
    emsp_registers(node, emsp)
    emsp.answers.update(
        {"RT-OK": "ALLOWED", "RT-BLOCKED": "BLOCKED", "RT-DOWN": "DOWN", "RT-CREDIT": "NO_CREDIT"}
    )
    emsp.references["RT-OK"] = "REF-777"
    emsp.slow_s = 3.0

    async def scenario() -> None:
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            assert await auth16(cp, "RT-OK") == "Accepted"
            # The start that follows is let in by the same authorization: no second call.
            started = await cp.call(
                call16.StartTransaction(connector_id=2, id_tag="RT-OK", meter_start=0, timestamp=T0),
                suppress=False,
            )
            assert started.id_tag_info["status"] == "Accepted"
            assert await auth16(cp, "RT-BLOCKED") == "Blocked"
            assert await auth16(cp, "RT-UNKNOWN") == "Invalid"
            assert await auth16(cp, "RT-DOWN") == "Invalid"  # nobody vouches for it
            assert await auth16(cp, "RT-CREDIT") == "Invalid"  # 1.6 has no NoCredit
            return started.transaction_id

    tx_id = asyncio.run(scenario())
    asked = emsp.authorize_requests("RT-OK")
    assert len(asked) == 1
    assert asked[0].path == "/emsp/2.2.1/tokens/RT-OK/authorize?type=RFID"
    assert asked[0].body == {"location_id": "S1", "evse_uids": ["CP16-1", "CP16-2"]}
    assert asked[0].headers["ocpi-to-party-id"] == PARTY and asked[0].headers["ocpi-from-party-id"] == "AMP"

    def bound() -> list[dict[str, Any]]:
        return db_rows(node, "SELECT * FROM ocpi_authorizations WHERE transaction_id = ?", tx_id)

    deadline = time.monotonic() + 5
    while not bound() and time.monotonic() < deadline:
        time.sleep(0.1)
    row = bound()[0]
    assert row["uid"] == "RT-OK" and row["authorization_reference"] == "REF-777"
    assert row["auth_method"] == "AUTH_REQUEST" and row["location_id"] == "S1"
    # The eMSP's answer carried its Token: kept, so its whitelist (ALLOWED, valid) answers the next time.
    kept = emsp.call("GET", f"{emsp.cpo_endpoints['tokens']}/NL/EMP/RT-OK", emsp.cpo_token or "")
    assert kept.json()["data"]["uid"] == "RT-OK"
    with node.api() as api:
        events = api.get("/events", params={"type": ["ocpi.token.authorized"]}).json()["items"]
    by_uid = {e["uid"]: e for e in events}
    assert (
        by_uid["RT-OK"]["method"] == "AUTH_REQUEST"
        and by_uid["RT-OK"]["authorization_reference"] == "REF-777"
    )
    assert by_uid["RT-BLOCKED"]["status"] == "Blocked" and by_uid["RT-DOWN"]["allowed"] is False


def test_each_whitelist_rule_with_the_emsp_answering_refusing_down_and_slow(node_factory, emsp: Emsp):
    node = ocpi_node(node_factory, "--ocpi-authorize-timeout", str(TIMEOUT_S))
    site_with_chargers(node)
    emsp_registers(node, emsp)
    emsp.slow_s = 3.0
    # uid: (whitelist, valid, what the eMSP answers, what the 1.6 charger is told, whether the eMSP is asked)
    cases: dict[str, tuple[str, bool, str, str, bool]] = {
        "ALWAYS-DOWN": ("ALWAYS", True, "DOWN", "Accepted", False),
        "ALWAYS-INVALID": ("ALWAYS", False, "ALLOWED", "Invalid", False),
        "ALLOWED-DOWN": ("ALLOWED", True, "DOWN", "Accepted", False),
        "ALLOWED-INVALID-OK": ("ALLOWED", False, "ALLOWED", "Accepted", True),
        "ALLOWED-INVALID-DOWN": ("ALLOWED", False, "DOWN", "Invalid", True),
        "OFFLINE-OK": ("ALLOWED_OFFLINE", True, "ALLOWED", "Accepted", True),
        "OFFLINE-BLOCKED": ("ALLOWED_OFFLINE", True, "BLOCKED", "Blocked", True),
        "OFFLINE-DOWN": ("ALLOWED_OFFLINE", True, "DOWN", "Accepted", True),
        "OFFLINE-SLOW": ("ALLOWED_OFFLINE", True, "SLOW", "Accepted", True),
        "OFFLINE-DOWN-INVALID": ("ALLOWED_OFFLINE", False, "DOWN", "Invalid", True),
        "NEVER-OK": ("NEVER", True, "ALLOWED", "Accepted", True),
        "NEVER-EXPIRED": ("NEVER", True, "EXPIRED", "Expired", True),
        "NEVER-DOWN": ("NEVER", True, "DOWN", "Invalid", True),
        "NEVER-SLOW": ("NEVER", True, "SLOW", "Invalid", True),
        "NEVER-UNKNOWN": ("NEVER", True, "UNKNOWN", "Invalid", True),
    }
    for uid, (whitelist, valid, answer, _, _) in cases.items():
        assert emsp.push_token(emsp.token(uid, whitelist=whitelist, valid=valid)).status_code == 201
        emsp.answers[uid] = answer
    emsp.answers["NEVER-NOT-HERE"] = "NOT_ALLOWED"
    emsp.push_token(emsp.token("NEVER-NOT-HERE", whitelist="NEVER"))
    emsp.answers["NEVER-CREDIT"] = "NO_CREDIT"
    emsp.push_token(emsp.token("NEVER-CREDIT", whitelist="NEVER"))
    told: dict[str, str] = {}
    waited: dict[str, float] = {}

    async def scenario() -> None:
        async with ocpp_charge_point(Cp16, node.ocpp_url, "CP16", "ocpp1.6", boot=True) as cp:
            for uid in cases:
                t0 = time.monotonic()
                told[uid] = await auth16(cp, uid)
                waited[uid] = time.monotonic() - t0
        async with ocpp_charge_point(Cp201, node.ocpp_url, "CP201", "ocpp2.0.1", boot=True) as cp2:
            told["NEVER-NOT-HERE"] = await auth201(cp2, "NEVER-NOT-HERE")
            told["NEVER-CREDIT"] = await auth201(cp2, "NEVER-CREDIT")

    asyncio.run(scenario())
    for uid, (_, _, _, status, asks) in cases.items():
        assert told[uid] == status, (uid, told[uid])
        assert bool(emsp.authorize_requests(uid)) == asks, uid
    assert told["NEVER-NOT-HERE"] == "NotAtThisLocation" and told["NEVER-CREDIT"] == "NoCredit"
    # Too slow an eMSP is given up on at the bound: the charger is answered well within its own wait.
    assert TIMEOUT_S <= waited["NEVER-SLOW"] < TIMEOUT_S + 1.5
    assert waited["OFFLINE-SLOW"] < TIMEOUT_S + 1.5
