"""Utilization balancing against a real node, with chargers on real WebSockets (the `websockets` client speaking
OCPP 1.6J): a connector going Charging, then Faulted, and a charger going offline move the site's counts at GET
/api/v1/sites/{id}/availability and publish `site.availability_changed`; the public listener ranks the idle
opted-in site first and never shows the opted-out one, answers bad lat / lon / radius_km with 422 naming the field,
and past its per-address limit with 429 and Retry-After; the occupancy of the hour is read back."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client

from tests.integration.ocpp_clients import boot_payload, call

WAIT = 15.0
# Three sites a few km apart around Utrecht; the busy one is the nearest, so distance alone would put it first.
SITES = {
    "BUSY": (52.0894, 5.1100, True),
    "IDLE": (52.1000, 5.1200, True),
    "HIDDEN": (52.0900, 5.1100, False),
}


def poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


class Charger:
    """A 1.6 charger with two connectors on a live WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.rpc("BootNotification", boot_payload("ocpp1.6"))

    def rpc(self, action: str, payload: dict[str, Any]) -> Any:
        uid, text = call(action, payload)
        self.ws.send(text)
        while True:
            reply = json.loads(self.ws.recv(timeout=10))
            if reply[0] == 3 and reply[1] == uid:
                return reply[2]

    def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        self.rpc("StatusNotification", {"connectorId": connector, "errorCode": error_code, "status": status})

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def chargers(node: Any, *ids: str) -> Iterator[dict[str, Charger]]:
    with contextlib.ExitStack() as stack:
        yield {
            cid: Charger(
                stack.enter_context(ws_client.connect(f"{node.ocpp_url}/{cid}", subprotocols=["ocpp1.6"]))
            )
            for cid in ids
        }


def setup_sites(node: Any) -> None:
    with node.api() as api:
        for site_id, (lat, lon, public) in SITES.items():
            body = {
                "id": site_id,
                "name": f"Site {site_id}",
                "phase_limits_a": [63, 63, 63],
                "location": {"lat": lat, "lon": lon, "city": "Utrecht", "country": "NLD"},
                "public_recommendations": public,
            }
            assert api.post("/sites", json=body).status_code == 201
            charger_id = f"CP-{site_id}"
            assert api.post("/chargers", json={"id": charger_id}).status_code == 201
            r = api.put(
                f"/chargers/{charger_id}/placement", json={"node_id": site_id, "phases": "L1", "max_a": 32}
            )
            assert r.status_code == 200, r.text


def availability(node: Any, site_id: str) -> dict[str, Any]:
    r = node.get(f"/sites/{site_id}/availability")
    assert r.status_code == 200, r.text
    return r.json()


def counts(body: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        body["connectors_free"],
        body["connectors_in_use"],
        body["connectors_faulted"],
        body["connectors_offline"],
    )


def public(node: Any, **params: Any) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{node.public_port}/public/v1/recommendations", params=params, timeout=10
    )


def test_connector_states_move_the_counts_and_the_public_ranking_spreads_demand(node) -> None:
    setup_sites(node)
    with chargers(node, "CP-BUSY", "CP-IDLE", "CP-HIDDEN") as cps:
        for c in cps.values():
            c.status(1, "Available")
            c.status(2, "Available")
        body = poll(lambda: availability(node, "BUSY"), lambda b: counts(b) == (2, 0, 0, 0))
        assert counts(body) == (2, 0, 0, 0) and body["connectors_total"] == 2
        assert [(c["charger_id"], c["online"]) for c in body["chargers"]] == [("CP-BUSY", True)]

        cps["CP-BUSY"].status(1, "Charging")
        body = poll(lambda: availability(node, "BUSY"), lambda b: counts(b) == (1, 1, 0, 0))
        assert counts(body) == (1, 1, 0, 0)
        cps["CP-BUSY"].status(2, "Faulted", "GroundFailure")
        body = poll(lambda: availability(node, "BUSY"), lambda b: counts(b) == (0, 1, 1, 0))
        assert counts(body) == (0, 1, 1, 0)
        assert [c["state"] for c in body["chargers"][0]["connectors"]] == ["in_use", "faulted"]
        cps["CP-BUSY"].status(2, "Available")
        poll(lambda: availability(node, "BUSY"), lambda b: counts(b) == (1, 1, 0, 0))

        # The public ranking: the idle site first though it is further; the opted-out site never shows.
        r = public(node, lat=52.0894, lon=5.1100, radius_km=10)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [i["site_id"] for i in items] == ["IDLE", "BUSY"]
        assert items[0]["distance_km"] > items[1]["distance_km"]
        assert (items[0]["connectors_free"], items[0]["connectors_total"]) == (2, 2)
        assert (items[1]["connectors_free"], items[1]["connectors_total"]) == (1, 2)
        assert items[0]["score"] > items[1]["score"]
        assert set(items[0]) == {
            "site_id",
            "name",
            "location",
            "distance_km",
            "connectors_free",
            "connectors_total",
            "headroom_kw",
            "occupancy_recent",
            "score",
        }
        assert "CP-" not in r.text and "HIDDEN" not in r.text
        # Headroom is the load ticker's: the site's limit (3 x 63 A at 230 V) minus what it draws (nothing
        # metered here), known once the ticker has the site.
        body = poll(lambda: availability(node, "BUSY"), lambda b: b["headroom_kw"] is not None)
        assert body["headroom_kw"] == pytest.approx(3 * 63 * 230 / 1000)
        # IDLE's too (the ticker learns sites one after another; a loaded box may not have it yet).
        poll(lambda: availability(node, "IDLE"), lambda b: b["headroom_kw"] is not None)
        roomy = public(node, lat=52.0894, lon=5.11, min_kw=11).json()["items"]
        assert {i["site_id"] for i in roomy} == {"IDLE", "BUSY"}
        assert public(node, lat=52.0894, lon=5.11, min_kw=44).json()["items"] == []

        cps["CP-BUSY"].close()
        body = poll(lambda: availability(node, "BUSY"), lambda b: counts(b) == (0, 0, 0, 2))
        assert counts(body) == (0, 0, 0, 2) and body["chargers"][0]["online"] is False

    changes = poll(
        lambda: node.get("/events?type=site.availability_changed").json()["items"],
        lambda items: sum(e["site_id"] == "BUSY" for e in items) >= 5,
    )
    busy = [e for e in reversed(changes) if e["site_id"] == "BUSY"]
    assert [e["connectors_offline"] for e in busy][-1] == 2
    assert any(e["connectors_faulted"] == 1 and e["previous_free"] == 1 for e in busy)

    r = node.get("/sites/BUSY/occupancy")
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert points and sum(p["in_use_s"] for p in points) > 0


def test_bad_query_values_name_the_field_and_the_limit_answers_429(node) -> None:
    for params, field in (
        ({"lat": 91, "lon": 5}, "lat"),
        ({"lat": "here", "lon": 5}, "lat"),
        ({"lat": 52, "lon": 181}, "lon"),
        ({"lon": 5}, "lat"),
        ({"lat": 52, "lon": 5, "radius_km": 0}, "radius_km"),
        ({"lat": 52, "lon": 5, "radius_km": 1000}, "radius_km"),
    ):
        r = public(node, **params)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid_field", field), params
    # The bucket holds a burst of 20 and earns one a second: 60 quick requests cannot all pass.
    statuses = []
    for _ in range(60):
        r = public(node, lat=52, lon=5)
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    assert r.json()["code"] == "too_many_requests" and int(r.headers["retry-after"]) >= 1
