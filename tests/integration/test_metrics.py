"""Prometheus metrics of a real node at /metrics on the operator listener (no token), parsed with the
prometheus_client library's own parser: a charger's connect, boot and disconnect show in the counters, the
connections per worker and chargers by state in the gauges, a queued command in the queue depth."""

from __future__ import annotations

import json
import time

import httpx
import websockets.sync.client as ws_client
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.ocpp_clients import boot_payload, call


def scrape(node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_show_connects_boots_disconnects_states_and_the_command_queue(node):
    before = scrape(node)
    assert before[("ampgate_worker_connections", (("worker", "0"),))] == 0
    with ws_client.connect(f"{node.ocpp_url}/MET1", subprotocols=["ocpp1.6"]) as ws:
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        ws.send(text)
        assert json.loads(ws.recv(timeout=10))[1] == uid
        deadline = time.monotonic() + 10
        while True:
            during = scrape(node)
            if (
                during.get(("ampgate_worker_connections", (("worker", "0"),))) == 1
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.2)
    with node.api() as api:
        queued = api.post("/chargers/MET1/commands/Reset", json={"type": "Soft"}, params={"queue": "true"})
        assert queued.status_code == 202, queued.text
    deadline = time.monotonic() + 10
    while True:
        after = scrape(node)
        if (
            after.get(("ampgate_disconnects_total", (("reason", "charger_closed"),)))
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.2)
    assert during[("ampgate_worker_connections", (("worker", "0"),))] == 1
    assert during[("ampgate_chargers", (("state", "online"),))] == 1
    assert after[("ampgate_handshakes_total", (("protocol", "ocpp1.6"),))] == 1
    assert after[("ampgate_boots_total", (("status", "Accepted"),))] == 1
    assert after[("ampgate_disconnects_total", (("reason", "charger_closed"),))] == 1
    assert after[("ampgate_chargers", (("state", "offline"),))] == 1
    assert after[("ampgate_command_queue_depth", ())] == 1
    assert after[("ampgate_pump_batch_events_count", ())] >= 2
    assert (
        after[("ampgate_bus_events_published_total", ())] > before[("ampgate_bus_events_published_total", ())]
    )
    assert after[("ampgate_store_commits_total", ())] >= 1
