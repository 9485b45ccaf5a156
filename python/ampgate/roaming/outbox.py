"""`Outbox`: pushes to parties, coalesced per key and party, each key sent no earlier than it is due: the pattern
of `ampgate.roaming.push` (per-party workers over dirty keys, the latest state read at send time) with a due
time per key, which the Sessions module needs to send a session's cost at most once a minute while its status
goes at once. The Tariffs pusher uses it with every key due at once.

Per party: a dict key -> due time and a heap of (due, key), so what waits is bounded by the number of keys (one
entry per session or tariff, however often it changes); a key marked again while waiting keeps the earlier of
its two due times. A key being sent is never sent twice at once (an older PATCH must not overtake a newer one):
marked while in flight, it waits until that send is over.

Failures are logged and counted; after FAILING_AFTER in a row the party is left alone for FAILING_BACKOFF_S
(its keys stay marked: when it answers again it gets the latest of each, not a backlog). OCPI does not retry
pushes (the receiver re-syncs by GET), so a failed key is not marked again here; the caller's next change marks it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from datetime import datetime
from typing import Generic, TypeVar

import msgspec
import trio

from ampgate.clock import Clock
from ampgate.roaming.client import PartyRefused, PartyUnreachable
from ampgate.roaming.parties import Party

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

# Sends in flight per party: enough to keep up over a link with real latency, few enough that one party never
# holds many of the node's sockets (as push.WORKERS_PER_PARTY).
WORKERS_PER_PARTY = 4
# Failures in a row before a party is left alone, and for how long.
FAILING_AFTER = 5
FAILING_BACKOFF_S = 30.0


class OutboxStats(msgspec.Struct, kw_only=True):
    """What sending to one party did since the node started."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    failing: bool = False
    last_error: str | None = None
    last_sent_at: datetime | None = None


class _Target(Generic[K]):
    def __init__(self, party: Party, url: str) -> None:
        self.party = party
        self.url = url.rstrip("/")
        self.due: dict[K, float] = {}
        self.heap: list[tuple[float, int, K]] = []
        self.in_flight: set[K] = set()
        # Keys marked while in flight: back on the heap when their send is over.
        self.held: set[K] = set()
        self.seq = itertools.count()
        self.lot = trio.lowlevel.ParkingLot()
        self.stats = OutboxStats()
        self.consecutive = 0
        self.resume_at = 0.0
        self.scope = trio.CancelScope()

    def mark(self, key: K, due: float) -> None:
        old = self.due.get(key)
        if old is not None and old <= due:
            return
        self.due[key] = due
        if key in self.in_flight:
            self.held.add(key)
        else:
            heapq.heappush(self.heap, (due, next(self.seq), key))
        self.lot.unpark_all()

    def take(self, now: float) -> K | float | None:
        """A key due now (removed), else the time the next one is due, else None."""
        while self.heap:
            due, _, key = self.heap[0]
            if self.due.get(key) != due or key in self.in_flight:
                heapq.heappop(self.heap)
                if key in self.in_flight and self.due.get(key) == due:
                    self.held.add(key)
                continue
            if due > now:
                return due
            heapq.heappop(self.heap)
            del self.due[key]
            return key
        return None

    def landed(self, key: K) -> None:
        self.in_flight.discard(key)
        if key in self.held:
            self.held.discard(key)
            due = self.due.get(key)
            if due is not None:
                heapq.heappush(self.heap, (due, next(self.seq), key))
                self.lot.unpark_all()


