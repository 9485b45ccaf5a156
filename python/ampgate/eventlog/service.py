"""`EventLog`: the bus's events numbered, kept and streamed. It is one subscriber of the bus: each event gets the
next id, goes into a ring of the most recent ones (in memory) and, in batches, into the events table (kept
`--events-days`); and it fans out to the live streams (`GET /api/v1/events/stream`).

A live stream has its own bounded buffer: one that cannot keep up loses events, is told how many (an `EventsLost`
marker in place), and never slows the log or the node. A stream resumed with `Last-Event-ID` gets what it missed
from the ring, or from the table when the ring no longer holds it, then the live events, with no gap and no
duplicate: the ring holds every event not yet committed, since it is filled before the table is written.

If the log itself falls behind the bus, the loss is kept as an `events.lost` entry in the history and streams.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import trio

from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock, iso_utc
from ampgate.eventlog.repository import EventRepository, EventRow
from ampgate.events import Event, event_type

log = logging.getLogger(__name__)

# Recent events kept in memory for resuming streams: far more than the table's commit lag at storm rates (a few
# hundred milliseconds), small next to the fleet.
RING = 4096
BATCH = 1_000
PRUNE_INTERVAL = 3600.0
DEFAULT_DAYS = 7.0
STREAM_CAPACITY = 4096
LOST_TYPE = "events.lost"
# Money in events (a CDR's total) is a Decimal: a JSON number on the wire, as the API writes it.
_encode = msgspec.json.Encoder(decimal_format="number").encode


@dataclass(frozen=True)
class Entry:
    """One logged event: its id, type, charger and time, and its JSON."""

    id: int
    type: str
    charger_id: str | None
    at: datetime
    data: bytes

    @classmethod
    def of_row(cls, row: EventRow) -> Entry:
        return cls(row.id, row.type, row.charger_id, row.at, row.data)


class Stream:
    """One live stream's bounded buffer of entries matching its filters (an int in it: that many lost)."""

    def __init__(self, types: frozenset[str] | None, charger_id: str | None, capacity: int) -> None:
        self.types = types
        self.charger_id = charger_id
        self.capacity = capacity
        self.queue: collections.deque[Entry | int] = collections.deque()
        self._lot = trio.lowlevel.ParkingLot()
        self.closed = False

    def wants(self, e: Entry) -> bool:
        if e.type == LOST_TYPE:
            return True
        if self.types is not None and e.type not in self.types:
            return False
        return self.charger_id is None or e.charger_id == self.charger_id

    def offer(self, e: Entry) -> None:
        """Queue `e` if the stream wants it; when the buffer is full, count it lost instead (one marker, an int,
        after the last queued entry, growing with each loss)."""
        if not self.wants(e):
            return
        q = self.queue
        if q and isinstance(q[-1], int):
            q[-1] += 1
        elif len(q) < self.capacity:
            q.append(e)
        else:
            q.append(1)
        self._lot.unpark_all()

    async def next(self) -> Entry | int:
        while not self.queue:
            await self._lot.park()
        return self.queue.popleft()


class EventLog:
    def __init__(
        self, bus: EventBus, rows: EventRepository, clock: Clock, *, days: float = DEFAULT_DAYS
    ) -> None:
        self._bus = bus
        self._rows = rows
        self._clock = clock
        self._retention = timedelta(days=days)
        self._ring: collections.deque[Entry] = collections.deque(maxlen=RING)
        self._streams: list[Stream] = []
        self._pending: list[tuple[int, str, str | None, int, bytes]] = []
        self._next_id = 0
        self.logged = 0
        self.lost = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._next_id = self._rows.max_id() + 1
        sub = self._bus.subscribe(capacity=STREAM_CAPACITY * 4)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._prune)
            task_status.started()
            with sub:
                while True:
                    item = await sub.receive()
                    self._take(item)
                    # Take what else is queued before writing: one store op per batch.
                    while len(self._pending) < BATCH and (more := sub.receive_nowait()) is not None:
                        self._take(more)
                    self._flush()

    def _take(self, item: Event | EventsLost) -> None:
        if isinstance(item, EventsLost):
            self.lost += item.count
            now = self._clock.now()
            data = _encode({"type": LOST_TYPE, "at": iso_utc(now), "count": item.count})
            self._add(LOST_TYPE, None, now, data)
            return
        self._add(event_type(item), item.charger_id, item.at, _encode(item))

    def _add(self, type_: str, charger_id: str | None, at: datetime, data: bytes) -> None:
        e = Entry(self._next_id, type_, charger_id, at, data)
        self._next_id += 1
        self.logged += 1
        self._ring.append(e)
        self._pending.append((e.id, type_, charger_id, int(at.timestamp() * 1000), data))
        for s in self._streams:
            s.offer(e)

    def _flush(self) -> None:
        if self._pending:
            self._rows.add(self._pending)
            self._pending = []

    async def _prune(self) -> None:
        while True:
            removed = await self._rows.prune(self._clock.now() - self._retention)
            if removed:
                log.info("pruned %d events older than %s", removed, self._retention)
            await trio.sleep(PRUNE_INTERVAL)

    # -- reads ------------------------------------------------------------------------------------------------

    def page(
        self,
        limit: int,
        *,
        before: int | None,
        types: list[str] | None,
        charger_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[EventRow]:
        return self._rows.page(
            limit, before=before, types=types, charger_id=charger_id, since=since, until=until
        )

    def open_stream(
        self, types: Iterable[str] | None, charger_id: str | None, last_id: int | None
    ) -> tuple[Stream, list[Entry]]:
        """A live stream, and what it missed after `last_id` (None: nothing), in order. Close it with
        `close_stream`."""
        stream = Stream(None if types is None else frozenset(types), charger_id, STREAM_CAPACITY)
        missed: list[Entry] = []
        if last_id is not None:
            oldest = self._ring[0].id if self._ring else self._next_id
            if last_id + 1 < oldest:
                # Older than the ring: from the table (committed: everything before the ring is), then the ring.
                after = last_id
                while True:
                    rows = self._rows.page(500, after=after, ascending=True, types=None, charger_id=None)
                    rows = [r for r in rows if r.id < oldest]
                    missed += [Entry.of_row(r) for r in rows]
                    if len(rows) < 500:
                        break
                    after = rows[-1].id
                    if len(missed) > STREAM_CAPACITY * 4:
                        break
            missed += [e for e in self._ring if e.id > last_id]
            missed = [e for e in missed if stream.wants(e)]
        self._streams.append(stream)
        return stream, missed

    def close_stream(self, stream: Stream) -> None:
        stream.closed = True
        if stream in self._streams:
            self._streams.remove(stream)

    @property
    def streams(self) -> int:
        return len(self._streams)
