"""Admission control against a real node with an independent client (`websockets`): over the node's rate of
new connections, upgrades are answered HTTP 503 with a Retry-After within the configured bound, by the worker;
a charger already connected keeps talking meanwhile; the cap on handshakes at once counts handshakes in
progress and frees as they end; the summary and /metrics count the refusals by reason."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from tests.integration.ocpp_clients import boot_payload, call

RETRY_MAX = 9


def try_connect(stack: contextlib.ExitStack, node, charger_id: str) -> tuple[int, dict[str, str], Any]:
    """(101, {}, the open client, closed with `stack`) or (the refusal's status, its headers, None)."""
    try:
        ws = stack.enter_context(
            ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=["ocpp1.6"], open_timeout=10)
        )
    except InvalidStatus as e:
        return e.response.status_code, dict(e.response.headers), None
    return 101, {}, ws


def heartbeat_answered(ws) -> bool:
    uid, text = call("Heartbeat", {})
    ws.send(text)
    reply = json.loads(ws.recv(timeout=5))
    return reply[0] == 3 and reply[1] == uid


def summary(node) -> dict[str, Any]:
    r = node.get("/connectivity/summary")
    assert r.status_code == 200, r.text
    return r.json()


def busy_refusals(node) -> int:
    s = summary(node)
    return s["rejections_this_minute"]["busy"] + s["rejections_last_minute"]["busy"]


def metrics(node) -> str:
    return httpx.get(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10).text


def poll(fetch, ok, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_over_the_rate_upgrades_get_503_with_retry_after_and_a_connected_charger_keeps_talking(node_factory):
    node = node_factory(
        "--admit-rate", "2", "--admit-burst", "3", "--admit-handshakes", "0",
        "--admit-retry-max", str(RETRY_MAX),
    )  # fmt: skip
    with contextlib.ExitStack() as stack:
        status, _, keep = try_connect(stack, node, "KEEP")
        assert status == 101
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        keep.send(text)
        assert json.loads(keep.recv(timeout=10))[1] == uid
        time.sleep(1.6)  # the bucket (3 at 2/s) is full again

        started = time.monotonic()
        results = [try_connect(stack, node, f"STORM{i}") for i in range(20)]
        elapsed = time.monotonic() - started
        admitted = [ws for s, _, ws in results if s == 101]
        refused = [(s, h) for s, h, ws in results if ws is None]
        # The burst at once, then 2 per second: never more, whatever the demand.
        assert 3 <= len(admitted) <= 3 + int(2 * elapsed) + 1, (len(admitted), elapsed)
        assert len(admitted) + len(refused) == 20
        assert all(s == 503 for s, _ in refused), refused
        retry = [int(h["retry-after"]) for _, h in refused]
        assert all(1 <= r <= RETRY_MAX for r in retry), retry
        # The charger connected before the storm is served throughout.
        assert heartbeat_answered(keep)

        # The workers report their counts with their stats (every 250 ms): the summary and /metrics show them.
        assert poll(lambda: busy_refusals(node), lambda n: n == len(refused)) == len(refused)
        text = metrics(node)
        assert f'ampgate_upgrades_refused_total{{reason="admission_rate"}} {float(len(refused))}' in text
        s = summary(node)
        assert s["handshakes_this_minute"] + s["handshakes_last_minute"] >= 1 + len(admitted)

        # Once the bucket refills, a new charger gets in again.
        time.sleep(1.0)
        status, _, _ = try_connect(stack, node, "LATE")
        assert status == 101


def test_the_handshake_cap_counts_handshakes_in_progress(node_factory):
    node = node_factory("--admit-rate", "0", "--admit-handshakes", "1")
    stack = contextlib.ExitStack()
    # A client that connected and has not sent its upgrade holds the one handshake slot.
    slow = socket.create_connection(("127.0.0.1", node.ocpp_port))
    try:
        time.sleep(0.3)
        status, headers, _ = try_connect(stack, node, "CAPPED")
        assert status == 503 and 1 <= int(headers["retry-after"]) <= 60
    finally:
        slow.close()
    # Its handshake ended with its socket: the slot is free.
    with stack:
        status, _, ws = poll(lambda: try_connect(stack, node, "FREED"), lambda r: r[0] == 101, timeout=5)
        assert status == 101
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        ws.send(text)
        assert json.loads(ws.recv(timeout=10))[1] == uid
    text = poll(
        lambda: metrics(node),
        lambda t: 'ampgate_upgrades_refused_total{reason="admission_handshakes"} 1.0' in t,
    )
    assert 'ampgate_upgrades_refused_total{reason="admission_handshakes"} 1.0' in text


@pytest.mark.parametrize("flag", ["--admit-rate", "--admit-handshakes", "--admit-retry-max"])
def test_bad_admission_settings_are_refused_naming_the_flag(tmp_path, flag):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "serve", flag, "-1", "--db", str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert flag in r.stderr
