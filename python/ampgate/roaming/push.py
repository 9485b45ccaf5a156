"""`LocationPusher`: what changed in the Locations, pushed to every registered party that receives them
(its `locations` endpoint with role RECEIVER), within moments.

Coalesced, never queued: per party, a dict of what is dirty (an EVSE's status, a whole Location, an EVSE
removed), insertion-ordered, each key at most once. A change marks its key; a worker takes the oldest key and
sends what the book says *now* (latest wins: ten status changes of one EVSE while a push is on the way become
one more push). So what waits is bounded by the number of EVSEs and Locations, whatever the storm. A key that is
being sent is not sent twice at once (an older PATCH must not overtake a newer one).

What a key becomes: an EVSE status is `PATCH …/locations/{cc}/{pid}/{location}/{uid}` `{"status",
"last_updated"}`; a Location is `PUT …/locations/{cc}/{pid}/{location}` with the whole object; a removed EVSE is a
PATCH to REMOVED; an EVSE whose connectors' tariff changed is a `PATCH …/{location}/{uid}/{connector id}`
`{"tariff_ids", "last_updated"}` of each of its connectors (mod_locations' "set tariff update"; the party carries
the connector's last_updated up to the EVSE and Location). A PATCH the party refuses (it does not know the
object) is followed by a PUT of the Location, as transport_and_format says ("if the object doesn't exist, the
client should do a PUT").

A failed push is logged, counted and dropped: OCPI says pushes are not queued and the receiver re-syncs by GET.
After FAILING_AFTER failures in a row the party is marked failing (`ocpi.push.failing`), its dirty keys are
dropped and nothing is sent to it for a back-off, so a dead party costs one timeout per back-off rather than one
per change; the first success clears it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

import msgspec
import trio

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import OcpiPushFailing
from ampgate.roaming.client import OcpiClient, PartyRefused, PartyUnreachable
from ampgate.roaming.parties import Party
from ampgate.roaming.types import (
    ConnectorTariffsPatch,
    Evse,
    EvseStatus,
    EvseStatusPatch,
    Location,
    ModuleId,
    ocpi_time,
)

log = logging.getLogger(__name__)

# Pushes in flight per party: enough to keep up with a storm over a link with real latency (4 × 20 per second
# at 50 ms), few enough that one party never holds many of the node's sockets.
WORKERS_PER_PARTY = 4
# Failures in a row before a party is marked failing, and how long it is then left alone.
FAILING_AFTER = 5
FAILING_BACKOFF_S = 30.0

EVSE = "evse"
LOCATION = "location"
REMOVED = "removed"
TARIFFS = "tariffs"
Key = tuple[str, str, str]  # (kind, location id, evse uid or "")


class LocationSource(Protocol):
    """`ampgate.roaming.locations.LocationBook`."""

    country_code: str
    party_id: str

    def location(self, location_id: str, /) -> Location | None: ...
    def evse(self, location_id: str, uid: str, /) -> Evse | None: ...
    def evse_state(self, location_id: str, uid: str, /) -> tuple[EvseStatus, datetime] | None: ...


class PartyStats(msgspec.Struct, kw_only=True):
    """What pushing to one party did since the node started."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    pending: int = 0
    failing: bool = False
    last_error: str | None = None
    last_sent_at: datetime | None = None


class _Target:
    """One party's dirty keys, workers and counters."""

    def __init__(self, party: Party, url: str) -> None:
        self.party = party
        self.url = url.rstrip("/")
        # An OrderedDict, not a dict: take() pops from the front, and a dict keeps the popped entries' slots
        # until it is resized, so finding the first live key scans every one popped before it: with 100k keys
        # waiting (a storm, a reconcile) that was ~47 us per take against ~0.5 us here (measured).
        self.pending: OrderedDict[Key, datetime | None] = OrderedDict()
        self.in_flight: set[Key] = set()
        self.lot = trio.lowlevel.ParkingLot()
        self.stats = PartyStats()
        self.consecutive = 0
        # While paused (a back-off after failures), changes are dropped, not kept.
        self.paused = False
        self.resume_at = 0.0
        self.scope = trio.CancelScope()

    def mark(self, key: Key, at: datetime | None = None) -> None:
        if self.paused:
            self.stats.dropped += 1
            return
        self.pending[key] = at
        if self.lot:
            self.lot.unpark()

    def take(self) -> tuple[Key, datetime | None] | None:
        for key in self.pending:
            if key not in self.in_flight:
                return key, self.pending.pop(key)
        return None


