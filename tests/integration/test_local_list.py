"""The local authorization list, built from the id-token table and sent to chargers written with the `ocpp`
package's ChargePoint classes, in both protocol versions."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point


class Charger16(ChargePoint16):
    received: ClassVar[
        list
    ] = []  # what the charger got, kept on the class: the test reads it after the session

    @on(Action16.send_local_list)
    async def on_send_local_list(self, list_version, update_type, local_authorization_list=None, **_):
        self.received.append((list_version, update_type, local_authorization_list or []))
        return result16.SendLocalList(status="Accepted")


class Charger201(ChargePoint201):
    received: ClassVar[
        list
    ] = []  # what the charger got, kept on the class: the test reads it after the session

    @on(Action201.send_local_list)
    async def on_send_local_list(self, version_number, update_type, local_authorization_list=None, **_):
        self.received.append((version_number, update_type, local_authorization_list or []))
        return result201.SendLocalList(status="Accepted")


TOKENS = [
    {"id_token": "TAG-OK", "status": "Accepted", "type": "ISO14443", "group": "FLEET"},
    {"id_token": "TAG-BLOCKED", "status": "Blocked"},
    # Too long for a 1.6 idTag (20): skipped there, never truncated; fits 2.0.1 (36).
    {"id_token": "A-VERY-LONG-TOKEN-OF-30-CHARS!", "status": "Accepted"},
]


def test_local_list_from_the_token_table_reaches_16_and_201_chargers(node):
    with node.api() as api:
        for t in TOKENS:
            assert api.post("/id-tokens", json=t).status_code == 201

    async def session(cls, charger_id, protocol):
        async with ocpp_charge_point(cls, node.ocpp_url, charger_id, protocol, boot=True):
            headers = {"Authorization": f"Bearer {node.admin_token}"}
            async with httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as api:
                return await api.post(f"/chargers/{charger_id}/local-list", json={"version": 7})

    r16 = asyncio.run(session(Charger16, "LL16", "ocpp1.6"))
    r201 = asyncio.run(session(Charger201, "LL201", "ocpp2.0.1"))
    assert r16.status_code == 200 and r16.json() == {
        "version": 7,
        "entries": 2,
        "skipped": 1,
        "status": "Accepted",
    }
    assert r201.status_code == 200 and r201.json()["entries"] == 3 and r201.json()["skipped"] == 0

    version, kind, entries = Charger16.received[-1]
    assert (version, kind) == (7, "Full")
    by_tag = {e["id_tag"]: e["id_tag_info"] for e in entries}
    assert by_tag == {
        "TAG-OK": {"status": "Accepted", "parent_id_tag": "FLEET"},
        "TAG-BLOCKED": {"status": "Blocked"},
    }
    version, kind, entries = Charger201.received[-1]
    assert (version, kind) == (7, "Full")
    by_token = {e["id_token"]["id_token"]: e for e in entries}
    assert by_token["TAG-OK"]["id_token"]["type"] == "ISO14443"
    assert by_token["TAG-OK"]["id_token_info"]["group_id_token"]["id_token"] == "FLEET"
    assert by_token["TAG-BLOCKED"]["id_token_info"]["status"] == "Blocked"
    assert "A-VERY-LONG-TOKEN-OF-30-CHARS!" in by_token


def test_local_list_for_an_offline_charger_is_409(node):
    with node.api() as api:
        assert api.post("/chargers", json={"id": "AWAY"}).status_code == 201
        r = api.post("/chargers/AWAY/local-list", json={})
    assert r.status_code == 409 and r.json()["code"] == "charger_offline"


class Limited16(ChargePoint16):
    """Holds at most 3 entries and takes 1 per SendLocalList, as its configuration says."""

    received: ClassVar[list] = []
    KEYS: ClassVar[dict] = {"SendLocalListMaxLength": "1", "LocalAuthListMaxLength": "3"}

    @on(Action16.get_configuration)
    async def on_get_configuration(self, key=None, **_):
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": True, "value": v} for k, v in self.KEYS.items()]
        )

    @on(Action16.send_local_list)
    async def on_send_local_list(self, list_version, update_type, local_authorization_list=None, **_):
        self.received.append((list_version, update_type, len(local_authorization_list or [])))
        return result16.SendLocalList(status="Accepted")


def test_local_list_follows_the_chargers_configured_limits(node):
    with node.api() as api:
        for t in TOKENS[:2]:
            assert api.post("/id-tokens", json=t).status_code == 201

    async def session():
        async with ocpp_charge_point(Limited16, node.ocpp_url, "LIM16", "ocpp1.6", boot=True):
            headers = {"Authorization": f"Bearer {node.admin_token}"}
            async with httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as api:
                assert (await api.post("/chargers/LIM16/device-model/refresh")).status_code == 200
                sent = await api.post("/chargers/LIM16/local-list", json={"version": 9})
                for t in ({"id_token": "T3", "status": "Accepted"}, {"id_token": "T4", "status": "Accepted"}):
                    assert (await api.post("/id-tokens", json=t)).status_code == 201
                too_long = await api.post("/chargers/LIM16/local-list", json={"version": 10})
                return sent, too_long

    sent, too_long = asyncio.run(session())
    assert sent.status_code == 200 and sent.json()["entries"] == 2
    assert Limited16.received == [(9, "Full", 1), (9, "Differential", 1)]
    assert too_long.status_code == 409 and too_long.json()["code"] == "local_list_too_long"
