"""`PublicLocations`: what `GET /public/v1/locations` reads. The sites shown on the public surface, each with
its EVSEs and their live status, and what charging there costs now.

Every part is read from its owner, never derived again here, so nothing can disagree:
- which sites: the ones the operator opted in (`public_recommendations`, the one "shown to the public" flag that
  the recommendations read too) and that have a location: `Availability.public_sites`;
- their EVSEs, connectors and statuses: the node's `LocationBook` (`ampgate.roaming.locations`), which OCPI
  serves and pushes from, so a status here is the status OCPI pushes (the mapping in `ampgate.roaming.mapping`);
  the book runs with or without OCPI;
- the tariff: billing's resolution for a session starting now by an anonymous driver (no id-token group):
  the charger's, else its site's, else the default (`Tariffs.resolve`); what it charges now:
  `ampgate.pricing.current_prices` in the site's time zone with the site's price signals (`PriceSignals`).

Without OCPI the book holds only the opted-in sites and the chargers placed there (`OptedInSites`): it costs
~2.7 KB of memory per charger it holds and ~80 µs of the trio thread per charger at each of its reconciles (every
5 minutes), which for a whole fleet of 100k is ~270 MB and seconds of stall: a price OCPI pays to publish every
site, not one to pay for a few public ones. `run` has the book load a site's chargers when the site is opted in.

Cost of one request, with S the sites opted in (thousands at most; never the fleet's chargers) and E the EVSEs
of the sites looked at: choosing the candidates is O(S log S) in memory (a box test and a haversine each when
near a point, then a sort); at most EXAMINE sites are then looked at, each O(its EVSEs) in the book, whose
statuses are kept mapped from the bus (no table read, no remapping); for each site on the page, each charger's
tariff from memory (Tariffs keeps every assignment) and the site's price signals from memory (one indexed read
of the site's rows the first time it is asked). Nothing reads the tables of chargers or statuses.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import trio

from ampgate.availability.model import haversine_km, lat_span_deg
from ampgate.availability.public import BURST, RATE_PER_S, admit
from ampgate.availability.ratelimit import TokenBuckets
from ampgate.billing.tariffs import Resolution
from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.events import SiteCreated, SiteUpdated
from ampgate.load.model import PlacementRow, SiteRow
from ampgate.pricing import CurrentPrices, PriceSignal, Tariff, current_prices
from ampgate.roaming.types import Evse, EvseStatus

# Sites looked at per request at most. With `available` most sites may fail the filter; past this many the page
# ends early with a cursor (an app follows it), so one request never walks every opted-in site's EVSEs.
EXAMINE = 1000
# Placements read per query when a site is opted in.
_PLACEMENT_PAGE = 1000
# The window asked of the price signals: the instant itself (a signal covers [start, end)).
_INSTANT = timedelta(milliseconds=1)

# Where a page ends: (distance in km when near a point, else None; site id). Pages are ordered by it.
Key = tuple[float | None, str]


class PublicSites(Protocol):
    """`ampgate.availability.Availability`."""

    def public_sites(self) -> list[SiteRow]: ...
    def public_site(self, site_id: str, /) -> SiteRow | None: ...


class EvseSource(Protocol):
    """`ampgate.roaming.locations.LocationBook`."""

    def site_evses(self, site_id: str, /) -> list[tuple[str, Evse]]: ...
    def reload_charger(self, charger_id: str, /) -> None: ...


class Topology(Protocol):
    """`ampgate.load.TopologyRepository`."""

    def site(self, site_id: str, /) -> SiteRow | None: ...
    def sites(self, limit: int, after: str | None = None, /) -> list[SiteRow]: ...
    def placement(self, charger_id: str, /) -> PlacementRow | None: ...
    def placements(self, site_id: str, limit: int, after: str | None = None, /) -> list[PlacementRow]: ...
    def site_of_every_charger(self) -> list[tuple[str, str]]: ...


class OptedInSites:
    """The locations book's sites when OCPI is off (its `SiteSource`): only the sites opted in to the public
    surface (`public_recommendations`), and only the chargers placed at them, so the book holds and reconciles
    what the public locations show rather than the whole fleet (the module docstring says why). Every read goes
    to the table, so a site opted out drops from the book at its next reconcile (the route never shows it
    meanwhile: it lists `Availability`'s opted-in sites); one opted in is loaded by `PublicLocations.run`."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology

    def site(self, site_id: str) -> SiteRow | None:
        row = self._topology.site(site_id)
        return row if row is not None and row.public_recommendations else None

    def sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        """Up to `limit` opted-in sites in id order after `after`; fewer only when there are no more (the book
        pages until a short page)."""
        out: list[SiteRow] = []
        while len(out) < limit:
            page = self._topology.sites(limit, after)
            out.extend(s for s in page if s.public_recommendations)
            if len(page) < limit:
                break
            after = page[-1].id
        return out[:limit]

    def placement(self, charger_id: str) -> PlacementRow | None:
        row = self._topology.placement(charger_id)
        return row if row is not None and self.site(row.site_id) is not None else None

    def site_of_every_charger(self) -> list[tuple[str, str]]:
        shown: set[str] = set()
        after: str | None = None
        while True:
            page = self.sites(_PLACEMENT_PAGE, after)
            shown.update(s.id for s in page)
            if len(page) < _PLACEMENT_PAGE:
                break
            after = page[-1].id
        return [(c, s) for c, s in self._topology.site_of_every_charger() if s in shown]

    def chargers_at(self, site_id: str) -> list[str]:
        """The chargers placed at `site_id`, opted in or not."""
        out: list[str] = []
        after: str | None = None
        while True:
            page = self._topology.placements(site_id, _PLACEMENT_PAGE, after)
            out.extend(p.charger_id for p in page)
            if len(page) < _PLACEMENT_PAGE:
                return out
            after = page[-1].charger_id


class TariffResolver(Protocol):
    """`ampgate.billing.Tariffs`."""

    def resolve(
        self, charger_id: str, *, group: str | None, site_id: str | None, at: datetime | None = None
    ) -> Resolution | None: ...


class SignalSource(Protocol):
    """`ampgate.billing.PriceSignals`."""

    def signals(
        self, site_id: str | None, currency: str, since: datetime, until: datetime, *, fresh: bool = False
    ) -> list[PriceSignal]: ...


class PricedEvse(msgspec.Struct, frozen=True, kw_only=True):
    """An EVSE as published, with the tariff a session there starting now would get and what it charges now
    (both None: no tariff applies, the node prices nothing there). Its charger's id stays in here: the route
    never shows it."""

    evse: Evse
    tariff: Tariff | None
    prices: CurrentPrices | None


class SiteListing(msgspec.Struct, frozen=True, kw_only=True):
    """A site shown: its row, how far from the point asked about (km; None: no point), its EVSEs in charger and
    EVSE order, and how many of them are AVAILABLE."""

    site: SiteRow
    distance_km: float | None
    evses: tuple[PricedEvse, ...]
    available: int


def zone(name: str) -> tzinfo:
    """The site's time zone (validated when the site was written; UTC if this Python lacks it)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class PublicLocations:
    """See the module docstring. `admit` per request, then `page` or `one`."""

    def __init__(
        self,
        sites: PublicSites,
        book: EvseSource,
        tariffs: TariffResolver,
        signals: SignalSource,
        clock: Clock,
        buckets: TokenBuckets | None = None,
        *,
        examine: int = EXAMINE,
        opted_in: OptedInSites | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self._sites = sites
        self._book = book
        self._tariffs = tariffs
        self._signals = signals
        self._clock = clock
        self._examine = examine
        self._opted_in = opted_in
        self._bus = bus
        # The recommendations' rate, counted apart: an app drawing a map asks both.
        self.buckets = buckets if buckets is not None else TokenBuckets(RATE_PER_S, BURST)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """With `opted_in` (the book holds only opted-in sites): follow site.created / site.updated and have the
        book load the chargers of a site opted in (`follow`). Without it there is nothing to follow: returns."""
        if self._opted_in is None or self._bus is None:
            task_status.started()
            return
        with self._bus.subscribe(["site.created", "site.updated"]) as sub:
            task_status.started()
            while True:
                event = await sub.receive()
                # A lost event (EventsLost) is made good by the book's own reconcile, within minutes.
                if isinstance(event, SiteCreated | SiteUpdated):
                    self.follow(event.site_id)

    def follow(self, site_id: str) -> None:
        """If `site_id` is opted in and the book holds none of its EVSEs (it was just opted in), have the book
        load every charger placed there; the book follows them from then on."""
        if self._opted_in is None or self._opted_in.site(site_id) is None or self._book.site_evses(site_id):
            return
        for charger_id in self._opted_in.chargers_at(site_id):
            self._book.reload_charger(charger_id)

    def admit(self, address: str) -> None:
        """Take a token of `address`'s bucket. Raises TooManyError (429 `too_many_requests`, Retry-After)."""
        admit(self.buckets, self._clock.monotonic(), address)

    def page(
        self,
        near: tuple[float, float, float] | None,
        available: bool | None,
        limit: int,
        after: Key | None = None,
    ) -> tuple[list[SiteListing], Key | None]:
        """Up to `limit` sites after `after`, nearest first when `near` (lat, lon, radius km) is given (ties by
        id) and within its radius, else by id; with `available`, only sites that have (True) or have not
        (False) an AVAILABLE EVSE. Sites without EVSEs are never shown. Returns the page and the key to pass as
        `after` for the next (None: this was the last), which may end a page early (EXAMINE)."""
        candidates = self._candidates(near)
        if after is not None:
            candidates = [c for c in candidates if _after(c[0], after)]
        now = self._clock.now()
        out: list[SiteListing] = []
        last: Key | None = None
        for n, (key, site) in enumerate(candidates):
            if len(out) == limit or n == self._examine:
                return out, last
            last = key
            listing = self._listing(site, key[0], now)
            if listing is None or (available is not None and (listing.available > 0) != available):
                continue
            out.append(listing)
        return out, None

    def one(self, site_id: str) -> SiteListing | None:
        """The site if it is shown (opted in, located, with EVSEs), else None."""
        site = self._sites.public_site(site_id)
        return None if site is None else self._listing(site, None, self._clock.now())

    def _candidates(self, near: tuple[float, float, float] | None) -> list[tuple[Key, SiteRow]]:
        sites = self._sites.public_sites()
        if near is None:
            return sorted((((None, s.id), s) for s in sites), key=lambda c: c[0][1])
        lat, lon, radius = near
        span = lat_span_deg(radius)
        found: list[tuple[Key, SiteRow]] = []
        for s in sites:
            loc = s.location
            if loc is None or abs(loc.lat - lat) > span:
                continue
            d = haversine_km(lat, lon, loc.lat, loc.lon)
            if d <= radius:
                found.append(((d, s.id), s))
        found.sort(key=lambda c: (c[0][0] or 0.0, c[0][1]))
        return found

    def _listing(self, site: SiteRow, distance: float | None, now: datetime) -> SiteListing | None:
        evses = self._book.site_evses(site.id)
        if not evses:
            return None
        tz = zone(site.time_zone)
        # One resolution per charger and one price list per tariff: a site's EVSEs mostly share both.
        tariff_of: dict[str, Tariff | None] = {}
        prices_of: dict[str, CurrentPrices] = {}
        priced: list[PricedEvse] = []
        for charger_id, evse in evses:
            if charger_id not in tariff_of:
                found = self._tariffs.resolve(charger_id, group=None, site_id=site.id, at=now)
                tariff_of[charger_id] = None if found is None else found.tariff
            tariff = tariff_of[charger_id]
            prices = None
            if tariff is not None:
                prices = prices_of.get(tariff.id)
                if prices is None:
                    signals = self._signals.signals(site.id, tariff.currency, now, now + _INSTANT)
                    prices = prices_of[tariff.id] = current_prices(tariff, at=now, tz=tz, signals=signals)
            priced.append(PricedEvse(evse=evse, tariff=tariff, prices=prices))
        return SiteListing(
            site=site,
            distance_km=distance,
            evses=tuple(priced),
            available=sum(p.evse.status == EvseStatus.AVAILABLE for p in priced),
        )


def _after(key: Key, after: Key) -> bool:
    """Whether `key` comes after `after` in page order (by distance then id, or by id)."""
    d, site_id = key
    ad, after_id = after
    if d is None or ad is None:
        return site_id > after_id
    return (d, site_id) > (ad, after_id)
