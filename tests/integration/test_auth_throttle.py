"""Failed Basic-auth attempts throttled per charger id, on a real node with an independent client
(`websockets`): after the limit of wrong passwords within the window, the id is refused HTTP 429 with a
Retry-After, the right password included, while other chargers are not affected; after the back-off the right
password gets in; a success clears the failures; the refusals are counted under their own reason."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from tests.integration.ocpp_clients import basic, call

RIGHT = "correct-horse-battery"
WRONG = "incorrect-horse-battery"
LIMIT = 3
BACKOFF_S = 2
# Small settings so the back-off passes within the test; the window is long enough that the attempts below
# all fall in it.
SETTINGS = ("--auth-fail-limit", str(LIMIT), "--auth-fail-window-s", "10", "--auth-backoff-s", str(BACKOFF_S))


def register(node, charger_id: str, password: str) -> None:
    auth = {"Authorization": f"Bearer {node.admin_token}"}
    r = httpx.post(f"{node.api_url}/chargers", json={"id": charger_id, "password": password}, headers=auth)
    assert r.status_code in (200, 201), r.text


def attempt(node, charger_id: str, password: str) -> tuple[int, dict[str, str]]:
    """One handshake: (101, {}) after a heartbeat was answered, or (the refusal's status, its headers)."""
    with contextlib.ExitStack() as stack:
        try:
            ws = stack.enter_context(
                ws_client.connect(
                    f"{node.ocpp_url}/{charger_id}",
                    subprotocols=["ocpp1.6"],
                    additional_headers={"Authorization": basic(charger_id, password)},
                    open_timeout=10,
                )
            )
        except InvalidStatus as e:
            return e.response.status_code, dict(e.response.headers)
        uid, text = call("Heartbeat", {})
        ws.send(text)
        assert json.loads(ws.recv(timeout=5))[1] == uid
        return 101, {}


def refusals(node) -> dict[str, Any]:
    s = node.get("/connectivity/summary").json()
    return {
        k: s["rejections_this_minute"][k] + s["rejections_last_minute"][k]
        for k in s["rejections_this_minute"]
    }


def poll(fetch, ok, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@pytest.fixture
def throttled_node(node_factory):
    return node_factory(*SETTINGS)


def test_the_right_password_is_refused_during_the_back_off_and_accepted_after(throttled_node) -> None:
    node = throttled_node
    register(node, "THR1", RIGHT)
    register(node, "THR2", RIGHT)
    assert attempt(node, "THR1", RIGHT)[0] == 101
    for _ in range(LIMIT):
        assert attempt(node, "THR1", WRONG)[0] == 401
    # Backing off: the right password is refused like a wrong one, without a check, and says how long.
    refused_at = time.monotonic()
    status, headers = attempt(node, "THR1", RIGHT)
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= BACKOFF_S
    assert attempt(node, "THR1", WRONG)[0] == 429
    # Per charger id: another charger (same client address) is not affected.
    assert attempt(node, "THR2", RIGHT)[0] == 101
    # After the back-off, the right password gets in.
    time.sleep(max(0.0, BACKOFF_S + 0.3 - (time.monotonic() - refused_at)))
    assert attempt(node, "THR1", RIGHT)[0] == 101
    # Counted under their own reason, apart from the 401s; and in /metrics.
    counts = poll(lambda: refusals(node), lambda c: c["auth_throttled"] >= 2)
    assert counts["auth_throttled"] == 2 and counts["bad_credentials"] == LIMIT, counts
    text = httpx.get(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10).text
    assert 'ampgate_upgrades_refused_total{reason="auth_throttled"} 2.0' in text


def test_a_success_clears_the_failures(throttled_node) -> None:
    node = throttled_node
    register(node, "THR3", RIGHT)
    for _ in range(2):
        for _ in range(LIMIT - 1):
            assert attempt(node, "THR3", WRONG)[0] == 401
        # Below the limit, the right password gets in and forgets the failures before it.
        assert attempt(node, "THR3", RIGHT)[0] == 101
