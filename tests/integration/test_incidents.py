"""Outages and offline alerts against a real node with `websockets` clients: chargers dropping together are one
incident (opened, then ended after a quiet window) and get no alerts of their own; a charger that drops alone
gets an offline alert after the limit, cleared when it is back."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import websockets.sync.client as ws_client

from tests.integration.ocpp_clients import boot_payload, call

ARGS = ("--spike-min", "3", "--spike-fraction", "0.5", "--spike-window", "2", "--offline-alert", "2")


def poll(fetch, ok, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def booted(stack: contextlib.ExitStack, node, charger_id: str) -> Any:
    ws = stack.enter_context(ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=["ocpp1.6"]))
    uid, text = call("BootNotification", boot_payload("ocpp1.6"))
    ws.send(text)
    assert json.loads(ws.recv(timeout=10))[1] == uid
    return ws


def alerts(node) -> list[dict]:
    return node.get("/events?type=charger.alert").json()["items"]


def test_an_outage_is_one_incident_and_a_lone_drop_an_alert(node_factory):
    node = node_factory(*ARGS)
    with contextlib.ExitStack() as outage:
        for i in range(4):
            booted(outage, node, f"OUT{i}")
    opened = poll(lambda: node.get("/incidents?state=open").json()["items"], lambda items: len(items) == 1)
    assert len(opened) == 1
    incident = opened[0]
    assert (incident["kind"], incident["scope"], incident["fleet"]) == ("disconnect_spike", "fleet", 4)
    assert incident["disconnects"] >= 3 and incident["ended_at"] is None
    ended = poll(lambda: node.get(f"/incidents/{incident['id']}").json(), lambda i: i["ended_at"] is not None)
    assert ended["ended_at"] is not None
    events = [e["type"] for e in node.get("/events?type=incident.opened&type=incident.ended").json()["items"]]
    assert events == ["incident.ended", "incident.opened"]

    # Well past --offline-alert, the outage's chargers have no alert of their own. A lone drop does.
    with contextlib.ExitStack() as lone:
        booted(lone, node, "LONE1")
    raised = poll(lambda: alerts(node), lambda items: any(a["charger_id"] == "LONE1" for a in items))
    assert [(a["charger_id"], a["kind"], a["raised"]) for a in raised] == [("LONE1", "offline", True)]
    with contextlib.ExitStack() as back:
        booted(back, node, "LONE1")
        cleared = poll(lambda: alerts(node), lambda items: len(items) == 2)
    assert [(a["charger_id"], a["raised"]) for a in cleared] == [("LONE1", False), ("LONE1", True)]
    bad = node.get("/incidents?state=burning")
    assert (bad.status_code, bad.json()["field"]) == (422, "state")
    assert node.get("/incidents/999").status_code == 404
