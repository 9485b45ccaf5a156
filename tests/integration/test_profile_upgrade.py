"""Raising a charger's security profile with one API call, on a real node serving ws and wss, with chargers
written with the `ocpp` package:

- 2.0.1: GetVariables (its NetworkConfigurationPriority) → SetNetworkProfile (the wss URL, profile 2) →
  SetVariables (the new slot first) → Reset OnIdle; the charger then reconnects over wss and the upgrade
  completes: its floor is raised, so plain ws is refused from then on.
- 1.6: ChangeConfiguration SecurityProfile answered RebootRequired → Reset Soft; the charger comes back on
  plain ws (its fallback): counted, and the upgrade fails as fell_back at its deadline, the floor untouched.
- What the node cannot accept is refused before anything is sent: 409s and 422s with their codes, 403 for an
  operator.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from tests.integration.ocpp_clients import ocpp_charge_point
from tests.integration.pki import Pki, tls_args

UPGRADES = "/chargers/{}/security-profile-upgrades"


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path)


class Station201(ChargePoint201):
    """Answers the upgrade's commands as a charging station that takes them, and notes what it was told."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.told: list[tuple[str, dict]] = []
        self.reset = asyncio.Event()

    @on("GetVariables")
    def get_variables(self, get_variable_data, **_):
        self.told.append(("GetVariables", {"data": get_variable_data}))
        item = get_variable_data[0]
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": "0",
                    "component": item["component"],
                    "variable": item["variable"],
                }
            ]
        )

    @on("SetNetworkProfile")
    def set_network_profile(self, configuration_slot, connection_data, **_):
        self.told.append(("SetNetworkProfile", {"slot": configuration_slot, "data": connection_data}))
        return result201.SetNetworkProfile(status="Accepted")

    @on("SetVariables")
    def set_variables(self, set_variable_data, **_):
        self.told.append(("SetVariables", {"data": set_variable_data}))
        item = set_variable_data[0]
        return result201.SetVariables(
            set_variable_result=[
                {"attribute_status": "Accepted", "component": item["component"], "variable": item["variable"]}
            ]
        )

    @on("Reset")
    def on_reset(self, type, **_):
        self.told.append(("Reset", {"type": type}))
        self.reset.set()
        return result201.Reset(status="Accepted")


class Point16(ChargePoint16):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.told: list[tuple[str, dict]] = []
        self.reset = asyncio.Event()

    @on("ChangeConfiguration")
    def change_configuration(self, key, value, **_):
        self.told.append(("ChangeConfiguration", {"key": key, "value": value}))
        return result16.ChangeConfiguration(status="RebootRequired")

    @on("Reset")
    def on_reset(self, type, **_):
        self.told.append(("Reset", {"type": type}))
        self.reset.set()
        return result16.Reset(status="Accepted")


def register(node, charger_id: str) -> None:
    with node.api() as api:
        assert api.post("/chargers", json={"id": charger_id}).status_code == 201


async def wait_state(node, charger_id: str, upgrade_id: int, state: str, within_s: float = 20) -> dict:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    ) as api:
        while True:
            got = (await api.get(f"{UPGRADES.format(charger_id)}/{upgrade_id}")).json()
            if got["state"] == state:
                return got
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.1)


async def start(node, charger_id: str, body: dict) -> httpx.Response:
    async with httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {node.admin_token}"}, timeout=30
    ) as api:
        return await api.post(UPGRADES.format(charger_id), json=body)


