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


def test_a_sites_outage_is_an_incident_of_that_site_and_the_summary_counts_by_site(node_factory):
    """Site A (4 chargers) goes down whole while the fleet (12 chargers) stays over the fleet's rule: one incident
    scoped to site A, none for the fleet; the summary counts each site's chargers by state."""
    node = node_factory(*ARGS)
    with node.api() as api:
        for site in ("SITE-A", "SITE-B"):
            r = api.post("/sites", json={"id": site, "phase_limits_a": [100, 100, 100]})
            assert r.status_code == 201, r.text
        for i in range(12):
            r = api.post("/chargers", json={"id": f"CP{i}"})
            assert r.status_code in (200, 201), r.text
            site = "SITE-A" if i < 4 else "SITE-B"
            r = api.put(f"/chargers/CP{i}/placement", json={"node_id": site, "phases": "L1", "max_a": 16})
            assert r.status_code in (200, 201), r.text
    with contextlib.ExitStack() as rest:
        for i in range(4, 12):
            booted(rest, node, f"CP{i}")
        with contextlib.ExitStack() as site_a:
            for i in range(4):
                booted(site_a, node, f"CP{i}")
            up = poll(
                lambda: node.get("/connectivity/summary").json()["by_site"],
                lambda s: s.get("SITE-A", {}).get("online") == 4 and s.get("SITE-B", {}).get("online") == 8,
            )
            assert up["SITE-A"] == {"placed": 4, "online": 4, "stale": 0, "offline": 0, "flapping": 0}
        # Site A's 4 chargers dropped together: 4 of 12 is not half the fleet, but all of site A.
        opened = poll(
            lambda: node.get("/incidents?state=open").json()["items"], lambda items: len(items) == 1
        )
        assert [(i["scope"], i["fleet"]) for i in opened] == [("site:SITE-A", 4)]
        by_site = node.get("/connectivity/summary").json()["by_site"]
        assert by_site["SITE-A"]["offline"] == 4 and by_site["SITE-B"]["online"] == 8
        ended = poll(
            lambda: node.get(f"/incidents/{opened[0]['id']}").json(), lambda i: i["ended_at"] is not None
        )
        assert ended["ended_at"] is not None
        # The site's chargers went down in its outage: no alert of their own, past --offline-alert.
        time.sleep(2.5)
        assert [a for a in alerts(node) if a["charger_id"] in {f"CP{i}" for i in range(4)}] == []
