"""The charger id rule on a real node, at registration (API) and at connection (the URL path): invisible,
direction-changing and look-alike characters are refused, ids are kept in NFC so look-alikes are one charger."""

from __future__ import annotations

import asyncio
import json
import unicodedata
import urllib.parse

import pytest
import websockets
from websockets.http11 import Response

from tests.integration.ocpp_clients import BOOT_16, call

REFUSED = ["CP\u200b1", "CP\u202e1", "CP\u20661", "CP\u00a01", "\ufeffCP1", "CP\u00ad1"]


@pytest.mark.parametrize("cp_id", REFUSED, ids=lambda c: c.encode("unicode_escape").decode())
def test_registration_refuses_invisible_and_direction_changing_ids(node, cp_id):
    with node.api() as api:
        r = api.post("/chargers", json={"id": cp_id})
        assert r.status_code == 422 and r.json()["field"] == "id", r.text


def test_registration_keeps_ids_in_nfc_so_look_alikes_are_one_charger(node):
    composed, decomposed = "Caf\u00e9-1", "Cafe\u0301-1"
    with node.api() as api:
        first = api.post("/chargers", json={"id": decomposed})
        assert first.status_code == 201 and first.json()["id"] == composed
        second = api.post("/chargers", json={"id": composed})
        assert second.status_code == 200  # the same charger
        ids = [c["id"] for c in api.get("/chargers").json()["items"]]
        assert ids.count(composed) == 1 and decomposed not in ids


async def connect_and_boot(node, cp_id: str) -> tuple[int | None, str | None, bool]:
    """Connect as `cp_id` (percent-encoded in the path), send a BootNotification, and return the close code and
    reason heard (None, None: open), and whether the boot was answered."""
    path = urllib.parse.quote(cp_id, safe="")
    async with websockets.connect(f"{node.ocpp_url}/{path}", subprotocols=["ocpp1.6"]) as ws:
        uid, msg = call("BootNotification", BOOT_16)
        answered = False
        try:
            await ws.send(msg)
            async with asyncio.timeout(5):
                reply = json.loads(await ws.recv())
                answered = reply[1] == uid
        except (websockets.exceptions.ConnectionClosed, TimeoutError):
            pass
        try:
            async with asyncio.timeout(5):
                await ws.wait_closed()
        except TimeoutError:
            return None, None, answered
        return ws.close_code, ws.close_reason, answered


@pytest.mark.parametrize("cp_id", REFUSED, ids=lambda c: c.encode("unicode_escape").decode())
def test_a_connection_with_a_refused_id_is_refused_in_the_handshake(node, cp_id):
    """The gateway applies the registration rule before the 101 (rust/codec/charger_id.rs): 404, no WebSocket,
    nothing recorded."""
    response = asyncio.run(handshake_refusal(node, cp_id))
    assert (response.status_code, response.body) == (404, b"bad charge point id\n")
    with node.api() as api:
        assert cp_id not in [c["id"] for c in api.get("/chargers").json()["items"]]
        assert all(e.get("charger_id") != cp_id for e in api.get("/events").json()["items"])


# U+1FAE8 SHAKING FACE, assigned in Unicode 15: the gateway's tables know it (a symbol), Python 3.11's (Unicode 14)
# call it unassigned. Where the two disagree the control plane's rule wins, after the 101.
NEWER_THAN_PYTHON = "CP\U0001fae8"


def test_a_character_only_the_gateway_knows_is_refused_by_the_control_plane_after_the_101(node):
    code, reason, answered = asyncio.run(connect_and_boot(node, NEWER_THAN_PYTHON))
    if unicodedata.category(NEWER_THAN_PYTHON[-1]) == "Cn":
        assert (code, reason, answered) == (1008, "invalid charger id", False)
        with node.api() as api:
            assert NEWER_THAN_PYTHON not in [c["id"] for c in api.get("/chargers").json()["items"]]
    else:  # a Python whose Unicode knows it too: a valid id
        assert (code, reason, answered) == (None, None, True)


def test_a_connection_with_a_valid_unicode_id_is_served(node):
    assert asyncio.run(connect_and_boot(node, "Caf\u00e9-3")) == (None, None, True)
    with node.api() as api:
        assert "Caf\u00e9-3" in [c["id"] for c in api.get("/chargers").json()["items"]]


# Not NFC: "e" + U+0301 COMBINING ACUTE ACCENT (NFC composes it to U+00E9), and U+212B ANGSTROM SIGN (a singleton
# NFC maps to U+00C5).
NOT_NFC = ["Cafe\u0301-2", "\u212b-2"]


async def handshake_refusal(node, cp_id: str) -> Response:
    """Connect as `cp_id` (percent-encoded in the path) and return the HTTP response that refused the upgrade."""
    path = urllib.parse.quote(cp_id, safe="")
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(f"{node.ocpp_url}/{path}", subprotocols=["ocpp1.6"]):
            pass
    return refused.value.response


@pytest.mark.parametrize("cp_id", NOT_NFC, ids=lambda c: c.encode("unicode_escape").decode())
def test_a_non_nfc_id_is_refused_in_the_handshake_before_any_101(node, cp_id):
    """The gateway refuses an id that is not in NFC with the 404 it gives any invalid id (rust/codec/charger_id.rs),
    so a decomposed spelling of an id never gets a WebSocket; nothing of it is recorded."""
    response = asyncio.run(handshake_refusal(node, cp_id))
    assert (response.status_code, response.body) == (404, b"bad charge point id\n")
    with node.api() as api:
        assert cp_id not in [c["id"] for c in api.get("/chargers").json()["items"]]
        assert all(e.get("charger_id") != cp_id for e in api.get("/events").json()["items"])