class LocationPusher:
    """Pushes Location changes to the registered parties (see the module docstring). It is the locations
    book's `Changes`; `set_parties` tells it who is registered."""

    def __init__(
        self,
        book: LocationSource,
        client: OcpiClient,
        publish: Publisher,
        clock: Clock,
        *,
        workers: int = WORKERS_PER_PARTY,
    ) -> None:
        self._book = book
        self._client = client
        self._bus = publish
        self._clock = clock
        self._workers = workers
        self._targets: dict[int, _Target] = {}
        self._nursery: trio.Nursery | None = None

    # -- Changes ----------------------------------------------------------------------------------------------------

    def evse_changed(self, location_id: str, uid: str, /) -> None:
        for t in self._targets.values():
            t.mark((EVSE, location_id, uid))

    def location_changed(self, location_id: str, /) -> None:
        for t in self._targets.values():
            t.mark((LOCATION, location_id, ""))

    def evse_removed(self, location_id: str, uid: str, at: datetime, /) -> None:
        for t in self._targets.values():
            t.mark((REMOVED, location_id, uid), at)

    def tariffs_changed(self, location_id: str, uid: str, /) -> None:
        for t in self._targets.values():
            t.mark((TARIFFS, location_id, uid))

    # -- who receives -------------------------------------------------------------------------------------------------

    def set_parties(self, parties: list[Party]) -> None:
        """Push to these (registered) parties from now on: those with a locations RECEIVER endpoint. A party
        no longer listed stops at once; one whose token or endpoint changed starts afresh."""
        wanted: dict[int, tuple[Party, str]] = {}
        for p in parties:
            url = p.endpoint(ModuleId.LOCATIONS, "RECEIVER")
            if url is not None and p.their_token:
                wanted[p.id] = (p, url)
        for ref in list(self._targets):
            t = self._targets[ref]
            now = wanted.get(ref)
            if now is None or now[0].their_token != t.party.their_token or now[1] != t.url:
                t.scope.cancel()
                del self._targets[ref]
        for ref, (party, url) in wanted.items():
            if ref not in self._targets:
                target = self._targets[ref] = _Target(party, url)
                if self._nursery is not None:
                    self._nursery.start_soon(self._serve, target)

    def stats(self, ref: int) -> PartyStats | None:
        """The push counters of a party, None when nothing is pushed to it."""
        t = self._targets.get(ref)
        if t is None:
            return None
        t.stats.pending = len(t.pending)
        return t.stats

    def pending(self) -> int:
        return sum(len(t.pending) for t in self._targets.values())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for t in self._targets.values():
                nursery.start_soon(self._serve, t)
            task_status.started()
            await trio.sleep_forever()

    # -- sending ------------------------------------------------------------------------------------------------------

    async def _serve(self, t: _Target) -> None:
        """The party's workers, until it is no longer a target (its scope is cancelled)."""
        with t.scope:
            async with trio.open_nursery() as nursery:
                for _ in range(self._workers):
                    nursery.start_soon(self._worker, t)

    async def _worker(self, t: _Target) -> None:
        while True:
            wait = t.resume_at - trio.current_time()
            if wait > 0:
                await trio.sleep(wait)
                # After the back-off, changes come in again; the next push tells whether the party is back.
                t.paused = False
            item = t.take()
            if item is None:
                await t.lot.park()
                continue
            key, at = item
            t.in_flight.add(key)
            try:
                await self._send(t, key, at)
            except Exception as e:
                # A bug here must not take the node down: the push is lost like a failed one.
                log.exception("OCPI push of %s failed unexpectedly", key)
                self._failed(t, key, f"{type(e).__name__}: {e}")
            finally:
                t.in_flight.discard(key)

    async def _send(self, t: _Target, key: Key, at: datetime | None) -> None:
        kind, location_id, uid = key
        cc, pid = self._book.country_code, self._book.party_id
        base = f"{t.url}/{cc}/{pid}/{_segment(location_id)}"
        token = t.party.their_token
        assert token is not None
        to = (t.party.country_code, t.party.party_id)
        try:
            if kind == LOCATION:
                loc = self._book.location(location_id)
                if loc is None:
                    return
                await self._client.push("PUT", base, token, body=loc, to=to)
            elif kind == TARIFFS:
                if not await self._push_tariffs(base, location_id, uid, token, to):
                    return
            else:
                if kind == EVSE:
                    state = self._book.evse_state(location_id, uid)
                    if state is None:
                        return
                    body = EvseStatusPatch(status=state[0], last_updated=state[1])
                else:
                    body = EvseStatusPatch(
                        status=EvseStatus.REMOVED, last_updated=ocpi_time(at or self._clock.now())
                    )
                url = f"{base}/{_segment(uid)}"
                if kind == EVSE:
                    await self._patch_or_put(url, body, base, location_id, token, to)
                else:
                    await self._client.push("PATCH", url, token, body=body, to=to)
        except (PartyUnreachable, PartyRefused) as e:
            self._failed(t, key, str(e))
            return
        t.stats.sent += 1
        t.stats.last_sent_at = self._clock.now()
        t.consecutive = 0
        if t.stats.failing:
            t.stats.failing = False
            self._announce(t, failing=False, error=None)

    async def _push_tariffs(
        self, base: str, location_id: str, uid: str, token: str, to: tuple[str, str]
    ) -> bool:
        """PATCH each connector of the EVSE with its tariff_ids as the book says now (a PUT of the Location
        instead once the party does not know one); False when the EVSE is no longer published."""
        evse = self._book.evse(location_id, uid)
        if evse is None:
            return False
        for c in evse.connectors:
            body = ConnectorTariffsPatch(tariff_ids=c.tariff_ids or [], last_updated=c.last_updated)
            url = f"{base}/{_segment(uid)}/{_segment(c.id)}"
            if await self._patch_or_put(url, body, base, location_id, token, to):
                return True  # the whole Location went, its connectors with it
        return True

    async def _patch_or_put(
        self, url: str, body: object, base: str, location_id: str, token: str, to: tuple[str, str]
    ) -> bool:
        """PATCH `url`; when the party does not know the object, PUT the whole Location at `base` instead, as
        transport_and_format says. True when it was the PUT."""
        try:
            await self._client.push("PATCH", url, token, body=body, to=to)
            return False
        except PartyRefused as e:
            loc = self._book.location(location_id) if _unknown_object(e) else None
            if loc is None:
                raise
            await self._client.push("PUT", base, token, body=loc, to=to)
            return True

    def _failed(self, t: _Target, key: Key, error: str) -> None:
        t.stats.failed += 1
        t.stats.last_error = error
        t.consecutive += 1
        if t.consecutive <= FAILING_AFTER:
            log.warning(
                "OCPI push of %s %s to %s*%s failed: %s",
                key[0],
                "/".join(k for k in key[1:] if k),
                t.party.country_code,
                t.party.party_id,
                error,
            )
        if t.consecutive >= FAILING_AFTER:
            t.stats.dropped += len(t.pending)
            t.pending.clear()
            t.paused = True
            t.resume_at = trio.current_time() + FAILING_BACKOFF_S
            if not t.stats.failing:
                t.stats.failing = True
                self._announce(t, failing=True, error=error)

    def _announce(self, t: _Target, *, failing: bool, error: str | None) -> None:
        self._bus.publish(
            OcpiPushFailing(
                at=self._clock.now(),
                party_ref=t.party.id,
                country_code=t.party.country_code,
                party_id=t.party.party_id,
                failing=failing,
                failures=t.consecutive,
                error=error,
            )
        )


# What a path segment may hold as it is (RFC 3986 unreserved): the ids OCPI allows are made of these, so quote,
# which costs a few microseconds per call even when there is nothing to escape, is seldom needed.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _segment(text: str) -> str:
    """`text` as one URL path segment (percent-encoded where it must be)."""
    return text if _UNRESERVED.issuperset(text) else quote(text, safe="")


def _unknown_object(e: PartyRefused) -> bool:
    """Whether a refused PATCH means the party does not know the object (HTTP 404, or an OCPI client error)."""
    return e.http_status == 404 or (e.status_code is not None and 2000 <= e.status_code < 3000)
