"""Unknown charger ids against a real node, driven with an independent client (`websockets`) and observed
through the API and /metrics only: an id that connects and never boots leaves no charger row and no presence
record behind; one that boots is recorded (the unknown-boot policy: accepted by default) and from then on is
known; new unknown ids beyond `--unknown-ids-per-minute` are refused HTTP 503 with a Retry-After at the
handshake, while registered and recorded chargers still connect."""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from typing import Any

import httpx
import websockets.sync.client as ws_client
from websockets.exceptions import InvalidStatus

from tests.integration.ocpp_clients import boot_payload, call

# Enough made-up ids to tell "forgotten" from "kept by chance", few enough to stay well under a second.
RANDOM_IDS = 25


def try_connect(stack: contextlib.ExitStack, node, charger_id: str) -> tuple[int, dict[str, str], Any]:
    """(101, {}, the open client, closed with `stack`) or (the refusal's status, its headers, None)."""
    try:
        ws = stack.enter_context(
            ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=["ocpp1.6"], open_timeout=10)
        )
    except InvalidStatus as e:
        return e.response.status_code, dict(e.response.headers), None
    return 101, {}, ws


def boot(ws) -> str:
    uid, text = call("BootNotification", boot_payload("ocpp1.6"))
    ws.send(text)
    reply = json.loads(ws.recv(timeout=10))
    assert reply[0] == 3 and reply[1] == uid, reply
    return str(reply[2]["status"])


def metric(node, name: str, labels: str = "") -> float:
    text = httpx.get(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10).text
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    assert m is not None, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def charger_ids(node) -> list[str]:
    r = node.get("/chargers?limit=1000")
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["items"]]


def poll(fetch, ok, timeout: float = 10.0):
    """`fetch()` until `ok` of it, or the deadline: returns the last value (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_unknown_ids_that_never_boot_leave_no_row_and_no_presence_and_a_boot_records_one(node_factory):
    node = node_factory("--unknown-ids-per-minute", "1000")
    rng = random.Random(15)
    ids = [f"RND-{rng.randrange(16**12):012x}" for _ in range(RANDOM_IDS)]
    assert charger_ids(node) == []
    assert metric(node, "ampgate_presence_records") == 0

    with contextlib.ExitStack() as stack:
        for cid in ids:
            status, _, _ = try_connect(stack, node, cid)
            assert status == 101, cid
        # All connected (so the node did hold them) ...
        assert poll(lambda: metric(node, "ampgate_presence_records"), lambda n: n == RANDOM_IDS) == RANDOM_IDS
    # ... and forgotten once they left without booting.
    assert poll(lambda: metric(node, "ampgate_presence_records"), lambda n: n == 0) == 0

    # An unknown id that boots is recorded (the default policy for unknown boots: Accepted).
    with contextlib.ExitStack() as stack:
        status, _, ws = try_connect(stack, node, "BOOTS-ONCE")
        assert status == 101
        assert boot(ws) == "Accepted"
        # The writer commits in order: once the boot's row is visible, every write queued before it (by the
        # random ids' connects and disconnects) is committed too, and none of them made a row.
        assert poll(lambda: charger_ids(node), lambda got: got != []) == ["BOOTS-ONCE"]
    # A recorded charger keeps its presence offline (last seen, drops); the made-up ids stay forgotten.
    assert poll(lambda: metric(node, "ampgate_presence_records"), lambda n: n == 1) == 1
    r = node.get("/chargers/BOOTS-ONCE/connectivity")
    assert r.status_code == 200 and r.json()["state"] == "offline", r.text
    assert node.get(f"/chargers/{ids[0]}").status_code == 404


def test_new_unknown_ids_beyond_the_rate_get_503_while_known_and_recorded_chargers_connect(node_factory):
    # One worker: its share is the whole budget, 3 new unknown ids a minute (one every 20 s: none refills
    # within this test).
    node = node_factory("--unknown-ids-per-minute", "3", "--admit-retry-max", "30")
    with node.api() as api:
        assert api.post("/chargers", json={"id": "KNOWN"}).status_code == 201

    with contextlib.ExitStack() as stack:
        results = {cid: try_connect(stack, node, cid) for cid in ("NEW-0", "NEW-1", "NEW-2")}
        assert [r[0] for r in results.values()] == [101, 101, 101]
        # NEW-0 boots: recorded, so the workers know it from now on.
        assert boot(results["NEW-0"][2]) == "Accepted"

        status, headers, _ = try_connect(stack, node, "NEW-3")
        assert status == 503
        assert 1 <= int(headers["retry-after"]) <= 30
        # A registered charger is never charged to the rate.
        for _ in range(3):
            status, _, _ = try_connect(stack, node, "KNOWN")
            assert status == 101
        results["NEW-0"][2].close()
        # Nor is one recorded at its boot: it reconnects although the bucket is empty (the workers hear of it
        # without waiting; poll for that, briefly, well before a token could refill).
        status, _, _ = poll(lambda: try_connect(stack, node, "NEW-0"), lambda r: r[0] == 101, timeout=5)
        assert status == 101
        # Another made-up id is still refused: the bucket is spent, not off.
        status, _, _ = try_connect(stack, node, "NEW-4")
        assert status == 503

    # The refusals are counted by reason (the workers report every 250 ms).
    refused = poll(
        lambda: metric(node, "ampgate_upgrades_refused_total", '{reason="admission_unknown_ids"}'),
        lambda n: n >= 2,
    )
    assert refused == 2
    s = node.get("/connectivity/summary").json()
    seen = s["rejections_this_minute"], s["rejections_last_minute"]
    assert sum(r["unknown_ids_busy"] for r in seen) == 2
    assert sum(r["busy"] for r in seen) == 2
    assert charger_ids(node) == ["KNOWN", "NEW-0"]
