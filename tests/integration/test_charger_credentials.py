"""Charger credentials on a real node: a change closes the connection that authenticated with the old ones, and
a registration without a `password` key keeps the existing password (`"password": null` clears it)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.integration.ocpp_clients import basic, call

OLD = "correct-horse-battery"
NEW = "another-horse-battery"


def headers(charger_id: str, password: str | None) -> list[tuple[str, str]]:
    return [] if password is None else [("Authorization", basic(charger_id, password))]


async def heartbeat(ws) -> None:
    uid, msg = call("Heartbeat", {})
    await ws.send(msg)
    assert json.loads(await ws.recv())[1] == uid


async def register(node, body: dict) -> httpx.Response:
    auth = {"Authorization": f"Bearer {node.admin_token}"}
    async with httpx.AsyncClient(base_url=node.api_url, headers=auth, timeout=30) as api:
        return await api.post("/chargers", json=body)


async def closed_after(node, charger_id: str, password: str | None, body: dict) -> tuple[int, int | None]:
    """Connect as `charger_id`, POST `body` to /chargers, and return (its status, the close code the charger
    heard within 5 s; None: still open)."""
    async with websockets.connect(
        f"{node.ocpp_url}/{charger_id}",
        subprotocols=["ocpp1.6"],
        additional_headers=headers(charger_id, password),
    ) as ws:
        await heartbeat(ws)
        status = (await register(node, body)).status_code
        try:
            async with asyncio.timeout(5):
                await ws.wait_closed()
        except TimeoutError:
            await heartbeat(ws)  # still open and served
            return status, None
        assert ws.close_code is not None
        return status, ws.close_code


def can_connect(node, charger_id: str, password: str | None) -> bool:
    async def attempt() -> bool:
        try:
            async with websockets.connect(
                f"{node.ocpp_url}/{charger_id}",
                subprotocols=["ocpp1.6"],
                additional_headers=headers(charger_id, password),
            ) as ws:
                await heartbeat(ws)
                return True
        except websockets.exceptions.InvalidStatus as e:
            assert e.response.status_code == 401
            return False

    return asyncio.run(attempt())


def test_a_new_password_closes_the_connection_made_with_the_old_one(node):
    assert asyncio.run(register(node, {"id": "CRED1", "password": OLD})).status_code == 201
    status, code = asyncio.run(closed_after(node, "CRED1", OLD, {"id": "CRED1", "password": NEW}))
    assert (status, code) == (200, 1008)
    assert not can_connect(node, "CRED1", OLD)
    assert can_connect(node, "CRED1", NEW)
    # The same password again changes nothing: the connection stays.
    assert asyncio.run(closed_after(node, "CRED1", NEW, {"id": "CRED1", "password": NEW})) == (200, None)
    # Clearing the password closes a connection made with one.
    assert asyncio.run(closed_after(node, "CRED1", NEW, {"id": "CRED1", "password": None})) == (200, 1008)
    assert can_connect(node, "CRED1", None)


def test_registering_an_unknown_charger_with_a_password_closes_its_open_connection(node):
    # Admitted as unknown (no password); an admin then registers it with one.
    status, code = asyncio.run(closed_after(node, "CRED2", None, {"id": "CRED2", "password": OLD}))
    # 200: the node already holds a row for the charger it saw connect.
    assert status in (200, 201) and code == 1008
    assert not can_connect(node, "CRED2", None)
    assert can_connect(node, "CRED2", OLD)
    events = node.get("/events?charger_id=CRED2&type=charger.disconnected").json()["items"]
    assert any("credentials changed" in json.dumps(e) for e in events), events


@pytest.mark.parametrize("body_extra", [{}], ids=["no-password-key"])
def test_a_post_without_a_password_key_keeps_the_password(node, body_extra):
    assert asyncio.run(register(node, {"id": "CRED3", "password": OLD})).status_code == 201
    # No "password" key: the charger keeps its password, and its connection stays.
    assert asyncio.run(closed_after(node, "CRED3", OLD, {"id": "CRED3", **body_extra})) == (200, None)
    assert not can_connect(node, "CRED3", None)
    assert can_connect(node, "CRED3", OLD)
    # An explicit null clears it.
    assert asyncio.run(register(node, {"id": "CRED3", "password": None})).status_code == 200
    assert can_connect(node, "CRED3", None)
