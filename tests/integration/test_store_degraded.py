"""A locked database on a real node: another process holds SQLite's write lock. The node reports itself degraded
(health, metric, event) while chargers' heartbeats (which need no write) are still answered, and transaction
messages sent meanwhile are not acknowledged until their writes commit; released, each is committed and
acknowledged, and the node is ok again. Chargers are independent `websockets` clients."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import websockets.sync.client as ws_client

from tests.integration.ocpp_clients import boot_payload, call

# Every wait below polls against this deadline (a loaded 2-core box; each step takes well under a second).
WAIT = 20.0


def poll(fetch: Callable[[], Any], ok: Callable[[Any], bool], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}; last: {value!r}")
        time.sleep(0.05)


@contextlib.contextmanager
def booted(node: Any, charger_id: str) -> Iterator[Any]:
    with ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=["ocpp1.6"]) as ws:
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        ws.send(text)
        reply = json.loads(ws.recv(timeout=10))
        assert reply[1] == uid and reply[2]["status"] == "Accepted", reply
        yield ws


def answer(ws: Any, uid: str, timeout: float = 10.0) -> Any:
    """The reply to our CALL `uid` (the node's own CALLs, if any, are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if msg[0] in (3, 4) and msg[1] == uid:
            return msg


def health(node: Any) -> dict[str, Any]:
    r = httpx.get(f"{node.api_url}/health", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def metric(node: Any, line_start: str) -> float | None:
    text = httpx.get(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


def start_transaction(ws: Any, id_tag: str) -> str:
    uid, text = call(
        "StartTransaction",
        {"connectorId": 1, "idTag": id_tag, "meterStart": 1000, "timestamp": "2026-12-01T08:00:00Z"},
    )
    ws.send(text)
    return uid


def test_a_locked_database_degrades_the_node_which_keeps_answering_and_loses_nothing(node) -> None:
    with booted(node, "CP-HB") as hb, booted(node, "CP-TX1") as tx1, booted(node, "CP-TX2") as tx2:
        assert health(node)["status"] == "ok"
        # Another process takes the write lock (WAL: the node's reads go on).
        other = sqlite3.connect(str(node.db), isolation_level=None, timeout=30)
        try:
            other.execute("BEGIN EXCLUSIVE")
            uid1 = start_transaction(tx1, "TAG-1")
            uid2 = start_transaction(tx2, "TAG-2")
            report = poll(
                lambda: health(node), lambda h: h["status"] == "degraded", "the node reported degraded"
            )
            assert report["store"]["status"] == "degraded"
            assert report["store"]["reason"] == "locked"
            assert report["workers"] and all(w["alive"] for w in report["workers"])
            assert metric(node, 'ampgate_store_degraded{reason="locked"}') == 1.0
            # What needs no write is served: heartbeats are answered, the API reads.
            for _ in range(3):
                uid, text = call("Heartbeat", {})
                hb.send(text)
                reply = answer(hb, uid)
                assert reply[0] == 3 and "currentTime" in reply[2]
            assert node.get("/chargers/CP-TX1").status_code == 200
            # The transactions are not acknowledged: their writes have not committed.
            for ws in (tx1, tx2):
                with contextlib.suppress(TimeoutError):
                    msg = json.loads(ws.recv(timeout=0.3))
                    raise AssertionError(f"a reply before the commit: {msg!r}")
            other.execute("ROLLBACK")
        finally:
            other.close()
        # Released: each transaction message is committed, then acknowledged with its id.
        ids = []
        for ws, uid in ((tx1, uid1), (tx2, uid2)):
            reply = answer(ws, uid, timeout=WAIT)
            assert reply[0] == 3, reply
            ids.append(reply[2]["transactionId"])
        assert len(set(ids)) == 2
        poll(lambda: health(node), lambda h: h["status"] == "ok", "the node reported ok again")
        assert health(node)["store"]["reason"] is None
        assert metric(node, 'ampgate_store_degraded{reason="locked"}') == 0.0

    for tid, charger in zip(ids, ("CP-TX1", "CP-TX2"), strict=True):
        r = node.get(f"/transactions/{tid}")
        assert r.status_code == 200, r.text
        assert r.json()["charger_id"] == charger
    conn = sqlite3.connect(str(node.db))
    try:
        (rows,) = conn.execute("SELECT count(*) FROM transactions").fetchone()
    finally:
        conn.close()
    assert rows == 2
    # The events say what happened (newest first; the log writes them once the store writes again).
    events = poll(
        lambda: node.get("/events?type=store.degraded&type=store.recovered").json()["items"],
        lambda items: len(items) >= 2,
        "store.degraded and store.recovered in the event log",
    )
    assert [e["type"] for e in events] == ["store.recovered", "store.degraded"]
    assert events[0]["reason"] == "locked" and events[1]["reason"] == "locked"
    log = node.log()
    assert "Traceback" not in log, log
    assert "writes are failing, the store is locked" in log and "writes commit again" in log
