"""`Availability`: every site's connectors per state, live, for the operator API, the public recommendations and
the hourly occupancy.

It keeps in memory, for each placed charger, its site and its connectors' last statuses, and for each site the
counts; presence (online or not) is read from the presence registry whenever a site is counted, so a connector
of an offline charger counts offline whatever it last said. It follows the bus (`connector.status`,
`charger.connected` / `disconnected`, `charger.placed` / `unplaced`, `site.*`), but events are hints: after a
loss, and every RECONCILE_INTERVAL_S anyway, it reads placements and statuses again from their owners' tables
(a status read from the table replaces the one in memory only if the charger reported it no earlier, since the
status write is fire-and-forget and may land after its event). The operator's availability route reads its one
site from the tables first, so it is exact at the time of the answer.

When a site's counts change, the occupancy meter is told (connector-seconds per state per hour, flushed to
`site_occupancy` every FLUSH_INTERVAL_S on the wall clock's multiples of it, so at every hour boundary, and at
shutdown) and `site.availability_changed` is published.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import msgspec
import trio

from ampgate.availability import model
from ampgate.availability.model import Counts, count, haversine_km, lat_span_deg, state_of
from ampgate.availability.occupancy import HOUR_S, OccupancyMeter, OccupancyRow, hour_start
from ampgate.bus import EventBus, EventsLost
from ampgate.clock import Clock
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import (
    ChargerConnected,
    ChargerDisconnected,
    ChargerPlaced,
    ChargerUnplaced,
    ConnectorStatusChanged,
    Event,
    SiteAvailabilityChanged,
    SiteCreated,
    SiteDeleted,
    SiteUpdated,
)
from ampgate.load.model import NodeRow, PlacementRow, SiteRow
from ampgate.store.connector_status import ConnectorStatusRow

log = logging.getLogger(__name__)

# How often everything is read again from the tables regardless of events: a lost event is wrong for at most
# this long, and a full read (one scan of placements and of connector statuses: ~1 s of the trio thread at 100k
# chargers) stays a small share of the loop.
RECONCILE_INTERVAL_S = 300.0
# Events applied in one turn before other tasks run (each is microseconds of work).
BATCH = 1024
# The buffer of events: a few seconds of a 100k fleet's status changes and presence, so that a moment of the
# loop elsewhere costs no reconcile (which at 100k chargers is itself a second of the loop).
SUBSCRIPTION_CAPACITY = 16384
# Up to this many placed chargers, reconcile reads each one's statuses (an index lookup each, a few ms for all)
# rather than scanning every connector status of the fleet: the scan costs the same for 0 placed as for 100k.
PER_CHARGER_READS = 1000
# Occupancy is written every 5 minutes, on the wall clock's multiples of it (so also at each hour boundary): a
# crash loses at most that much of one statistic, and 12 small writes an hour per site cost nothing.
FLUSH_INTERVAL_S = 300
# Recent occupancy for the ranking: the current hour and the two before it (2 to 3 hours): long enough to see a
# site that is busy every evening, short enough to follow today's demand.
RECENT_HOURS = 3
# The occupancy route: a day when no window is named; at most the rows kept; buckets of up to 31 days (a month's
# report in one point).
DEFAULT_WINDOW_S = 86_400
MAX_WINDOW_S = 400 * 86_400
MAX_STEP_S = 31 * 86_400
# Hourly rows are kept 400 days: a year of usage reports plus a month to compare a month with last year's.
RETENTION_DAYS = 400

_TYPES = [
    "connector.status",
    "charger.connected",
    "charger.disconnected",
    "charger.placed",
    "charger.unplaced",
    "site.created",
    "site.updated",
    "site.deleted",
]

ConnectorKey = tuple[int | None, int]


class SiteHeadroom(Protocol):
    """Power a site can still give now, in kW (None: unknown). The load control plane (`ampgate.loadctl`)
    answers it from its last allocation tick."""

    def headroom_kw(self, site_id: str, /) -> float | None: ...


class UnknownHeadroom:
    """A `SiteHeadroom` for a node without load control: headroom is unknown at every site."""

    def headroom_kw(self, site_id: str, /) -> float | None:
        return None


class Online(Protocol):
    @property
    def online(self) -> bool: ...


class PresenceSource(Protocol):
    """`ampgate.connectivity.PresenceRegistry`."""

    def get(self, charger_id: str, /) -> Online | None: ...


class StatusSource(Protocol):
    """`ampgate.store.ConnectorStatusRepository`."""

    def statuses(self, charger_id: str, /) -> list[ConnectorStatusRow]: ...
    def every_status(self) -> list[tuple[str, ConnectorStatusRow]]: ...


class SiteSource(Protocol):
    """`ampgate.load.TopologyRepository`."""

    def site(self, site_id: str, /) -> SiteRow | None: ...
    def tree(self, site_id: str, /) -> tuple[SiteRow | None, list[NodeRow], list[PlacementRow]]: ...
    def public_sites(self) -> list[SiteRow]: ...
    def site_of_every_charger(self) -> list[tuple[str, str]]: ...


class OccupancyStore(Protocol):
    """`ampgate.availability.OccupancyRepository`."""

    def add(self, rows: Sequence[OccupancyRow], /) -> None: ...
    def prune(self, before_hour: int, /) -> None: ...
    def hours(self, site_id: str, since: int, until: int, /) -> list[OccupancyRow]: ...
    def totals(self, site_ids: Sequence[str], since: int, /) -> dict[str, tuple[float, float]]: ...


class ConnectorView(msgspec.Struct, frozen=True, kw_only=True):
    """One connector: its last reported status and the state it counts as."""

    evse_id: int | None
    connector_id: int
    status: str
    state: str


class ChargerView(msgspec.Struct, frozen=True, kw_only=True):
    """A charger placed at the site, whether it is online, and its connectors (those it ever reported)."""

    charger_id: str
    online: bool
    connectors: list[ConnectorView]


class SiteAvailability(msgspec.Struct, frozen=True, kw_only=True):
    """A site's connectors per state at `at`, its headroom (kW, None: unknown) and its chargers."""

    site_id: str
    at: datetime
    counts: Counts
    headroom_kw: float | None
    chargers: list[ChargerView]


