"""The in-process event bus: what changed, told to whoever listens, without ever slowing the part that changed it.

Publishing is synchronous and cheap (a loop over the subscribers whose filter matches, an append each): the OCPP
handlers publish from inside the gateway pump. Every subscriber has a bounded buffer; when it is full, the
subscriber loses the event, the loss is counted (per subscriber and on the bus), and the subscriber is told: the
next thing it receives after the events it still had is an `EventsLost` marker with how many it missed. Nothing
here ever blocks or slows the publisher.

Events are hints. A subscriber whose correctness depends on state (a load ticker, a campaign runner, a roaming
push) must not rebuild that state from events alone: after an `EventsLost`, and periodically anyway, it reads the
current state from the part that owns it (reconciles). A subscriber that only shows or forwards events (a live
stream) passes the loss on.

Everything runs on the trio thread: no locks.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Protocol

import msgspec
import trio

from ampgate.events import Event, event_type

# A subscriber's buffer when it names none: a second of the busiest events at fleet size (transaction updates
# of 100k chargers metering every minute are ~1,700/s) fits, so a subscriber that is merely slow for a moment
# loses nothing, while one that stopped reading costs at most this many small objects.
DEFAULT_CAPACITY = 4096


class EventsLost(msgspec.Struct, frozen=True):
    """Delivered in place of events a subscriber's full buffer could not take: `count` of them are gone.
    Everything received before it came before the loss, everything after it came after."""

    count: int


class Publisher(Protocol):
    """What a part that publishes needs: `publish(event)`."""

    def publish(self, event: Event) -> None: ...


class Subscription:
    """One subscriber's bounded buffer. Iterate it (`async for ev in sub`) or `await sub.receive()`; each item
    is an Event or an EventsLost. Close it (or leave its `with` block) to stop receiving."""

    def __init__(self, bus: EventBus, types: frozenset[str] | None, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a subscription holds at least one event")
        self._bus = bus
        self.types = types
        self.capacity = capacity
        self._queue: collections.deque[Event | EventsLost] = collections.deque()
        self._lot = trio.lowlevel.ParkingLot()
        # Events lost since the last EventsLost was queued; queued as a marker as soon as there is room.
        self._unreported = 0
        self.lost = 0  # every event this subscriber lost, ever
        self.closed = False

    def _offer(self, event: Event) -> None:
        q = self._queue
        if self._unreported and len(q) < self.capacity:
            # The marker is owed before anything newer; it takes a slot like an event.
            q.append(EventsLost(self._unreported))
            self._unreported = 0
        if len(q) < self.capacity:
            q.append(event)
        else:
            self.lost += 1
            self._bus.lost += 1
            if q and isinstance(q[-1], EventsLost):
                # Nothing was queued after the last marker: this loss is part of the same gap.
                q[-1] = EventsLost(q[-1].count + 1)
            else:
                self._unreported += 1
        if self._lot:  # a receiver waits (a ParkingLot is falsy when empty: no call per event otherwise)
            self._lot.unpark_all()

    def receive_nowait(self) -> Event | EventsLost | None:
        """The next item, or None if none is waiting."""
        if self._queue:
            return self._queue.popleft()
        if self._unreported:
            lost, self._unreported = self._unreported, 0
            return EventsLost(lost)
        return None

    async def receive(self) -> Event | EventsLost:
        """Wait for the next item. Raises trio.EndOfChannel once closed and drained."""
        while True:
            item = self.receive_nowait()
            if item is not None:
                await trio.lowlevel.checkpoint()
                return item
            if self.closed:
                raise trio.EndOfChannel
            await self._lot.park()

    def pending(self) -> int:
        """Items waiting (lost events not yet reported count as one)."""
        return len(self._queue) + (1 if self._unreported else 0)

    def close(self) -> None:
        """Stop receiving; a task waiting in `receive` gets EndOfChannel once the buffer is drained."""
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._lot.unpark_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event | EventsLost:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class EventBus:
    """Typed events from the parts that change state to the parts that react. See the module docstring."""

    def __init__(self) -> None:
        self._all: list[Subscription] = []
        self._by_type: dict[str, list[Subscription]] = {}
        self.published = 0
        self.lost = 0  # events lost by any subscriber

    def publish(self, event: Event) -> None:
        """Offer `event` to every subscriber that wants its type. Never blocks, never raises for a slow
        subscriber."""
        self.published += 1
        for sub in self._all:
            sub._offer(event)
        if self._by_type:
            subs = self._by_type.get(event_type(event))
            if subs:
                for sub in subs:
                    sub._offer(event)

    def subscribe(self, types: Iterable[str] | None = None, capacity: int = DEFAULT_CAPACITY) -> Subscription:
        """A subscription to events of `types` (their `type` names, e.g. "charger.connected"; None: every
        event), buffering at most `capacity` of them. Raises ValueError for a capacity below 1."""
        wanted = None if types is None else frozenset(types)
        sub = Subscription(self, wanted, capacity)
        if wanted is None:
            self._all.append(sub)
        else:
            for t in wanted:
                self._by_type.setdefault(t, []).append(sub)
        return sub

    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._all) + len({id(s) for subs in self._by_type.values() for s in subs})

    def _remove(self, sub: Subscription) -> None:
        if sub.types is None:
            self._all.remove(sub)
            return
        for t in sub.types:
            subs = self._by_type[t]
            subs.remove(sub)
            if not subs:
                del self._by_type[t]
