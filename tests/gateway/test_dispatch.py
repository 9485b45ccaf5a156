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
        self.sessions: set[int] = set()

    def connected(self, *args: Any) -> None:
        self.calls.append(("connected", *args))
        self.sessions.add(args[0])

    def disconnected(self, *args: Any) -> None:
        self.calls.append(("disconnected", *args))
        self.sessions.discard(args[0])

    def knows(self, conn_id: int) -> bool:
        return conn_id in self.sessions

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
            (_native.CONNECTED, GEN1 | 1, "OLD", "ocpp1.6", "p", 1.0, 1),  # the dead generation: ignored
            (_native.CONNECTED, GEN2 | 1, "CP1", "ocpp1.6", "p", 2.0, 1),
            (_native.MESSAGE, GEN2 | 1, b"one"),
            (_native.MESSAGE, GEN2 | 1, b"boom"),
            (_native.MESSAGE, GEN2 | 1, b"two"),
            (_native.STATS, 0, 17, False, 4096, (5, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
            (_native.PONG, GEN2 | 1, 0.004, 2.5),
            (_native.DISCONNECTED, GEN2 | 1, 1000, "bye", 3.0),
        ]
    )
    # The pong has no order to keep (handled at once; for a connection not yet known it finds nobody); the
    # connection's own events keep theirs.
    assert rec.calls == [
        ("begin",),
        ("pong", GEN2 | 1, 0.004, 2.5),
        ("connected", GEN2 | 1, "CP1", "ocpp1.6", "p", 2.0, 1),
        ("message", GEN2 | 1, b"one"),
        ("message", GEN2 | 1, b"two"),
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


def test_a_connected_chargers_messages_go_before_a_storms_backlog_and_are_answered_at_once() -> None:
    gw, hub, rec = gateway()
    known = GEN2 | 1
    gw.dispatch([(_native.CONNECTED, known, "CP1", "ocpp1.6", "p", 1.0, 1)])
    rec.calls.clear()
    storm = [(_native.DISCONNECTED, GEN2 | i, 1006, "gone", 2.0) for i in range(100, 600)]
    storm += [(_native.CONNECTED, GEN2 | i, f"CP{i}", "ocpp1.6", "p", 3.0, 1) for i in range(700, 1200)]
    # The known charger's heartbeat arrives behind 1,000 connection events; a new charger's first message
    # behind its own Connected.
    storm += [(_native.MESSAGE, known, b"hb"), (_native.MESSAGE, GEN2 | 700, b"boot")]
    gw.dispatch(storm, slice_s=None)
    assert rec.calls[1] == ("message", known, b"hb")
    assert hub.sent[0] == [(known, b"reply:hb")], "answered before the backlog was handled"
    names = [c[0] for c in rec.calls]
    assert names.count("disconnected") == 500 and names.count("connected") == 500
    # The new charger's message waited for its Connected.
    assert rec.calls.index(("message", GEN2 | 700, b"boot")) > rec.calls.index(
        ("connected", GEN2 | 700, "CP700", "ocpp1.6", "p", 3.0, 1)
    )
    assert hub.sent[1] == [(GEN2 | 700, b"reply:boot")]
    assert gw.backlog == 0


def test_the_backlog_is_handled_in_slices_and_a_charger_with_events_waiting_keeps_its_order() -> None:
    gw, _hub, rec = gateway()
    known = GEN2 | 1
    gw.dispatch([(_native.CONNECTED, known, "CP1", "ocpp1.6", "p", 1.0, 1)])
    rec.calls.clear()
    events = [(_native.CONNECTED, GEN2 | i, f"CP{i}", "ocpp1.6", "p", 2.0, 1) for i in range(10, 300)]
    events += [(_native.DISCONNECTED, known, 1000, "", 3.0)]
    gw.dispatch(events, slice_s=0.0)
    # Time ran out after the first 64 events: the rest wait, in order.
    assert 0 < gw.backlog < len(events)
    # The known charger's Disconnected waits in the backlog: a message of it after that (none would come from a
    # worker, but a reconnect under the same id would) must not overtake it.
    gw.dispatch([(_native.MESSAGE, known, b"late")], slice_s=None)
    assert gw.backlog == 0
    own = [c[0] for c in rec.calls if len(c) > 1 and c[1] == known]
    assert own == ["disconnected", "message"]
    assert [c[1] for c in rec.calls if c[0] == "connected"] == [GEN2 | i for i in range(10, 300)]


def test_a_full_backlog_stops_taking_events_from_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past BACKLOG_MAX waiting events the pump leaves new ones in the hub (whose bound pushes back on the
    workers) and works the backlog off first."""
    import trio

    from ampgate.gateway import supervisor

    monkeypatch.setattr(supervisor, "BACKLOG_MAX", 100)
    # No time per turn: each turn handles one 64-event check's worth of backlog.
    monkeypatch.setattr(supervisor, "BACKLOG_SLICE", 0.0)
    gw, hub, rec = gateway()
    drains: list[int] = []
    batches = [[(_native.CONNECTED, GEN2 | i, f"CP{i}", "ocpp1.6", "p", 1.0, 1) for i in range(300)]]

    class Source:
        def wake_fd(self) -> int:
            return -1

        def drain(self) -> list:
            drains.append(gw.backlog)
            return batches.pop(0) if batches else []

        def send(self, batch: list) -> None:
            hub.sent.append(batch)

    gw.hub = Source()  # type: ignore[assignment]

    async def no_wait(fd: int) -> None:
        await trio.lowlevel.checkpoint()

    async def main() -> None:
        monkeypatch.setattr(trio.lowlevel, "wait_readable", no_wait)
        with trio.move_on_after(1):
            await gw._pump()

    trio.run(main)
    # The first drain took 300 events and one turn handled 64: while 100 or more waited, the hub was left alone
    # (two turns), then drained again.
    assert drains[0] == 0 and drains[1] < 100, drains
    assert len([n for n in drains if n > 0]) <= 2, drains
    assert [c[1] for c in rec.calls if c[0] == "connected"] == [GEN2 | i for i in range(300)]


def test_a_full_store_stops_the_pump_taking_batches_until_it_has_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the store's write queue (or the replies awaiting commits) is full the pump drains nothing: what
    arrives stays in the hub, whose bound makes the workers stop reading. With room again, it drains."""
    import trio

    rec = Recorder()
    drains: list[bool] = []

    class Room:
        def __init__(self) -> None:
            self.is_full = True
            self.room = trio.Event()

        def full(self) -> bool:
            return self.is_full

        async def wait_room(self) -> None:
            await self.room.wait()

    room = Room()
    gw = Gateway(NodeConfig(), Hub(), rec, rec, lambda limit, after: [], room=room)  # type: ignore[arg-type]
    gw.workers[0] = WorkerInfo(worker=0, generation=2, alive=True)

    class Source:
        def wake_fd(self) -> int:
            return -1

        def drain(self) -> list:
            drains.append(room.is_full)
            return [(_native.CONNECTED, GEN2 | 1, "CP1", "ocpp1.6", "p", 1.0, 1)] if len(drains) == 1 else []

        def send(self, batch: list) -> None:
            pass

    gw.hub = Source()  # type: ignore[assignment]

    async def no_wait(fd: int) -> None:
        await trio.lowlevel.checkpoint()

    async def main() -> None:
        monkeypatch.setattr(trio.lowlevel, "wait_readable", no_wait)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gw._pump)
            for _ in range(50):
                await trio.lowlevel.checkpoint()
            assert drains == [] and gw.held == 1 and rec.calls == []
            room.is_full = False
            room.room.set()
            for _ in range(50):
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert drains and not any(drains)
    assert ("connected", GEN2 | 1, "CP1", "ocpp1.6", "p", 1.0, 1) in rec.calls
