"""The event log against a real node: the history (`GET /api/v1/events`) filtered by type and charger with
cursors, and the live stream (`GET /api/v1/events/stream`, Server-Sent Events) read by httpx, a client nobody
on the team wrote: connect and disconnect events arrive live, and a stream resumed with Last-Event-ID gets what
it missed, in order, once."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import httpx
import websockets.sync.client as ws_client

from tests.integration.ocpp_clients import boot_payload, call


def charger_session(node, charger_id: str) -> None:
    with ws_client.connect(f"{node.ocpp_url}/{charger_id}", subprotocols=["ocpp1.6"]) as ws:
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        ws.send(text)
        assert json.loads(ws.recv(timeout=10))[1] == uid


class SseReader:
    """Reads an SSE stream in a thread: each message as {"id", "event", "data"} on `messages`."""

    def __init__(self, node, params: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(
            base_url=node.api_url,
            headers={"Authorization": f"Bearer {node.admin_token}", **(headers or {})},
            timeout=httpx.Timeout(30, read=None),
        )
        self._thread = threading.Thread(target=self._run, args=(params,), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _run(self, params: dict[str, Any]) -> None:
        try:
            self._read(params)
        except Exception:
            if not self._stop.is_set():  # closing the client under the read ends it with an error
                raise

    def _read(self, params: dict[str, Any]) -> None:
        with self._client.stream("GET", "/events/stream", params=params) as r:
            self.status = r.status_code
            self.opened.set()
            msg: dict[str, Any] = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if not line:
                    if msg:
                        self.messages.put(msg)
                    msg = {}
                elif line.startswith(":"):
                    continue
                else:
                    key, _, value = line.partition(":")
                    msg[key] = value.lstrip(" ")

    def take(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            try:
                out.append(self.messages.get(timeout=0.1))
            except queue.Empty:
                pass
        return out

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def test_the_history_filters_by_type_and_charger_with_cursors(node):
    charger_session(node, "EVH1")
    charger_session(node, "EVH2")
    r = node.get("/events?charger_id=EVH1&type=charger.connected&type=charger.disconnected&limit=1")
    assert r.status_code == 200, r.text
    first = r.json()
    assert [e["type"] for e in first["items"]] == ["charger.disconnected"]
    assert first["items"][0]["charger_id"] == "EVH1" and first["next_cursor"] is not None
    rest = node.get(
        f"/events?charger_id=EVH1&type=charger.connected&type=charger.disconnected&cursor={first['next_cursor']}"
    ).json()
    assert [e["type"] for e in rest["items"]] == ["charger.connected"]
    assert rest["items"][0]["id"] < first["items"][0]["id"] and rest["next_cursor"] is None
    booted = node.get("/events?type=charger.booted").json()["items"]
    assert {e["charger_id"] for e in booted} == {"EVH1", "EVH2"}
    for path, field in [
        ("/events?type=charger.exploded", "type"),
        ("/events?since=soon", "since"),
        ("/events?cursor=abc", "cursor"),
        ("/events/stream?type=nope", "type"),
    ]:
        bad = node.get(path)
        assert (bad.status_code, bad.json()["field"]) == (422, field), path


def test_the_live_stream_delivers_connects_and_a_resumed_stream_gets_what_it_missed(node):
    reader = SseReader(node, {"charger_id": "EVS1"})
    try:
        assert reader.status == 200
        charger_session(node, "EVS1")
        charger_session(node, "OTHER1")  # filtered out
        live = reader.take(3)
    finally:
        reader.close()
    assert [m["event"] for m in live] == ["charger.connected", "charger.booted", "charger.disconnected"]
    assert all(json.loads(m["data"])["charger_id"] == "EVS1" for m in live)
    ids = [int(m["id"]) for m in live]
    assert ids == sorted(ids)
    # Resumed after the first: the other two again, once, in order (from the log's ring), then live.
    resumed = SseReader(node, {"charger_id": "EVS1"}, headers={"Last-Event-ID": str(ids[0])})
    try:
        again = resumed.take(2)
        charger_session(node, "EVS1")
        later = resumed.take(3)
    finally:
        resumed.close()
    assert [int(m["id"]) for m in again] == ids[1:]
    assert [m["event"] for m in later] == ["charger.connected", "charger.booted", "charger.disconnected"]
    assert int(later[0]["id"]) > ids[-1]
