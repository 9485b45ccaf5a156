"""Remote commands through the HTTP API to chargers written with the `ocpp` package's ChargePoint classes
(asyncio, on the `websockets` client): the replies, CALLERRORs, timeouts, offline and bad input."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import ResetStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point


class Charger16(ChargePoint16):
    @on(Action16.reset)
    async def on_reset(self, type, **_):
        return result16.Reset(status=ResetStatus.accepted if type == "Soft" else ResetStatus.rejected)

    @on(Action16.get_configuration)
    async def on_get_configuration(self, **_):
        # Slow on purpose: the node's --call-timeout is shorter than this.
        await asyncio.sleep(5)
        return result16.GetConfiguration(configuration_key=[])


class Charger201(ChargePoint201):
    @on(Action201.reset)
    async def on_reset(self, type, **_):
        return result201.Reset(status="Accepted")


def running(cp_class, url: str, charger_id: str, protocol: str):
    return ocpp_charge_point(cp_class, url, charger_id, protocol, boot=True)


async def post(node, charger_id: str, name: str, body, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or node.admin_token}"}
    async with httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as api:
        return await api.post(f"/chargers/{charger_id}/commands/{name}", json=body)


def test_reset_through_the_api_reaches_a_16_charger_and_returns_its_reply(node_factory):
    node = node_factory("--call-timeout", "1.5")

    async def scenario():
        async with running(Charger16, node.ocpp_url, "CMD16", "ocpp1.6"):
            ok = await post(node, "CMD16", "Reset", {"type": "Soft"})
            rejected = await post(node, "CMD16", "Reset", {"type": "Hard"})
            bad = await post(node, "CMD16", "Reset", {"type": "Sideways"})
            missing = await post(node, "CMD16", "Reset", {})
            unknown = await post(node, "CMD16", "Teleport", {})
            wrong_version = await post(node, "CMD16", "RequestStartTransaction", {})
            unsupported = await post(node, "CMD16", "ClearCache", {})
            # Last: the ocpp package handles one CALL at a time, so the slow one would delay any after it.
            slow = await post(node, "CMD16", "GetConfiguration", {})
        offline = await post(node, "CMD16", "Reset", {"type": "Soft"})
        nobody = await post(node, "NOBODY", "Reset", {"type": "Soft"})
        return ok, rejected, bad, missing, unknown, wrong_version, slow, unsupported, offline, nobody

    ok, rejected, bad, missing, unknown, wrong_version, slow, unsupported, offline, nobody = asyncio.run(
        scenario()
    )
    assert ok.status_code == 200 and ok.json() == {"status": "Accepted"}
    assert rejected.status_code == 200 and rejected.json() == {"status": "Rejected"}
    assert bad.status_code == 422 and bad.json()["field"] == "type"
    assert missing.status_code == 422 and missing.json()["field"] == "type"
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_command"
    assert wrong_version.status_code == 404 and wrong_version.json()["field"] == "name"
    assert slow.status_code == 504 and slow.json()["code"] == "charger_timeout"
    # The ocpp package answers an action it has no handler for with a CALLERROR (NotImplemented/NotSupported).
    assert unsupported.status_code == 502 and unsupported.json()["code"] == "charger_error"
    assert unsupported.json()["ocpp_code"] in ("NotImplemented", "NotSupported")
    assert offline.status_code == 409 and offline.json()["code"] == "charger_offline"
    assert nobody.status_code == 404 and nobody.json()["field"] == "id"


def test_reset_reaches_a_201_charger(node):
    async def scenario():
        async with running(Charger201, node.ocpp_url, "CMD201", "ocpp2.0.1"):
            return await post(node, "CMD201", "Reset", {"type": "Immediate"})

    r = asyncio.run(scenario())
    assert r.status_code == 200 and r.json() == {"status": "Accepted"}


def test_commands_need_an_operator(node):
    viewer = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", "viewer", "--db", str(node.db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    r = asyncio.run(post(node, "ANY", "Reset", {"type": "Soft"}, token=viewer))
    assert r.status_code == 403


class CountingCharger201(ChargePoint201):
    resets: list[str] = []  # noqa: RUF012 (what the charger got, read after the session)

    @on(Action201.reset)
    async def on_reset(self, type, **_):
        self.resets.append(type)
        return result201.Reset(status="Accepted")


def test_a_command_retried_with_its_idempotency_key_reaches_the_charger_once(node):
    async def scenario():
        async with running(CountingCharger201, node.ocpp_url, "IDEM1", "ocpp2.0.1"):
            headers = {"Authorization": f"Bearer {node.admin_token}", "Idempotency-Key": "reset-IDEM1-1"}
            async with httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as api:
                first = await api.post("/chargers/IDEM1/commands/Reset", json={"type": "Immediate"})
                retry = await api.post("/chargers/IDEM1/commands/Reset", json={"type": "Immediate"})
            return first, retry

    first, retry = asyncio.run(scenario())
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() == {"status": "Accepted"}
    assert retry.headers["idempotent-replayed"] == "true"
    assert CountingCharger201.resets == ["Immediate"]
