"""Connectivity against a real node with independent clients (`websockets`, a raw socket, a separate process):
a frozen charger (SIGSTOP: no FIN, no pong) and one that stops reading go offline by ping timeout within the
bound; a charger that pings on its own stays online; a silent one goes stale even while it answers pings, and
online again when it speaks; flapping is marked and cleared; history, uptime, the summary and the charger
list's filters show it all; bad filters are refused naming the field."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import websockets.sync.client as ws_client

from tests.integration.ocpp_clients import RawWs, boot_payload, call, frame

# Pings every second, a pong due within a second: a dead link shows within ~3 s (the worker's timer works in
# whole seconds). Heartbeat interval 2 s with grace 1.5: stale after 3 s of silence.
FAST = ("--ping-interval", "1", "--ping-timeout", "1", "--heartbeat-interval", "2", "--stale-grace", "1.5")
WAIT = 15.0

FROZEN_CLIENT = """
import json, sys, time, uuid
import websockets.sync.client as c
with c.connect(sys.argv[1], subprotocols=["ocpp1.6"]) as ws:
    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
    ws.send(json.dumps([2, str(uuid.uuid4()), "BootNotification", boot]))
    ws.recv(timeout=10)
    print("booted", flush=True)
    while True:
        time.sleep(0.05)
        try:
            ws.recv(timeout=0)  # answers pings while running
        except TimeoutError:
            pass
