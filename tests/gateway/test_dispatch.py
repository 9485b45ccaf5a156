"""The gateway's pump in-process: one drained batch is handed on in order (connections to the link listener,
messages to the sink, replies back in one batch), a connection of a worker generation that died is ignored, the
workers' own events stay in the gateway, and a failure on one event does not stop the rest."""

from __future__ import annotations

from typing import Any

import pytest

from ampgate import _native
from ampgate.config import NodeConfig
from ampgate.gateway import Gateway, WorkerInfo

GEN1 = 0 << 56 | 1 << 40
GEN2 = 0 << 56 | 2 << 40


class Hub:
    def __init__(self) -> None:
        self.sent: list[list[tuple[int, bytes]]] = []

    def send(self, batch: list[tuple[int, bytes]]) -> None:
        self.sent.append(batch)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def connected(self, *args: Any) -> None:
        self.calls.append(("connected", *args))

    def disconnected(self, *args: Any) -> None:
        self.calls.append(("disconnected", *args))

    def worker_lost(self, *args: Any) -> None:
        self.calls.append(("worker_lost", *args))

    def pong(self, *args: Any) -> None:
        self.calls.append(("pong", *args))

    def begin_batch(self) -> None:
        self.calls.append(("begin",))

    def on_message(self, conn_id: int, data: bytes, out: list[tuple[int, bytes]]) -> None:
        if data == b"boom":
            raise RuntimeError("a bug in a handler")
        self.calls.append(("message", conn_id, data))
        out.append((conn_id, b"reply:" + data))


def gateway() -> tuple[Gateway, Hub, Recorder]:
    hub, rec = Hub(), Recorder()
    gw = Gateway(NodeConfig(), hub, rec, rec, lambda limit, after: [])  # type: ignore[arg-type]
    gw.workers[0] = WorkerInfo(worker=0, generation=2, alive=True)
    return gw, hub, rec


def test_a_batch_is_handed_on_in_order_and_replies_go_back_in_one_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gw, hub, rec = gateway()
    gw.dispatch(
        [
            (_native.CONNECTED, GEN1 | 1, "OLD", "ocpp1.6", "p", 1.0),  # the dead generation: ignored
            (_native.CONNECTED, GEN2 | 1, "CP1", "ocpp1.6", "p", 2.0),
            (_native.MESSAGE, GEN2 | 1, b"one"),
            (_native.MESSAGE, GEN2 | 1, b"boom"),
            (_native.MESSAGE, GEN2 | 1, b"two"),
            (_native.STATS, 0, 17, False, 4096, (5, 2, 1, 0, 0, 0)),
            (_native.PONG, GEN2 | 1, 0.004, 2.5),
            (_native.DISCONNECTED, GEN2 | 1, 1000, "bye", 3.0),
        ]
    )
    assert rec.calls == [
        ("begin",),
        ("connected", GEN2 | 1, "CP1", "ocpp1.6", "p", 2.0),
        ("message", GEN2 | 1, b"one"),
        ("message", GEN2 | 1, b"two"),
        ("pong", GEN2 | 1, 0.004, 2.5),
        ("disconnected", GEN2 | 1, 1000, "bye", 3.0),
    ]
    assert hub.sent == [[(GEN2 | 1, b"reply:one"), (GEN2 | 1, b"reply:two")]]
    assert gw.workers[0].connections == 17 and gw.workers[0].heap_bytes == 4096
    assert gw.handshakes.totals["upgrades"] == 5 and gw.handshakes.totals["refused_rate"] == 2
    assert "a bug in a handler" in caplog.text


def test_a_batch_without_replies_sends_nothing() -> None:
    gw, hub, rec = gateway()
    gw.dispatch([(_native.WORKER_UP, 0, 2, 1234)])
    assert hub.sent == [] and rec.calls == [("begin",)]
