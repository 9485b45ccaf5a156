"""The event bus: publishing never blocks, every subscriber's buffer is bounded, a loss is counted and told to
the subscriber in order (events before it, the marker, events after it), filters by type, and closing ends a
subscriber's iteration."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
import trio
import trio.testing

from ampgate.bus import EventBus, EventsLost
from ampgate.events import AnyEvent, ChargerConnected, ChargerDisconnected, FirmwareStatusReported, event_type

AT = datetime(2026, 11, 30, 8, tzinfo=UTC)


def connected(i: int) -> ChargerConnected:
    return ChargerConnected(at=AT, charger_id=f"CP{i}", conn_id=i, protocol="ocpp1.6", remote_address="a")


def drain(sub) -> list[object]:
    out = []
    while (item := sub.receive_nowait()) is not None:
        out.append(item)
    return out


def test_events_carry_their_type_and_round_trip_as_json() -> None:
    ev = connected(1)
    assert event_type(ev) == "charger.connected"
    data = msgspec.json.encode(ev)
    assert msgspec.json.decode(data)["type"] == "charger.connected"
    assert msgspec.json.decode(data, type=AnyEvent) == ev
    with pytest.raises(AttributeError):
        ev.conn_id = 2  # type: ignore[misc]  # frozen


def test_a_full_buffer_loses_the_newest_and_says_how_many_in_order() -> None:
    bus = EventBus()
    sub = bus.subscribe(capacity=3)
    for i in range(5):
        bus.publish(connected(i))
    assert (sub.lost, bus.lost, bus.published) == (2, 2, 5)
    assert sub.pending() == 4  # three events and the loss not yet told
    # The three it still had, then the marker; then what came after the loss.
    assert drain(sub) == [connected(0), connected(1), connected(2), EventsLost(2)]
    bus.publish(connected(5))
    bus.publish(connected(6))
    assert drain(sub) == [connected(5), connected(6)]


def test_the_marker_waits_for_room_and_counts_every_loss_until_then() -> None:
    bus = EventBus()
    sub = bus.subscribe(capacity=2)
    for i in range(4):
        bus.publish(connected(i))  # 2 kept, 2 lost
    assert sub.receive_nowait() == connected(0)
    bus.publish(connected(4))  # room for the marker only: the event is lost too
    bus.publish(connected(5))  # still full
    assert sub.lost == 4
    # Nothing came between those losses: one gap, one marker counting all four.
    assert drain(sub) == [connected(1), EventsLost(4)]
    bus.publish(connected(6))
    assert drain(sub) == [connected(6)]


def test_a_slow_subscriber_never_slows_another_or_the_publisher() -> None:
    bus = EventBus()
    slow = bus.subscribe(capacity=1)
    fast = bus.subscribe(capacity=1000)
    for i in range(500):
        bus.publish(connected(i))
    assert slow.lost == 499 and fast.lost == 0
    assert len(drain(fast)) == 500


def test_subscribers_get_only_the_types_they_asked_for() -> None:
    bus = EventBus()
    fw = bus.subscribe({"firmware.status"})
    both = bus.subscribe({"firmware.status", "charger.disconnected"})
    everything = bus.subscribe()
    gone = ChargerDisconnected(at=AT, charger_id="CP1", conn_id=1, code=1006, reason="connection lost")
    status = FirmwareStatusReported(at=AT, charger_id="CP1", status="Installed", request_id=1)
    for ev in (connected(1), gone, status):
        bus.publish(ev)
    assert drain(fw) == [status]
    assert drain(both) == [gone, status]
    assert len(drain(everything)) == 3
    assert bus.subscribers() == 3
    fw.close()
    both.close()
    assert bus.subscribers() == 1
    bus.publish(status)
    assert drain(fw) == [] and drain(both) == []


def test_a_waiting_subscriber_wakes_and_ends_when_closed() -> None:
    async def main() -> None:
        bus = EventBus()
        sub = bus.subscribe()
        got: list[object] = []

        async def consume() -> None:
            async for item in sub:
                got.append(item)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            bus.publish(connected(1))
            await trio.testing.wait_all_tasks_blocked()
            assert got == [connected(1)]
            bus.publish(connected(2))
            sub.close()  # what was buffered is still delivered, then the iteration ends
        assert got == [connected(1), connected(2)]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe(capacity=0)


def test_every_event_class_is_one_of_the_published_types() -> None:
    """The events API accepts and lists the tags of AnyEvent: an Event subclass left out of it could be published
    but never filtered for or decoded from the log."""
    import ampgate.events as events

    defined = {
        c
        for c in vars(events).values()
        if isinstance(c, type) and issubclass(c, events.Event) and c is not events.Event
    }
    assert defined - set(AnyEvent.__args__) == set()