class Outbox(Generic[K]):
    """Sends `send(party, url, key)` for marked keys (see the module docstring). `endpoint(party)` is the URL of
    a party to send to (None: not this party); `set_parties` says who is registered."""

    def __init__(
        self,
        name: str,
        endpoint: Callable[[Party], str | None],
        send: Callable[[Party, str, K], Awaitable[None]],
        clock: Clock,
        *,
        workers: int = WORKERS_PER_PARTY,
    ) -> None:
        self._name = name
        self._endpoint = endpoint
        self._send = send
        self._clock = clock
        self._workers = workers
        self._targets: dict[int, _Target[K]] = {}
        self._nursery: trio.Nursery | None = None

    def mark(self, party_ref: int, key: K, due: float | None = None) -> bool:
        """Send `key` to party `party_ref` at `due` (trio time; None: now). False when the party is not sent to."""
        t = self._targets.get(party_ref)
        if t is None:
            return False
        t.mark(key, trio.current_time() if due is None else float(due))
        return True

    def mark_all(self, key: K) -> None:
        """Send `key` to every party, now."""
        now = trio.current_time()
        for t in self._targets.values():
            t.mark(key, now)

    def receives(self, party_ref: int) -> bool:
        return party_ref in self._targets

    def set_parties(self, parties: Iterable[Party]) -> None:
        """Send to these (registered) parties from now on, those `endpoint` gives a URL. A party no longer
        listed stops at once; one whose token or URL changed starts afresh."""
        wanted: dict[int, tuple[Party, str]] = {}
        for p in parties:
            url = self._endpoint(p)
            if url is not None and p.their_token:
                wanted[p.id] = (p, url)
        for ref in list(self._targets):
            t = self._targets[ref]
            now = wanted.get(ref)
            if now is None or now[0].their_token != t.party.their_token or now[1].rstrip("/") != t.url:
                t.scope.cancel()
                del self._targets[ref]
        for ref, (party, url) in wanted.items():
            if ref not in self._targets:
                target: _Target[K] = _Target(party, url)
                self._targets[ref] = target
                if self._nursery is not None:
                    self._nursery.start_soon(self._serve, target)

    def stats(self, party_ref: int) -> OutboxStats | None:
        t = self._targets.get(party_ref)
        if t is None:
            return None
        t.stats.pending = len(t.due)
        return t.stats

    def pending(self) -> int:
        return sum(len(t.due) for t in self._targets.values())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for t in self._targets.values():
                nursery.start_soon(self._serve, t)
            task_status.started()
            await trio.sleep_forever()

    async def _serve(self, t: _Target[K]) -> None:
        with t.scope:
            async with trio.open_nursery() as nursery:
                for _ in range(self._workers):
                    nursery.start_soon(self._worker, t)

    async def _worker(self, t: _Target[K]) -> None:
        while True:
            wait = t.resume_at - trio.current_time()
            if wait > 0:
                await trio.sleep(wait)
            item = t.take(trio.current_time())
            if item is None:
                await t.lot.park()
                continue
            if isinstance(item, float):
                with trio.move_on_at(item):
                    await t.lot.park()
                continue
            key: K = item
            t.in_flight.add(key)
            try:
                await self._send(t.party, t.url, key)
            except (PartyUnreachable, PartyRefused) as e:
                self._failed(t, key, str(e))
            except Exception as e:
                # A bug here must not take the node down: the push is lost like a failed one.
                log.exception("OCPI %s push of %r failed unexpectedly", self._name, key)
                self._failed(t, key, f"{type(e).__name__}: {e}")
            else:
                t.stats.sent += 1
                t.stats.last_sent_at = self._clock.now()
                t.consecutive = 0
                t.stats.failing = False
            finally:
                t.landed(key)

    def _failed(self, t: _Target[K], key: K, error: str) -> None:
        t.stats.failed += 1
        t.stats.last_error = error
        t.consecutive += 1
        if t.consecutive <= FAILING_AFTER:
            log.warning(
                "OCPI %s push of %r to %s*%s failed: %s",
                self._name,
                key,
                t.party.country_code,
                t.party.party_id,
                error,
            )
        if t.consecutive >= FAILING_AFTER:
            t.stats.failing = True
            t.resume_at = trio.current_time() + FAILING_BACKOFF_S