"""


def poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def connectivity(node, charger_id: str) -> dict:
    r = node.get(f"/chargers/{charger_id}/connectivity")
    assert r.status_code == 200, r.text
    return r.json()


def history(node, charger_id: str) -> list[dict]:
    r = node.get(f"/chargers/{charger_id}/connectivity/history")
    assert r.status_code == 200, r.text
    return r.json()["items"]


@contextlib.contextmanager
def booted_ws(node, charger_id: str, protocol: str = "ocpp1.6") -> Iterator[Any]:
    """A `websockets` (sync) client of `charger_id`, booted."""
    with ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=[protocol]) as ws:
        uid, text = call("BootNotification", boot_payload(protocol))
        ws.send(text)
        assert json.loads(ws.recv(timeout=10))[1] == uid
        yield ws


def heartbeat(ws: Any) -> None:
    _, text = call("Heartbeat", {})
    ws.send(text)


def test_a_frozen_charger_goes_offline_by_ping_timeout_within_the_bound(node_factory):
    node = node_factory(*FAST)
    proc = subprocess.Popen(
        [sys.executable, "-c", FROZEN_CLIENT, f"{node.ocpp_url}/FROZEN1"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "booted"
        assert poll(lambda: connectivity(node, "FROZEN1"), lambda c: c["online"])["state"] == "online"
        frozen_at = time.monotonic()
        proc.send_signal(signal.SIGSTOP)  # no FIN, no pong: only the node's pings can tell
        c = poll(lambda: connectivity(node, "FROZEN1"), lambda c: not c["online"])
        took = time.monotonic() - frozen_at
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    assert c["state"] == "offline" and not c["online"]
    # Ping interval + ping timeout (2 s), in the worker's whole-second ticks, plus the pump: well inside 90 s.
    assert took < 6.0, took
    assert c["last_disconnect"]["reason"] == "no answer to ping"
    gone, up = history(node, "FROZEN1")[:2]
    assert (gone["state"], gone["reason"], up["state"], up["reason"]) == (
        "offline",
        "no answer to ping",
        "online",
        "connected",
    )
    assert gone["duration_s"] is not None and gone["duration_s"] > 0


def test_a_charger_that_stops_reading_goes_offline_and_one_that_pings_stays(node_factory):
    node = node_factory(*FAST)
    with RawWs(node.ocpp_port, "/ocpp/DEAF1") as raw, booted_ws(node, "LIVELY1") as lively:
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        raw.send(frame(0x1, text.encode()))
        opcode, payload = raw.read_frame()
        assert opcode == 0x1 and json.loads(payload)[1] == uid
        # From here the raw client reads nothing and answers no ping. The other pings on its own (every 0.3 s)
        # and sends its heartbeats: never pinged by the node, never silent.
        deadline = time.monotonic() + 5.0
        next_heartbeat = 0.0
        while time.monotonic() < deadline:
            lively.ping()
            if time.monotonic() >= next_heartbeat:
                uid, text = call("Heartbeat", {})
                lively.send(text)
                assert json.loads(lively.recv(timeout=5))[1] == uid
                next_heartbeat = time.monotonic() + 1.0
            time.sleep(0.3)
        deaf = poll(lambda: connectivity(node, "DEAF1"), lambda c: not c["online"], timeout=5)
        alive = connectivity(node, "LIVELY1")
    assert deaf["state"] == "offline" and deaf["last_disconnect"]["reason"] == "no answer to ping"
    assert alive["state"] == "online" and alive["online"]
    assert alive["last_heartbeat_at"] is not None and alive["connects_today"] == 1


def test_a_silent_charger_goes_stale_while_its_pings_pass_and_online_when_it_speaks(node_factory):
    node = node_factory(*FAST)
    # The websockets client answers the node's pings by itself (while this test reads), so the link stays up.
    with booted_ws(node, "QUIET1") as ws:

        def fetch() -> dict:
            with contextlib.suppress(TimeoutError):
                ws.recv(timeout=0.05)
            return connectivity(node, "QUIET1")

        stale = poll(fetch, lambda c: c["state"] == "stale")
        heartbeat(ws)
        back = poll(fetch, lambda c: c["state"] == "online")
        reasons = [(h["state"], h["reason"]) for h in history(node, "QUIET1")]
    closed = history(node, "QUIET1")[0]
    assert stale["state"] == "stale" and stale["online"], stale
    # Its pings pass: the last one's round trip is shown (loopback: well under a second), with its time.
    assert stale["ping_rtt_ms"] is not None and 0 < stale["ping_rtt_ms"] < 1000, stale
    assert stale["last_pong_at"] is not None
    assert back["state"] == "online"
    assert reasons[:3] == [
        ("online", "message received"),
        ("stale", "heartbeat timeout"),
        ("online", "connected"),
    ]
    # Its own close (1000, no reason given) ends the history.
    assert (closed["state"], closed["reason"], closed["code"]) == ("offline", "closed by the charger", 1000)
    events = node.get("/chargers/QUIET1/connectivity/history?limit=1").json()
    assert len(events["items"]) == 1 and events["next_cursor"] is not None


def test_flapping_is_marked_then_cleared_and_the_list_filters_and_summary_show_it(node_factory):
    node = node_factory(*FAST, "--flap-count", "2", "--flap-window", "60", "--flap-clear", "2")
    for _ in range(3):
        with booted_ws(node, "FLAP1"):
            pass
    flapping = poll(lambda: connectivity(node, "FLAP1"), lambda c: c["flapping"])
    listed = node.get("/chargers?flapping=true").json()["items"]
    offline = node.get("/chargers?online=false").json()["items"]
    since_past = node.get("/chargers?offline_since=2000-01-01T00:00:00Z").json()["items"]
    since_now = node.get("/chargers?offline_since=2999-01-01T00:00:00Z").json()["items"]
    summary_flapping = node.get("/connectivity/summary").json()
    with booted_ws(node, "FLAP1") as ws:

        def fetch() -> dict:
            with contextlib.suppress(TimeoutError):
                ws.recv(timeout=0.05)
            heartbeat(ws)
            return connectivity(node, "FLAP1")

        cleared = poll(fetch, lambda c: not c["flapping"])
        online = node.get("/chargers?online=true&state=online").json()["items"]
        summary = node.get("/connectivity/summary").json()
    assert flapping["flapping"] and flapping["flapping_since"] is not None
    assert flapping["connects_today"] == 3 and flapping["last_disconnect"]["code"] is not None
    assert [c["id"] for c in listed] == ["FLAP1"]
    assert [c["id"] for c in offline] == ["FLAP1"]
    assert since_past == [] and [c["id"] for c in since_now] == ["FLAP1"]
    assert summary_flapping["flapping"] == 1 and summary_flapping["offline"] == 1
    assert summary_flapping["connects_this_minute"] + summary_flapping["connects_last_minute"] >= 3
    assert not cleared["flapping"]
    assert [c["id"] for c in online] == ["FLAP1"]
    assert (summary["online"], summary["offline"], summary["flapping"], summary["registered"]) == (1, 0, 0, 1)
    assert summary["by_protocol"] == {"ocpp1.6": {"online": 1, "stale": 0}}
    uptime = connectivity(node, "FLAP1")["uptime"]
    assert len(uptime) == 7 and 0 < uptime[-1]["ratio"] <= 1 and uptime[0]["ratio"] == 0


def test_bad_connectivity_input_names_the_field(node):
    with booted_ws(node, "BADC1"):
        pass
    cases = {
        "/chargers?state=asleep": (422, "state"),
        "/chargers?offline_since=yesterday": (422, "offline_since"),
        "/chargers?online=maybe": (422, "online"),
        "/chargers/BADC1/connectivity?days=0": (422, "days"),
        "/chargers/BADC1/connectivity?days=91": (422, "days"),
        "/chargers/BADC1/connectivity/history?cursor=x": (422, "cursor"),
        "/chargers/BADC1/connectivity/history?since=never": (422, "since"),
        "/chargers/NOBODY/connectivity": (404, "id"),
        "/chargers/NOBODY/connectivity/history": (404, "id"),
    }
    for path, (status, field) in cases.items():
        r = node.get(path)
        assert (r.status_code, r.json().get("field")) == (status, field), (path, r.text)