class Recommendation(msgspec.Struct, frozen=True, kw_only=True):
    """A site ranked for an EV owner: how far, how free, how strong, how used lately, and its score."""

    site: SiteRow
    distance_km: float
    counts: Counts
    headroom_kw: float | None
    occupancy_recent: float | None
    score: float


class Availability:
    """See the module docstring. Everything runs on the trio thread."""

    def __init__(
        self,
        sites: SiteSource,
        statuses: StatusSource,
        presence: PresenceSource,
        occupancy: OccupancyStore,
        headroom: SiteHeadroom,
        bus: EventBus,
        clock: Clock,
    ) -> None:
        self._sites = sites
        self._statuses = statuses
        self._presence = presence
        self._occupancy = occupancy
        self._headroom = headroom
        self._bus = bus
        self._clock = clock
        self.meter = OccupancyMeter()
        self._site_of: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}
        # charger -> (evse, connector) -> (status, the charger's time of it, epoch seconds)
        self._connectors: dict[str, dict[ConnectorKey, tuple[str, float]]] = {}
        self._counts: dict[str, Counts] = {}
        # Sites to count again at the end of the batch of events being applied (chargers came or went).
        self._waiting: set[str] = set()
        self._public: dict[str, SiteRow] = {}
        # Until the first full read, counts are being learnt, not changing: nothing is published.
        self._loaded = False
        self._pruned_hour: int | None = None

    # -- reading the owners' tables ---------------------------------------------------------------------------

    def reconcile(self) -> None:
        """Read every placement, connector status and opted-in site again; recount every site."""
        now = self._clock.wall()
        placed = dict(self._sites.site_of_every_charger())
        stored: dict[str, list[ConnectorStatusRow]] = {}
        if len(placed) <= PER_CHARGER_READS:
            # Few placed (or none: a fleet without sites): their own rows, not a scan of every connector of every
            # charger on the trio thread (~1 s at 100k) for nothing.
            for charger_id in placed:
                if rows := self._statuses.statuses(charger_id):
                    stored[charger_id] = rows
        else:
            for charger_id, row in self._statuses.every_status():
                if charger_id in placed:
                    stored.setdefault(charger_id, []).append(row)
        touched = set(self._counts) | set(placed.values())
        members: dict[str, set[str]] = {}
        for charger_id, site_id in placed.items():
            members.setdefault(site_id, set()).add(charger_id)
        self._connectors = {
            cid: self._merged(self._connectors.get(cid, {}), stored.get(cid, ())) for cid in placed
        }
        self._site_of, self._members = placed, members
        self._public = {s.id: s for s in self._sites.public_sites()}
        for site_id in touched:
            self._recount(site_id, now)
        self._loaded = True

    def _refresh_site(self, site_id: str) -> SiteRow:
        """Read one site's placements and their statuses again (the operator's read is exact). Raises
        NotFoundError (field site_id)."""
        site, _, placements = self._sites.tree(site_id)
        if site is None:
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        now = self._clock.wall()
        here = {p.charger_id for p in placements}
        touched = {site_id}
        for charger_id in list(self._members.get(site_id, ())):
            if charger_id not in here:
                touched |= self._move(charger_id, None)
        for charger_id in here:
            touched |= self._move(charger_id, site_id)
            self._connectors[charger_id] = self._merged(
                self._connectors.get(charger_id, {}), self._statuses.statuses(charger_id)
            )
        self._follow_site(site)
        for s in touched:
            self._recount(s, now)
        return site

    @staticmethod
    def _merged(
        memory: dict[ConnectorKey, tuple[str, float]], rows: Iterable[ConnectorStatusRow]
    ) -> dict[ConnectorKey, tuple[str, float]]:
        out = dict(memory)
        for row in rows:
            if not model.is_connector(row.evse_id, row.connector_id):
                continue
            key = (row.evse_id, row.connector_id)
            ts = row.updated_at.timestamp()
            seen = out.get(key)
            if seen is None or seen[1] <= ts:
                out[key] = (row.status, ts)
        return out

    def _follow_site(self, site: SiteRow | None, site_id: str | None = None) -> None:
        """Keep the opted-in sites (with a location) in step with `site` (None: `site_id` is gone)."""
        if site is not None and site.public_recommendations and site.location is not None:
            self._public[site.id] = site
        else:
            self._public.pop(site.id if site is not None else site_id or "", None)

    # -- following the bus ------------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Follow one event (see the module docstring for which)."""
        self._apply(event)
        self._recount_waiting()

    def _recount_waiting(self) -> None:
        """Count the sites whose chargers came or went since (`_waiting`): once per batch of events rather than
        once per event, which during a boot storm was a count of the whole site per charger connecting."""
        if self._waiting:
            now = self._clock.wall()
            waiting, self._waiting = self._waiting, set()
            for site_id in waiting:
                self._recount(site_id, now)

    def _apply(self, event: Event) -> None:
        now = self._clock.wall()
        cid = event.charger_id
        if isinstance(event, ConnectorStatusChanged) and cid is not None:
            site_id = self._site_of.get(cid)
            if site_id is None or not model.is_connector(event.evse_id, event.connector_id):
                return
            connectors = self._connectors.setdefault(cid, {})
            key = (event.evse_id, event.connector_id)
            ts = event.reported_at.timestamp()
            seen = connectors.get(key)
            if seen is None or seen[1] <= ts:
                connectors[key] = (event.status, ts)
                if seen is None or site_id not in self._counts:
                    # A connector not counted before (a boot storm is one per charger): counted with the batch.
                    self._waiting.add(site_id)
                elif site_id not in self._waiting:
                    online = self._online(cid)
                    self._shift(site_id, state_of(seen[0], online), state_of(event.status, online), now)
        elif isinstance(event, ChargerConnected | ChargerDisconnected) and cid is not None:
            site_id = self._site_of.get(cid)
            if site_id is not None:
                self._waiting.add(site_id)
        elif isinstance(event, ChargerPlaced) and cid is not None:
            touched = self._move(cid, event.site_id)
            self._connectors[cid] = self._merged(self._connectors.get(cid, {}), self._statuses.statuses(cid))
            for s in touched:
                self._recount(s, now)
        elif isinstance(event, ChargerUnplaced) and cid is not None:
            for s in self._move(cid, None):
                self._recount(s, now)
        elif isinstance(event, SiteCreated | SiteUpdated):
            self._follow_site(self._sites.site(event.site_id), event.site_id)
        elif isinstance(event, SiteDeleted):
            self._follow_site(None, event.site_id)
            for charger_id in list(self._members.get(event.site_id, ())):
                self._move(charger_id, None)
            self._recount(event.site_id, now)

    def _move(self, charger_id: str, site_id: str | None) -> set[str]:
        """Put the charger in `site_id` (None: no site); returns the sites whose members changed."""
        old = self._site_of.get(charger_id)
        if old == site_id:
            return set()
        if old is not None:
            members = self._members.get(old)
            if members is not None:
                members.discard(charger_id)
                if not members:
                    del self._members[old]
        if site_id is None:
            self._site_of.pop(charger_id, None)
            self._connectors.pop(charger_id, None)
        else:
            self._site_of[charger_id] = site_id
            self._members.setdefault(site_id, set()).add(charger_id)
        return {s for s in (old, site_id) if s is not None}

    def _online(self, charger_id: str) -> bool:
        p = self._presence.get(charger_id)
        return p is not None and p.online

    def _recount(self, site_id: str, now: float) -> None:
        states = []
        for charger_id in self._members.get(site_id, ()):
            online = self._online(charger_id)
            for status, _ in self._connectors.get(charger_id, {}).values():
                states.append(state_of(status, online))
        self._settle(site_id, count(states), now)

    def _shift(self, site_id: str, old: str, new: str, now: float) -> None:
        """One connector of the site went from state `old` to `new`: its counts adjusted, not counted again.
        A status change is the busiest event, and counting the whole site for each was O(its chargers) per
        change: at 1,000 changes a second on sites of 1,000 chargers, most of the control plane's CPU. The
        old state is taken with the charger's presence now; if that changed and its event is still on the way,
        the shift is off by that connector until the event recounts the site (as it does)."""
        if old == new:
            return
        tally = dict(
            zip(model.STATES, self._counts.get(site_id, model.NO_CONNECTORS).as_tuple(), strict=True)
        )
        if tally[old] < 1:
            self._recount(site_id, now)  # not what was counted: count it all
            return
        tally[old] -= 1
        tally[new] += 1
        self._settle(site_id, Counts(**tally), now)

    def _settle(self, site_id: str, counts: Counts, now: float) -> None:
        """The site's counts are `counts` from now on: kept, metered, and published when they changed."""
        before = self._counts.get(site_id, model.NO_CONNECTORS)
        if counts == before and site_id in self._counts:
            return
        if counts.total:
            self._counts[site_id] = counts
        else:
            self._counts.pop(site_id, None)
        self.meter.set(site_id, counts, now)
        if self._loaded and counts != before:
            self._bus.publish(
                SiteAvailabilityChanged(
                    at=self._clock.now(),
                    site_id=site_id,
                    connectors_free=counts.free,
                    connectors_in_use=counts.in_use,
                    connectors_faulted=counts.faulted,
                    connectors_unavailable=counts.unavailable,
                    connectors_offline=counts.offline,
                    connectors_total=counts.total,
                    previous_free=before.free,
                )
            )

    # -- reads ------------------------------------------------------------------------------------------------

    def counts(self, site_id: str) -> Counts:
        """The site's connectors per state as last counted (none: NO_CONNECTORS)."""
        return self._counts.get(site_id, model.NO_CONNECTORS)

    def availability(self, site_id: str) -> SiteAvailability:
        """The site's connectors per state now, read from the tables and presence, with its chargers and its
        headroom. Raises NotFoundError (field site_id)."""
        self._refresh_site(site_id)
        chargers = []
        for charger_id in sorted(self._members.get(site_id, ())):
            online = self._online(charger_id)
            connectors = self._connectors.get(charger_id, {})
            chargers.append(
                ChargerView(
                    charger_id=charger_id,
                    online=online,
                    connectors=[
                        ConnectorView(
                            evse_id=key[0], connector_id=key[1], status=status, state=state_of(status, online)
                        )
                        for key, (status, _) in sorted(
                            connectors.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])
                        )
                    ],
                )
            )
        return SiteAvailability(
            site_id=site_id,
            at=self._clock.now(),
            counts=self.counts(site_id),
            headroom_kw=self._headroom.headroom_kw(site_id),
            chargers=chargers,
        )

    def occupancy(
        self, site_id: str, since: datetime | None, until: datetime | None, step_s: int = HOUR_S
    ) -> list[OccupancyRow]:
        """The site's occupancy in buckets of `step_s` (a multiple of an hour; buckets start on multiples of it
        since the epoch) that start in [since rounded down to a bucket, until), oldest first; only
        buckets with any connector time. The hour in progress is included as far as it has gone. `until`
        defaults to now, `since` to DEFAULT_WINDOW_S before `until`. Raises NotFoundError (field site_id),
        ValidationError naming step, since or until (until not after since; more than MAX_WINDOW_S)."""
        if step_s < HOUR_S or step_s % HOUR_S or step_s > MAX_STEP_S:
            raise ValidationError(
                f"step is a whole number of hours in seconds, {HOUR_S} to {MAX_STEP_S}", field="step"
            )
        until = until or self._clock.now()
        since = since or until - timedelta(seconds=DEFAULT_WINDOW_S)
        if until <= since:
            raise ValidationError("until must be after since", field="until")
        if (until - since).total_seconds() > MAX_WINDOW_S:
            raise ValidationError(
                f"since to until spans at most {MAX_WINDOW_S // 86_400} days", field="since"
            )
        if self._sites.site(site_id) is None:
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        first = int(since.timestamp() // step_s) * step_s
        end = until.timestamp()
        by_hour: dict[int, OccupancyRow] = {}
        rows = self._occupancy.hours(site_id, first, math.ceil(end))
        pending = self.meter.pending(site_id, self._clock.wall())
        for row in [*rows, *pending]:
            if not first <= row.hour_start < end:
                continue
            have = by_hour.get(row.hour_start)
            by_hour[row.hour_start] = row if have is None else have.plus(row)
        buckets: dict[int, OccupancyRow] = {}
        for hour in sorted(by_hour):
            bucket = hour // step_s * step_s
            row = msgspec.structs.replace(by_hour[hour], hour_start=bucket)
            have = buckets.get(bucket)
            buckets[bucket] = row if have is None else have.plus(row)
        return [buckets[b] for b in sorted(buckets)]

    def occupancy_recent(self, site_ids: Sequence[str]) -> dict[str, float | None]:
        """Each site's mean fraction of in-service connectors in use over the current hour and the
        RECENT_HOURS - 1 before it (None: no in-service time)."""
        now = self._clock.wall()
        since = hour_start(now) - (RECENT_HOURS - 1) * HOUR_S
        stored = self._occupancy.totals(site_ids, since)
        out: dict[str, float | None] = {}
        for site_id in site_ids:
            in_use, free = stored.get(site_id, (0.0, 0.0))
            for row in self.meter.pending(site_id, now):
                if row.hour_start >= since:
                    in_use += row.in_use_s
                    free += row.free_s
            out[site_id] = model.occupancy(in_use, free)
        return out

    def public_sites(self) -> list[SiteRow]:
        """The sites shown on the public surface: opted in (`public_recommendations`) and with a location. What
        the recommendations rank and the public locations list; O(those sites), from memory."""
        return list(self._public.values())

    def public_site(self, site_id: str) -> SiteRow | None:
        """One of `public_sites()`, or None."""
        return self._public.get(site_id)

    def recommend(
        self, lat: float, lon: float, radius_km: float, min_kw: float | None, limit: int
    ) -> list[Recommendation]:
        """The opted-in sites with a location within `radius_km` of (lat, lon), with at least `min_kw` of
        headroom when given (a site whose headroom is unknown is then left out: it cannot be shown to have it),
        best score first (ties: nearer first, then by id); at most `limit`."""
        span = lat_span_deg(radius_km)
        near: list[tuple[SiteRow, float]] = []
        for site in self._public.values():
            loc = site.location
            if loc is None or abs(loc.lat - lat) > span:
                continue
            distance = haversine_km(lat, lon, loc.lat, loc.lon)
            if distance <= radius_km:
                near.append((site, distance))
        headroom = {site.id: self._headroom.headroom_kw(site.id) for site, _ in near}
        if min_kw is not None:
            near = [(s, d) for s, d in near if (h := headroom[s.id]) is not None and h >= min_kw]
        recent = self.occupancy_recent([s.id for s, _ in near])
        out = []
        for site, distance in near:
            counts = self.counts(site.id)
            out.append(
                Recommendation(
                    site=site,
                    distance_km=distance,
                    counts=counts,
                    headroom_kw=headroom[site.id],
                    occupancy_recent=recent[site.id],
                    score=model.score(counts.free, headroom[site.id], recent[site.id]),
                )
            )
        out.sort(key=lambda r: (-r.score, r.distance_km, r.site.id))
        return out[:limit]

    # -- occupancy to the table -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Hand every site's connector-seconds so far to the table (fire-and-forget); once an hour, drop the
        hours past RETENTION_DAYS."""
        now = self._clock.wall()
        self._occupancy.add(self.meter.take(now))
        hour = hour_start(now)
        if self._pruned_hour != hour:
            self._occupancy.prune(hour - RETENTION_DAYS * 86_400)
            self._pruned_hour = hour

    def _next_flush(self) -> float:
        """The trio time of the next wall-clock multiple of FLUSH_INTERVAL_S."""
        wall = self._clock.wall()
        target = (wall // FLUSH_INTERVAL_S + 1) * FLUSH_INTERVAL_S
        return self._clock.monotonic() + (target - wall)

    def _take(self, event: Event | EventsLost) -> None:
        if isinstance(event, EventsLost):
            log.info("availability lost %d events; reading the tables again", event.count)
            self._waiting.clear()
            self.reconcile()
        else:
            self._apply(event)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read everything, then follow the bus, reconcile and flush until cancelled; the occupancy so far is
        handed to the store on the way out (the store flushes it before it closes)."""
        with self._bus.subscribe(_TYPES, capacity=SUBSCRIPTION_CAPACITY) as sub:
            self.reconcile()
            task_status.started()
            next_reconcile = self._clock.monotonic() + RECONCILE_INTERVAL_S
            next_flush = self._next_flush()
            try:
                while True:
                    with trio.move_on_at(min(next_reconcile, next_flush)):
                        event: Event | EventsLost | None = await sub.receive()
                        # Everything waiting is taken in this turn (up to BATCH): one event per turn of the loop
                        # fell behind a pump that publishes a batch of messages' events per turn, and each loss
                        # then cost a full reconcile (at 1,000 status changes a second: one every few seconds,
                        # most of the control plane's CPU).
                        taken = 0
                        while event is not None:
                            self._take(event)
                            taken += 1
                            if taken >= BATCH:
                                break
                            event = sub.receive_nowait()
                        self._recount_waiting()
                        continue
                    if self._clock.monotonic() >= next_reconcile:
                        self.reconcile()
                        next_reconcile = self._clock.monotonic() + RECONCILE_INTERVAL_S
                    if self._clock.monotonic() >= next_flush:
                        self.flush()
                        next_flush = self._next_flush()
            finally:
                self.flush()
