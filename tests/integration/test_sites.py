"""The site topology against a real node over HTTP: a site, capacity nodes under it and a charger placed under a
node, read back; a placement moved; refused changes answered with their field; and the changes as events at
GET /api/v1/events. The schema migration runs on the node's fresh database."""

from __future__ import annotations

import time
from typing import Any

EAN = "871687120000000004"  # 18 digits, the last the GS1 check digit


def wait_for_events(node: Any, query: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        items = node.get(f"/events?{query}").json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


def test_a_site_its_nodes_and_a_placement_over_http(node):
    with node.api() as api:
        r = api.post(
            "/sites",
            json={
                "id": "AMS-01",
                "name": "Amsterdam depot",
                "phase_limits_a": [80, 80, 80],
                "time_zone": "Europe/Amsterdam",
                "location": {"lat": 52.37, "lon": 4.89, "city": "Amsterdam", "country": "NLD"},
                "ean": EAN,
            },
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"] == "/api/v1/sites/AMS-01"
        r = api.post("/sites/AMS-01/nodes", json={"id": "TR-1", "parent_id": "AMS-01", "limit_kw": 100})
        assert r.status_code == 201, r.text
        r = api.post(
            "/sites/AMS-01/nodes",
            json={"id": "PANEL-A", "parent_id": "TR-1", "name": "Panel A", "phase_limits_a": [32, 32, None]},
        )
        assert r.status_code == 201, r.text
        assert api.post("/chargers", json={"id": "CP-SITE-1"}).status_code == 201
        r = api.put(
            "/chargers/CP-SITE-1/placement",
            json={"node_id": "PANEL-A", "phases": "STR", "max_a": 16, "priority": 2},
        )
        assert r.status_code == 200, r.text

        site = api.get("/sites/AMS-01").json()
        assert site["phase_limits_a"] == [80.0, 80.0, 80.0] and site["voltage_v"] == 230.0
        assert (site["time_zone"], site["ean"], site["location"]["country"]) == (
            "Europe/Amsterdam",
            EAN,
            "NLD",
        )
        listed = api.get("/sites/AMS-01/nodes").json()
        assert [(n["id"], n["parent_id"]) for n in listed["items"]] == [
            ("PANEL-A", "TR-1"),
            ("TR-1", "AMS-01"),
        ]
        panel = api.get("/sites/AMS-01/nodes/PANEL-A").json()
        assert panel["phase_limits_a"] == [32.0, 32.0, None] and panel["name"] == "Panel A"
        placed = api.get("/chargers/CP-SITE-1/placement").json()
        assert (
            placed["site_id"],
            placed["node_id"],
            placed["phases"],
            placed["max_a"],
            placed["priority"],
        ) == (
            "AMS-01",
            "PANEL-A",
            "STR",
            16.0,
            2,
        )

        # Placing it again moves it (directly under the site now): still one placement.
        r = api.put("/chargers/CP-SITE-1/placement", json={"node_id": "AMS-01", "phases": "L1", "max_a": 32})
        assert r.status_code == 200 and r.json()["node_id"] == "AMS-01"
        assert [p["charger_id"] for p in api.get("/sites/AMS-01/placements").json()["items"]] == ["CP-SITE-1"]

        # Refused: a cycle, a wiring that does not exist, a node with something under it; nothing changed.
        r = api.patch("/sites/AMS-01/nodes/TR-1", json={"parent_id": "PANEL-A"})
        assert r.status_code == 422 and r.json()["field"] == "parent_id"
        r = api.put("/chargers/CP-SITE-1/placement", json={"node_id": "TR-1", "phases": "L4", "max_a": 16})
        assert r.status_code == 422 and r.json()["field"] == "phases"
        r = api.delete("/sites/AMS-01/nodes/TR-1")
        assert r.status_code == 409 and r.json()["code"] == "node_not_empty"
        assert api.get("/sites/AMS-01/nodes/TR-1").json()["parent_id"] == "AMS-01"
        assert api.get("/chargers/CP-SITE-1/placement").json()["phases"] == "L1"

    placed_events = wait_for_events(node, "type=charger.placed&charger_id=CP-SITE-1", 2)
    assert [(e["node_id"], e["previous_node_id"]) for e in placed_events] == [
        ("AMS-01", "PANEL-A"),
        ("PANEL-A", None),
    ]
    assert placed_events[1]["site_id"] == "AMS-01" and placed_events[1]["phases"] == "STR"
    created = wait_for_events(node, "type=site.created&type=capacity_node.created", 3)
    assert [e["type"] for e in created] == ["capacity_node.created", "capacity_node.created", "site.created"]
    assert created[0] == {**created[0], "site_id": "AMS-01", "node_id": "PANEL-A", "parent_id": "TR-1"}
