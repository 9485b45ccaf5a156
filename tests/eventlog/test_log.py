"""The event log over a real Store: events numbered in order and kept; a resumed stream gets what it missed from
the table and the ring with no gap or duplicate; a stream that falls behind gets one loss marker, never blocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.eventlog import EventLog, EventRepository
from ampgate.eventlog import service as log_service
from ampgate.eventlog.service import Entry, Stream
from ampgate.events import ChargerFlapping
from ampgate.store import Store

AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def entry(i: int, type_: str = "charger.flapping", charger: str | None = "CP") -> Entry:
    return Entry(i, type_, charger, AT, b"{}")


def test_a_full_stream_keeps_what_it_has_and_counts_the_rest_in_one_marker() -> None:
    s = Stream(None, None, capacity=3)
    for i in range(1, 7):
        s.offer(entry(i))
    assert list(s.queue) == [entry(1), entry(2), entry(3), 3]


def test_a_stream_takes_only_its_type_and_charger_but_always_the_loss_marker() -> None:
    s = Stream(frozenset({"charger.connected"}), "CP1", capacity=10)
    s.offer(entry(1, "charger.connected", "CP1"))
    s.offer(entry(2, "charger.connected", "CP2"))
    s.offer(entry(3, "charger.booted", "CP1"))
    s.offer(entry(4, log_service.LOST_TYPE, None))
    assert [e.id for e in s.queue if isinstance(e, Entry)] == [1, 4]


def test_a_resumed_stream_gets_the_table_then_the_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_service, "RING", 4)

    async def main() -> None:
        store = Store(str(tmp_path / "e.db"))
        bus = EventBus()
        log = EventLog(bus, EventRepository(store), Clock())
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await nursery.start(log.run)
            for i in range(10):
                bus.publish(ChargerFlapping(at=AT, charger_id=f"CP{i}", flapping=True, drops=i))
            with trio.fail_after(5):
                while log.logged < 10 or len(EventRepository(store).page(100)) < 10:  # noqa: ASYNC110
                    await trio.sleep(0.01)
            stream, missed = log.open_stream(None, None, 2)
            assert [e.id for e in missed] == list(range(3, 11))
            assert [json.loads(e.data)["drops"] for e in missed] == list(range(2, 10))
            _, none = log.open_stream(["charger.flapping"], "CP9", 10)
            assert none == []
            bus.publish(ChargerFlapping(at=AT, charger_id="CP10", flapping=False, drops=0))
            with trio.fail_after(5):
                nxt = await stream.next()
            assert isinstance(nxt, Entry) and nxt.id == 11
            log.close_stream(stream)
            assert log.streams == 1
            nursery.cancel_scope.cancel()

    trio.run(main)
