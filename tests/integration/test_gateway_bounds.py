"""The gateway workers' bounds per charger and per worker, on a real node with independent clients (`websockets`,
and a raw socket for what no library sends: a burst in one write, half a frame):

- CALLs a charger pipelines wait in the worker and are answered in the order sent; one more than
  `--max-pending-calls` closes the connection with 1008 and a reason, not a CALLERROR;
- a charger over `--charger-msg-rate` / `--charger-msg-burst` is closed with 1008 and a reason;
- a worker over `--worker-buffer-budget-mb` closes the connections holding the most with 1013, and a charger
  holding nothing keeps being served;
- each is counted under its own reason in /metrics.

Nothing here waits on wall-clock timing: a burst goes out in one write (the worker reads it in one go, before
any answer can come back), and everything else is polled with a deadline."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets.sync.client as ws_client

from tests.conftest import RunningNode, start_node
from tests.integration.ocpp_clients import RawWs, boot_payload, call, frame

PENDING = 2
BURST = 20
# The smallest budget the node takes with the default --max-message (1 MiB) and write queue (4 MiB).
BUDGET_MB = 5
SETTINGS = (
    "--max-pending-calls", str(PENDING),
    "--charger-msg-rate", "5",
    "--charger-msg-burst", str(BURST),
    "--worker-buffer-budget-mb", str(BUDGET_MB),
)  # fmt: skip
TEXT = 0x1
CLOSE = 0x8


@pytest.fixture(scope="module")
def bounded_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    node = start_node(tmp_path_factory.mktemp("bounds"), *SETTINGS)
    try:
        yield node
    finally:
        node.stop()


def close_of(ws: RawWs) -> tuple[int, str, list[str]]:
    """Read until the server's close frame: (code, reason, the texts before it)."""
    texts = []
    while True:
        op, payload = ws.read_frame()
        if op == CLOSE:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode(), texts
        if op == TEXT:
            texts.append(payload.decode())


def metric(node: RunningNode, line: str, timeout: float = 10.0) -> float:
    """The value of the /metrics sample `line` (name and labels) once it is above 0, polled with a deadline
    (worker counts arrive with their stats, four times a second)."""
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(f"http://127.0.0.1:{node.api_port}/metrics", timeout=10).text
        values = [float(s.rsplit(" ", 1)[1]) for s in text.splitlines() if s.startswith(line + " ")]
        if (values and values[0] > 0) or time.monotonic() > deadline:
            return values[0] if values else 0.0
        time.sleep(0.1)


def heartbeat_answered(node: RunningNode, ws) -> bool:
    uid, text = call("Heartbeat", {})
    ws.send(text)
    return json.loads(ws.recv(timeout=10))[1] == uid


def test_pipelined_calls_are_answered_in_order_and_one_too_many_closes_1008(bounded_node) -> None:
    node = bounded_node
    # Within the bound: the first CALL and PENDING more, sent without waiting, answered in the order sent.
    with ws_client.connect(f"{node.ocpp_url}/PIPE1", subprotocols=["ocpp1.6"], open_timeout=10) as ws:
        uid, text = call("BootNotification", boot_payload("ocpp1.6"))
        ws.send(text)
        assert json.loads(ws.recv(timeout=10))[:2] == [3, uid]
        ids = []
        for _ in range(1 + PENDING):
            uid, text = call("Heartbeat", {})
            ids.append(uid)
            ws.send(text)
        answers = [json.loads(ws.recv(timeout=10)) for _ in ids]
        assert [a[1] for a in answers] == ids
        assert all(a[0] == 3 for a in answers), answers
        assert heartbeat_answered(node, ws)
    # One more than that in one write: the worker holds PENDING behind the first and closes on the next.
    with RawWs(node.ocpp_port, "/ocpp/PIPE2") as raw:
        calls = [call("BootNotification", boot_payload("ocpp1.6"))]
        calls += [call("Heartbeat", {}) for _ in range(PENDING + 1)]
        raw.send(b"".join(frame(TEXT, text.encode()) for _, text in calls))
        code, reason, texts = close_of(raw)
    assert code == 1008
    assert "too many CALLs" in reason, reason
    # No CALLERROR for any of them: only the first can have been answered (the close drops the held ones).
    assert all(json.loads(t)[0] == 3 for t in texts) and len(texts) <= 1, texts
    assert metric(node, 'ampgate_connections_shed_total{reason="pending_calls"}') == 1
    assert metric(node, 'ampgate_disconnects_total{reason="pending_calls"}') == 1


def test_a_charger_over_its_message_rate_is_closed_1008(bounded_node) -> None:
    node = bounded_node
    # Replies to calls the node never made: no CALL waits, so only the rate limits them.
    with RawWs(node.ocpp_port, "/ocpp/RATE1") as raw:
        raw.send(b"".join(frame(TEXT, f'[3,"r{i}",{{}}]'.encode()) for i in range(BURST * 3)))
        code, reason, _ = close_of(raw)
    assert code == 1008
    assert "message rate" in reason, reason
    assert metric(node, 'ampgate_connections_shed_total{reason="msg_rate"}') == 1
    # Per connection: another charger is served as usual.
    with ws_client.connect(f"{node.ocpp_url}/RATE2", subprotocols=["ocpp1.6"], open_timeout=10) as ws:
        assert heartbeat_answered(node, ws)


def test_over_its_buffer_budget_a_worker_closes_the_largest_and_serves_the_rest(bounded_node) -> None:
    node = bounded_node
    budget = BUDGET_MB << 20
    with ws_client.connect(f"{node.ocpp_url}/SMALL", subprotocols=["ocpp1.6"], open_timeout=10) as small:
        assert heartbeat_answered(node, small)
        # Hogs each send 900 KB of a 1 MB message and stop: together well over the budget.
        part = frame(TEXT, b"x" * 1_000_000)[:900_000]
        hogs = [RawWs(node.ocpp_port, f"/ocpp/HOG{i}") for i in range(budget // 900_000 + 2)]
        try:
            for h in hogs:
                h.send(part)
            # Some hog goes with 1013 and the budget's reason; the charger that holds nothing stays served.
            assert metric(node, 'ampgate_connections_shed_total{reason="buffer_budget"}') >= 1
            assert metric(node, 'ampgate_disconnects_total{reason="buffer_budget"}') >= 1
            assert heartbeat_answered(node, small)
            codes = []
            for h in hogs:
                h.sock.settimeout(0.5)
                try:
                    codes.append(close_of(h)[:2])
                except (TimeoutError, ConnectionError):
                    pass  # Not closed (or dropped without a close frame while its bytes were queued).
            # The largest go first, only until the worker is under its budget again: not every hog.
            assert 1 <= len(codes) < len(hogs), codes
            assert all(
                c == (1013, "worker buffer budget exceeded: this connection held the most") for c in codes
            )
        finally:
            for h in hogs:
                h.sock.close()