def test_a_201_station_is_moved_to_wss_and_accepted_there_only(node_factory, pki):
    node = node_factory(*tls_args(pki))
    register(node, "UPG-201")
    csms = node.ocpp_tls_url

    async def scenario() -> dict:
        async with ocpp_charge_point(Station201, node.ocpp_url, "UPG-201", "ocpp2.0.1") as cp:
            station = {"model": "M", "vendor_name": "V"}
            boot = await cp.call(
                call201.BootNotification(charging_station=station, reason="PowerUp"), suppress=False
            )
            assert boot.status == "Accepted"
            r = await start(
                node, "UPG-201", {"security_profile": 2, "csms_url": csms, "configuration_slot": 1}
            )
            assert r.status_code == 201, r.text
            created = r.json()
            assert r.headers["Location"].endswith(f"/security-profile-upgrades/{created['id']}")
            assert created["state"] in ("configuring", "awaiting_reconnect") and created["to_profile"] == 2
            # Only one at a time.
            again = await start(node, "UPG-201", {"security_profile": 2, "csms_url": csms})
            assert again.status_code == 409 and again.json()["code"] == "upgrade_in_progress"
            async with asyncio.timeout(10):
                await cp.reset.wait()
            waiting = await wait_state(node, "UPG-201", created["id"], "awaiting_reconnect")
            assert waiting["deadline_at"] is not None
            told = cp.told
        # What the station was told, in order.
        assert [t[0] for t in told] == ["GetVariables", "SetNetworkProfile", "SetVariables", "Reset"]
        profile = told[1][1]
        assert profile["slot"] == 1
        assert profile["data"]["security_profile"] == 2 and profile["data"]["ocpp_csms_url"] == csms
        assert told[2][1]["data"][0]["attribute_value"] == "1,0"
        assert told[3][1]["type"] == "OnIdle"
        # Back over wss (profile 2): the upgrade completes and the floor is raised.
        async with ocpp_charge_point(
            Station201, node.ocpp_tls_url, "UPG-201", "ocpp2.0.1", ssl=pki.server_ca_context()
        ):
            done = await wait_state(node, "UPG-201", created["id"], "completed")
        return done

    done = asyncio.run(scenario())
    assert done["fallbacks"] == 0 and done["reason"] is None
    with node.api() as api:
        assert api.get("/chargers/UPG-201").json()["security_profile"] == 2
        listed = api.get(UPGRADES.format("UPG-201")).json()
        assert [u["id"] for u in listed["items"]] == [done["id"]] and listed["next_cursor"] is None
        # Its progress as events.
        events = api.get("/events", params={"type": "charger.security_profile_upgrade"}).json()["items"]
        states = [e["state"] for e in events if e.get("upgrade_id") == done["id"]]
        assert "awaiting_reconnect" in states and "completed" in states
        # Cancelling a finished upgrade changes nothing.
        cancelled = api.post(f"{UPGRADES.format('UPG-201')}/{done['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "completed"

    async def plain_refused() -> int:
        import websockets

        try:
            async with websockets.connect(f"{node.ocpp_url}/UPG-201", subprotocols=["ocpp2.0.1"]):
                pass
        except websockets.exceptions.InvalidStatus as e:
            return e.response.status_code
        return 101

    assert asyncio.run(plain_refused()) == 403


def test_a_16_charger_that_falls_back_fails_the_upgrade_and_keeps_its_floor(node_factory, pki):
    node = node_factory(*tls_args(pki))
    register(node, "UPG-16")

    async def scenario() -> dict:
        async with ocpp_charge_point(Point16, node.ocpp_url, "UPG-16", "ocpp1.6") as cp:
            boot = await cp.call(
                call16.BootNotification(charge_point_model="M", charge_point_vendor="V"), suppress=False
            )
            assert boot.status == "Accepted"
            r = await start(node, "UPG-16", {"security_profile": 2, "reconnect_s": 3})
            assert r.status_code == 201, r.text
            upgrade_id = r.json()["id"]
            async with asyncio.timeout(10):
                await cp.reset.wait()
            await wait_state(node, "UPG-16", upgrade_id, "awaiting_reconnect")  # the Reset's answer is in
            told = cp.told
        assert told == [
            ("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}),
            ("Reset", {"type": "Soft"}),
        ]
        # It comes back on plain ws (its old profile): allowed, counted, and the upgrade fails at its deadline.
        async with ocpp_charge_point(Point16, node.ocpp_url, "UPG-16", "ocpp1.6"):
            failed = await wait_state(node, "UPG-16", upgrade_id, "failed", within_s=15)
        return failed

    failed = asyncio.run(scenario())
    assert failed["reason"] == "fell_back" and failed["fallbacks"] >= 1
    with node.api() as api:
        assert api.get("/chargers/UPG-16").json()["security_profile"] == 1


def test_what_the_node_cannot_accept_is_refused_before_anything_is_sent(node_factory, pki, tmp_path):
    node = node_factory(*tls_args(pki))  # wss, but no client CA
    register(node, "UPG-X")

    async def scenario() -> None:
        async with ocpp_charge_point(Station201, node.ocpp_url, "UPG-X", "ocpp2.0.1", boot=True) as cp:
            csms = node.ocpp_tls_url
            r = await start(node, "UPG-X", {"security_profile": 3, "csms_url": csms})
            assert r.status_code == 409 and r.json()["code"] == "client_ca_not_configured"
            r = await start(node, "UPG-X", {"security_profile": 2})
            assert r.status_code == 422 and r.json()["field"] == "csms_url"
            r = await start(node, "UPG-X", {"security_profile": 2, "csms_url": "ws://plain.example/ocpp"})
            assert r.status_code == 422 and r.json()["field"] == "csms_url"
            r = await start(node, "UPG-X", {"security_profile": 1, "csms_url": csms})
            assert r.status_code == 422 and r.json()["field"] == "security_profile"
            r = await start(node, "NOBODY", {"security_profile": 2, "csms_url": csms})
            assert r.status_code == 404
            with node.api() as api:
                secret = api.post("/tokens", json={"role": "operator", "label": "t"}).json()["token"]
            async with httpx.AsyncClient(
                base_url=node.api_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
            ) as op:
                r = await op.post(UPGRADES.format("UPG-X"), json={"security_profile": 2, "csms_url": csms})
                assert r.status_code == 403
                assert (await op.get(UPGRADES.format("UPG-X"))).status_code == 200
            await asyncio.sleep(0.3)
            assert cp.told == []  # nothing reached the charger
        with node.api() as api:
            assert api.patch("/chargers/UPG-X", json={"security_profile": 2}).status_code == 200
        r = await start(node, "UPG-X", {"security_profile": 2, "csms_url": node.ocpp_tls_url})
        assert r.status_code == 409 and r.json()["code"] == "profile_not_higher"

    asyncio.run(scenario())
    plain = node_factory(db=tmp_path / "plain.db")  # no wss at all
    register(plain, "UPG-Y")

    async def no_tls() -> None:
        async with ocpp_charge_point(Point16, plain.ocpp_url, "UPG-Y", "ocpp1.6", boot=True):
            r = await start(plain, "UPG-Y", {"security_profile": 2})
            assert r.status_code == 409 and r.json()["code"] == "tls_not_configured"

    asyncio.run(no_tls())
