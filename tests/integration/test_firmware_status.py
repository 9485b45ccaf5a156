"""Firmware progress against a real node, with charge points written with the `ocpp` package's ChargePoint
classes for 1.6 (FirmwareStatusNotification and the security extension's SignedFirmwareStatusNotification) and
2.0.1: every step of an update is visible through the API, the version a charger runs follows its boots (also
after the reboot that installs the new one), and a status OCPP does not define gets PropertyConstraintViolation
while the recorded status stays."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from tests.integration.ocpp_clients import ocpp_charge_point

OLD = "1.0.0"
NEW = "1.1.0"
REQUEST_ID = 42
BEFORE_REBOOT = ("Downloading", "Downloaded", "Installing")
# The 1.6 kinds of notification: the core one (no request id) and the security extension's (with one).
PLAIN16, SIGNED16, V201 = "ocpp1.6", "ocpp1.6-signed", "ocpp2.0.1"


def api(node) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {node.admin_token}"}
    return httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30)


async def charger_when(
    http: httpx.AsyncClient, charger_id: str, ready, seconds: float = 10.0
) -> dict[str, Any]:
    """GET the charger until `ready(body)` (the node records firmware status fire-and-forget, so the API may
    lag the reply by one writer group); return the last body."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        body = (await http.get(f"/chargers/{charger_id}")).json()
        if ready(body) or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)


def cp_class(kind: str) -> type:
    return ChargePoint201 if kind == V201 else ChargePoint16


def protocol(kind: str) -> str:
    return "ocpp2.0.1" if kind == V201 else "ocpp1.6"


def boot(kind: str, version: str) -> Any:
    if kind == V201:
        station = {"model": "M", "vendor_name": "V", "firmware_version": version}
        return call201.BootNotification(
            charging_station=station, reason="PowerUp" if version == OLD else "FirmwareUpdate"
        )
    return call16.BootNotification(charge_point_model="M", charge_point_vendor="V", firmware_version=version)


def notification(kind: str, status: str) -> Any:
    if kind == PLAIN16:
        return call16.FirmwareStatusNotification(status=status)
    if kind == SIGNED16:
        return call16.SignedFirmwareStatusNotification(status=status, request_id=REQUEST_ID)
    return call201.FirmwareStatusNotification(status=status, request_id=REQUEST_ID)


def connector_status(kind: str) -> Any:
    if kind == V201:
        return call201.StatusNotification(
            timestamp=datetime.now(UTC).isoformat(), connector_status="Available", evse_id=1, connector_id=1
        )
    return call16.StatusNotification(connector_id=1, error_code="NoError", status="Available")


@pytest.mark.parametrize("kind", [PLAIN16, SIGNED16, V201])
def test_a_firmware_update_is_visible_step_by_step_and_the_new_version_after_the_reboot(node, kind):
    cid = f"FW-{kind}"
    request_id = None if kind == PLAIN16 else REQUEST_ID

    async def scenario():
        seen: list[dict[str, Any]] = []
        async with api(node) as http:
            async with ocpp_charge_point(cp_class(kind), node.ocpp_url, cid, protocol(kind)) as cp:
                assert (await cp.call(boot(kind, OLD))).status == "Accepted"
                booted = await charger_when(http, cid, lambda b: b.get("firmware") == OLD)
                assert booted["firmware_status"] is None and booted["firmware_status_at"] is None
                for status in BEFORE_REBOOT:
                    assert await cp.call(notification(kind, status)) is not None
                    seen.append(
                        await charger_when(http, cid, lambda b, s=status: b.get("firmware_status") == s)
                    )
            # The charger reboots into the new image, boots with its version, then reports the install.
            async with ocpp_charge_point(cp_class(kind), node.ocpp_url, cid, protocol(kind)) as cp:
                assert (await cp.call(boot(kind, NEW))).status == "Accepted"
                rebooted = await charger_when(http, cid, lambda b: b.get("firmware") == NEW)
                await cp.call(notification(kind, "Installed"))
                seen.append(await charger_when(http, cid, lambda b: b.get("firmware_status") == "Installed"))
                listed = (
                    await http.get("/chargers", params={"firmware": NEW, "firmware_status": "Installed"})
                ).json()
                old = (await http.get("/chargers", params={"firmware": OLD})).json()
        return rebooted, seen, listed, old

    # Truncated like the receive time, which the store keeps to the millisecond.
    started = datetime.now(UTC).replace(microsecond=0)
    rebooted, seen, listed, old = asyncio.run(scenario())
    ended = datetime.now(UTC)

    # The boot after the reboot changed the version and left the update's last status alone.
    assert (rebooted["firmware"], rebooted["firmware_status"]) == (NEW, "Installing")
    assert [b["firmware_status"] for b in seen] == [*BEFORE_REBOOT, "Installed"]
    assert [b["firmware"] for b in seen] == [OLD, OLD, OLD, NEW]
    assert all(b["firmware_request_id"] == request_id for b in seen)
    # The node's receive time, in UTC, in the order the notifications came.
    times = [datetime.fromisoformat(b["firmware_status_at"]) for b in seen]
    assert all(b["firmware_status_at"].endswith("Z") for b in seen)
    assert started <= times[0] and times == sorted(times) and times[-1] <= ended
    assert [c["id"] for c in listed["items"]] == [cid] and old["items"] == []


@pytest.mark.parametrize("kind", [PLAIN16, SIGNED16, V201])
def test_a_status_ocpp_does_not_define_is_a_property_constraint_violation(node, kind):
    cid = f"FW-BAD-{kind}"

    async def scenario():
        async with (
            api(node) as http,
            ocpp_charge_point(cp_class(kind), node.ocpp_url, cid, protocol(kind)) as cp,
        ):
            await cp.call(boot(kind, OLD))
            await cp.call(notification(kind, "Downloading"))
            await charger_when(http, cid, lambda b: b.get("firmware_status") == "Downloading")
            with pytest.raises(PropertyConstraintViolationError) as info:
                await cp.call(notification(kind, "Exploded"), suppress=False, skip_schema_validation=True)
            # The charger is still served after the refusal. Its connector status goes through the same
            # writer queue in order, so once it shows, anything the refused message had queued would too.
            await cp.call(connector_status(kind))
            body = await charger_when(http, cid, lambda b: b.get("connectors"))
        return info.value, body

    error, body = asyncio.run(scenario())
    assert error.details == {"field": "$.status"}
    assert body["connectors"] and body["firmware_status"] == "Downloading"
