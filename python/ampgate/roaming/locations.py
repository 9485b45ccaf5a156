"""`LocationBook`: every site as an OCPI Location, live: its EVSEs and connectors, each EVSE's status from its
connectors' OCPP statuses and its charger's presence (`mapping`), and the `last_updated` of each object.

What it keeps in memory, per placed charger: its site, its EVSEs (as an admin described them, or found from
the statuses the charger reported, with connector defaults from its 2.0.1 device model, its placement and its
site), each connector's last OCPP status, each EVSE's published status and when that last changed. It follows
the bus (`connector.status`, `charger.connected` / `disconnected` / `booted`, `charger.placed` / `unplaced`,
`charger.connectors_changed`, `site.*`); events are hints, so after a loss, and every RECONCILE_INTERVAL_S
anyway, it reads sites, placements, descriptions and statuses again from their owners' tables and tells what
changed meanwhile.

Each connector names the tariff a session starting there now gets when its driver's token is in no id-token group
(an ad-hoc driver, or an eMSP's: their tokens are not in our table), by billing's own resolution (`TariffSource`:
the charger's assignment, else its site's, else the default, each only while the tariff is valid); every
connector of a charger names the same one. Tariffs assigned to id-token groups stay off the Location: they are a
private price for some drivers, not what the connector costs. The book follows `tariff.assigned` and
`tariff.changed`, and wakes when a tariff's validity begins or ends (`TariffSource.next_validity_edge`); the
ids it names are always of tariffs billing holds, which are the ones the OCPI Tariffs module lists.

Whoever must hear of changes implements `Changes` (the pusher): an EVSE's status changed (a PATCH), a Location's
shape changed (a PUT), an EVSE went away (a PATCH to REMOVED: OCPI never deletes an EVSE), the tariff of an
EVSE's connectors changed (a PATCH of each connector).

A site is published when the operator lets it be (`ocpi_publish`, on unless turned off: OCPI says a private
location must not be published), has coordinates, an address, a city and a country (OCPI requires them; sites
take them through the sites API) and at least one EVSE ("Locations with valid EVSEs"). What is not published is
in no answer and no push. Times are the node's clock
cut to whole seconds (`types.ocpi_time`); a connector's `last_updated` is the later of its description and its
last change of tariff, an EVSE's the latest of those and its last change of status, a Location's the latest of
its site's, its EVSEs' and of the last time an EVSE left it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

import msgspec
import trio
import trio.lowlevel

from ampgate.availability.model import is_connector
from ampgate.bus import EventBus, EventsLost, Subscription
from ampgate.clock import Clock
from ampgate.events import (
    ChargerBooted,
    ChargerConnected,
    ChargerConnectorsChanged,
    ChargerDisconnected,
    ChargerPlaced,
    ChargerUnplaced,
    ConnectorStatusChanged,
    Event,
    SiteCreated,
    SiteDeleted,
    SiteUpdated,
    TariffAssigned,
    TariffChanged,
)
from ampgate.load.model import PlacementRow, SiteRow
from ampgate.roaming import mapping
from ampgate.roaming.equipment import ConnectorSpec, Equipment
from ampgate.roaming.types import (
    Connector,
    ConnectorFormat,
    ConnectorType,
    Evse,
    EvseStatus,
    GeoLocation,
    Location,
    PowerType,
    ocpi_time,
)
from ampgate.store.connector_status import ConnectorStatusRow

log = logging.getLogger(__name__)

# Everything read again from the tables this often regardless of events: a lost event is wrong for at most
# this long, and the reads (one scan each of sites, placements, descriptions and statuses) stay a small share.
RECONCILE_INTERVAL_S = 300.0
# Sites read per query when reloading.
_SITE_PAGE = 1000
# The book's buffer of events: a boot storm of 100k chargers (connected, booted and a status each) lasts seconds,
# and what the book does per event is microseconds, so a few seconds of it fit; past it a reload repairs the loss.
SUBSCRIPTION_CAPACITY = 16384
# Events applied in one turn before other tasks run: ~10 ms of work at most.
BATCH = 1024
# Chargers a reconcile goes through before letting other tasks run: a few ms of work.
RELOAD_SLICE = 500
# Chargers whose description changed, past which a reconcile reads every description in one scan rather than
# one query each (the start, a restore; otherwise a handful).
_READ_ONE_BY_ONE = 200
# The table keeps a report's time in milliseconds, an event in microseconds: one report compares equal.
_SAME_REPORT_S = 0.001
# What an undescribed connector is taken to be when nothing says otherwise: the IEC 62196 Type 2 socket, the
# AC connector of most public chargers in Europe. Describe every charger (PUT /api/v1/chargers/{id}/connectors)
# wherever that is not true (DC, Type 1 in North America).
DEFAULT_STANDARD = ConnectorType.IEC_62196_T2
DEFAULT_FORMAT = ConnectorFormat.SOCKET
# A placement's single-phase wirings; the others are three-phase.
_ONE_PHASE = frozenset({"L1", "L2", "L3"})
# How long after a tariff's validity edge the book wakes to resolve tariffs again: trio's clock and the wall
# clock may disagree by a little, and resolving a moment before the wall reaches the edge would change nothing.
_EDGE_LATE_S = 1.0

_TYPES = [
    "connector.status",
    "charger.connected",
    "charger.disconnected",
    "charger.booted",
    "charger.placed",
    "charger.unplaced",
    "charger.connectors_changed",
    "site.created",
    "site.updated",
    "site.deleted",
    "tariff.assigned",
    "tariff.changed",
]


class Changes(Protocol):
    """Who hears what changed (`ampgate.roaming.push.LocationPusher`)."""

    def evse_changed(self, location_id: str, uid: str, /) -> None: ...
    def location_changed(self, location_id: str, /) -> None: ...
    def evse_removed(self, location_id: str, uid: str, at: datetime, /) -> None: ...
    def tariffs_changed(self, location_id: str, uid: str, /) -> None: ...


class NoChanges:
    def evse_changed(self, location_id: str, uid: str, /) -> None:
        pass

    def location_changed(self, location_id: str, /) -> None:
        pass

    def evse_removed(self, location_id: str, uid: str, at: datetime, /) -> None:
        pass

    def tariffs_changed(self, location_id: str, uid: str, /) -> None:
        pass


class TariffSource(Protocol):
    """`ampgate.billing.Tariffs`: which tariff a session gets, as billing decides it."""

    def ad_hoc_tariff_id(self, charger_id: str, site_id: str | None, at: datetime, /) -> str | None: ...
    def next_validity_edge(self, after: datetime, /) -> datetime | None: ...


class SiteSource(Protocol):
    """`ampgate.load.TopologyRepository`."""

    def site(self, site_id: str, /) -> SiteRow | None: ...
    def sites(self, limit: int, after: str | None = None, /) -> list[SiteRow]: ...
    def placement(self, charger_id: str, /) -> PlacementRow | None: ...
    def site_of_every_charger(self) -> list[tuple[str, str]]: ...


class StatusSource(Protocol):
    """`ampgate.store.ConnectorStatusRepository`."""

    def statuses(self, charger_id: str, /) -> list[ConnectorStatusRow]: ...
    def every_status(self) -> list[tuple[str, ConnectorStatusRow]]: ...


class EquipmentSource(Protocol):
    """`ampgate.roaming.equipment.EquipmentRepository`."""

    def get(self, charger_id: str, /) -> Equipment | None: ...
    def every(self) -> dict[str, Equipment]: ...
    def stamps(self) -> dict[str, str]: ...


class Online(Protocol):
    @property
    def online(self) -> bool: ...


class PresenceSource(Protocol):
    """`ampgate.connectivity.PresenceRegistry`."""

    def get(self, charger_id: str, /) -> Online | None: ...


class VariableRows(Protocol):
    """`ampgate.devicemodel.DeviceModelRepository`: the 2.0.1 device model rows that describe connectors."""

    def page(
        self, charger_id: str, limit: int, *, component: str | None = None, variable: str | None = None
    ) -> list[Any]: ...


class ConnectorFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What a 2.0.1 device model says of a charger's connectors, by (evse, connector) and by evse."""

    types: dict[tuple[int, int], str]
    power_w: dict[int, int]
    phases: dict[int, int]


NO_FACTS = ConnectorFacts(types={}, power_w={}, phases={})


def read_facts(rows: VariableRows, charger_id: str) -> ConnectorFacts:
    """The device model's ConnectorType (per connector), EVSE Power (its maxLimit, W) and SupplyPhases (per
    EVSE) of the charger; what it lacks stays out."""
    types: dict[tuple[int, int], str] = {}
    for r in rows.page(charger_id, 100, component="Connector", variable="ConnectorType"):
        if r.attribute_type == "Actual" and r.value and r.evse_id is not None and r.connector_id is not None:
            types[(r.evse_id, r.connector_id)] = r.value
    power: dict[int, int] = {}
    for r in rows.page(charger_id, 100, component="EVSE", variable="Power"):
        limit = (r.characteristics or {}).get("maxLimit")
        if r.evse_id is not None and isinstance(limit, int | float) and limit > 0:
            power[r.evse_id] = int(limit)
    phases: dict[int, int] = {}
    for r in rows.page(charger_id, 100, component="EVSE", variable="SupplyPhases"):
        if r.attribute_type == "Actual" and r.evse_id is not None and (r.value or "").isdigit():
            phases[r.evse_id] = int(r.value)
    return ConnectorFacts(types=types, power_w=power, phases=phases)


def default_connector(
    connector_id: int,
    evse: int,
    facts: ConnectorFacts,
    placement: PlacementRow | None,
    site: SiteRow | None,
) -> ConnectorSpec:
    """An undescribed connector as we publish it: its standard, format and power type from the device model's
    ConnectorType when it says (`mapping.CONNECTOR_TYPES`), its phases from the device model's SupplyPhases or
    else the placement's wiring; its voltage the site's nominal voltage, its current the placement's max_a, its
    power the device model's EVSE Power limit; what nothing says is DEFAULT_STANDARD / DEFAULT_FORMAT."""
    standard, format_, power_type = DEFAULT_STANDARD, DEFAULT_FORMAT, None
    known = mapping.CONNECTOR_TYPES.get(facts.types.get((evse, connector_id), ""))
    if known is not None:
        standard, format_, power_type = known
    if power_type is None:
        power_type = mapping.power_type_of_phases(facts.phases.get(evse))
    if power_type is None:
        power_type = (
            PowerType.AC_1_PHASE
            if placement is not None and placement.phases in _ONE_PHASE
            else PowerType.AC_3_PHASE
        )
    voltage = round(site.voltage_v) if site is not None else 230
    amperage = round(placement.max_a) if placement is not None and placement.max_a >= 1 else 32
    return ConnectorSpec(
        connector_id=connector_id,
        standard=standard,
        format=format_,
        power_type=power_type,
        max_voltage=max(1, voltage),
        max_amperage=max(1, amperage),
        max_electric_power=facts.power_w.get(evse),
    )


class _Evse:
    """One EVSE as published. `connectors` by id; `statuses` each connector's last OCPP status."""

    __slots__ = (
        "connectors",
        "described_at",
        "emi3",
        "evse",
        "reported",
        "status",
        "status_at",
        "statuses",
        "tariff_at",
        "uid",
    )

    def __init__(self, uid: str, evse: int, emi3: str | None, described_at: datetime) -> None:
        self.uid = uid
        self.evse = evse
        self.emi3 = emi3
        self.connectors: dict[int, ConnectorSpec] = {}
        self.statuses: dict[int, str] = {}
        # The charger's time (epoch s) of the report each status came from: a reload keeps a status the book
        # heard from an event when the table holds an older report (its write may not be committed yet), and
        # an event older than what a reload read is not applied after it.
        self.reported: dict[int, float] = {}
        self.described_at = described_at
        self.status = EvseStatus.UNKNOWN
        self.status_at = described_at
        # When its charger's tariff last changed while the book held it; None: not since its description.
        self.tariff_at: datetime | None = None

    @property
    def connectors_at(self) -> datetime:
        """Its connectors' `last_updated`: their description, or a later change of their tariff."""
        at = self.tariff_at
        return self.described_at if at is None or at < self.described_at else at

    @property
    def last_updated(self) -> datetime:
        return max(self.connectors_at, self.status_at)


class _Charger:
    __slots__ = ("described", "evses", "site_id", "stamp", "tariff_id")

    def __init__(
        self, site_id: str, described: bool, stamp: str | None = None, tariff_id: str | None = None
    ) -> None:
        self.site_id = site_id
        self.described = described
        self.evses: dict[int, _Evse] = {}
        # Its description's version (`EquipmentSource.stamps`) when it was built from one; None otherwise.
        self.stamp = stamp
        # The tariff its connectors name (`TariffSource.ad_hoc_tariff_id`), None when none applies.
        self.tariff_id = tariff_id


def _status_key(row_evse: int | None, connector_id: int) -> tuple[int, int]:
    """(EVSE, connector) of a status report: a 1.6 connector (no EVSE level) is an EVSE of its own."""
    return (connector_id, connector_id) if row_evse is None else (row_evse, connector_id)


class LocationBook:
    """Every site as an OCPI Location (see the module docstring). `country_code` and `party_id` are ours."""

    def __init__(
        self,
        sites: SiteSource,
        statuses: StatusSource,
        equipment: EquipmentSource,
        presence: PresenceSource,
        variables: VariableRows,
        bus: EventBus,
        clock: Clock,
        *,
        country_code: str,
        party_id: str,
        changes: Changes | None = None,
        tariffs: TariffSource | None = None,
    ) -> None:
        self._site_rows = sites
        self._status_rows = statuses
        self._equipment = equipment
        self._presence = presence
        self._variables = variables
        self._bus = bus
        self._clock = clock
        self.country_code = country_code
        self.party_id = party_id
        self.changes: Changes = changes or NoChanges()
        self._tariffs = tariffs
        # Every charger's tariff to be resolved again (a default assignment, a tariff changed): done by `_follow`
        # in slices, since the whole fleet is a few hundred ms of resolving.
        self._retariff_pending = False
        # The next instant a tariff's validity begins or ends (`TariffSource.next_validity_edge`).
        self._edge: datetime | None = None
        self._sites: dict[str, SiteRow] = {}
        self._chargers: dict[str, _Charger] = {}
        self._by_site: dict[str, set[str]] = {}
        self._uids: dict[str, tuple[str, int]] = {}
        self._facts: dict[str, ConnectorFacts] = {}
        # When an EVSE last left a site (a Location's shape changed without any remaining object saying so).
        self._shape_at: dict[str, datetime] = {}
        # The latest last_updated of any EVSE a site held, kept as they change, so that a Location's
        # last_updated is not a walk over its EVSEs (a GET page filters every site by it: at 100k EVSEs the walk
        # was ~0.3 s per page). An EVSE's time only moves forward, and one that leaves sets `_shape_at` to now,
        # so the maximum over every EVSE the site ever held is the maximum over those it holds.
        self._evses_at: dict[str, datetime] = {}
        self.reconciles = 0

    def _now(self) -> datetime:
        return ocpi_time(self._clock.now())

    def _online(self, charger_id: str) -> bool:
        p = self._presence.get(charger_id)
        return p is not None and p.online

    def _tariff_of(self, charger_id: str, site_id: str) -> str | None:
        if self._tariffs is None:
            return None
        return self._tariffs.ad_hoc_tariff_id(charger_id, site_id, self._clock.now())

    def _next_edge(self) -> datetime | None:
        return None if self._tariffs is None else self._tariffs.next_validity_edge(self._clock.now())

    def _edge_deadline(self) -> float:
        """trio's time at which to resolve tariffs again for the next validity edge (inf: none)."""
        if self._edge is None:
            return math.inf
        wait = (self._edge - self._clock.now()).total_seconds()
        return trio.current_time() + max(wait, 0.0) + _EDGE_LATE_S

    # -- running -------------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load everything, then follow the bus, reconciling after a loss and every RECONCILE_INTERVAL_S."""
        with self._bus.subscribe(_TYPES, capacity=SUBSCRIPTION_CAPACITY) as sub:
            self.reload(announce=False)
            self._edge = self._next_edge()
            task_status.started()
            while True:
                with trio.move_on_after(RECONCILE_INTERVAL_S):
                    await self._follow(sub)
                await self.reconcile()

    async def _follow(self, sub: Subscription) -> None:
        """Apply events until some were lost. Every event waiting is applied in one turn (up to BATCH): taking one
        per turn of the loop, the book fell behind a pump that publishes a batch of messages' events per turn
        (at 1,000 status changes a second it lost events every few seconds, and each loss cost a reload)."""
        while True:
            item: Event | EventsLost | None = None
            with trio.move_on_at(self._edge_deadline()):
                item = await sub.receive()
            if item is None:
                # A tariff's validity began or ended: the tariff that applies may have changed with no event.
                self._retariff_pending = True
            applied = 0
            while item is not None:
                if isinstance(item, EventsLost):
                    log.warning("OCPI locations lost %d events; reconciling", item.count)
                    return
                self.apply(item)
                applied += 1
                if applied >= BATCH:
                    break
                item = sub.receive_nowait()
            if self._retariff_pending:
                await self.retariff()

    async def retariff(self) -> None:
        """Resolve every charger's tariff again, RELOAD_SLICE chargers at a time with the loop free between
        them, telling `changes` of each EVSE whose connectors now name another; then find the next validity
        edge. For what may change every charger's: a default assignment, a tariff changed, an edge."""
        self._retariff_pending = False
        for i, cid in enumerate(list(self._chargers)):
            charger = self._chargers.get(cid)
            if charger is not None:
                self._retariff(cid, charger, True)
            if i % RELOAD_SLICE == RELOAD_SLICE - 1:
                await trio.lowlevel.checkpoint()
        self._edge = self._next_edge()

    # -- loading -------------------------------------------------------------------------------------------------

    def reload(self, *, announce: bool) -> None:
        """Read sites, placements, descriptions and statuses again; with `announce`, tell `changes` of every
        EVSE whose status or shape differs from what was held (after a loss: what the events missed). All at
        once: at start, and in tests; the running book uses `reconcile`."""
        for _ in self._reload(announce):
            pass

    async def reconcile(self) -> None:
        """`reload(announce=True)` in slices of RELOAD_SLICE chargers, letting other tasks run between them: at
        100k chargers a whole reload was seconds of CPU with the loop that answers the chargers stopped. The
        events that come meanwhile wait in the subscription and are applied after it."""
        for _ in self._reload(True):
            await trio.lowlevel.checkpoint()

    def _reload(self, announce: bool) -> Iterator[None]:
        """The reload, yielding between its reads and every RELOAD_SLICE chargers. A described charger whose
        site and description did not change (its stamp) only has its statuses compared; the others are rebuilt
        from their description (read one by one when few, else all at once) or their statuses."""
        self.reconciles += 1
        sites: dict[str, SiteRow] = {}
        after: str | None = None
        while True:
            page = self._site_rows.sites(_SITE_PAGE, after)
            sites.update((s.id, s) for s in page)
            if len(page) < _SITE_PAGE:
                break
            after = page[-1].id
        stamps = self._equipment.stamps()
        yield
        statuses: dict[str, list[ConnectorStatusRow]] = {}
        for cid, status_row in self._status_rows.every_status():
            statuses.setdefault(cid, []).append(status_row)
        yield
        placed = dict(self._site_rows.site_of_every_charger())
        rebuild = [
            cid for cid, site_id in placed.items() if not self._unchanged(cid, site_id, stamps.get(cid))
        ]
        every = self._equipment.every() if len(rebuild) > _READ_ONE_BY_ONE else None
        yield
        old_sites = self._sites
        self._sites = sites
        for site_id in old_sites.keys() - sites.keys():
            self._drop_site(site_id, announce)
        for cid in self._chargers.keys() - placed.keys():
            self._drop_charger(cid, announce)
        now = self._now()
        for i, (cid, site_id) in enumerate(placed.items()):
            stamp = stamps.get(cid)
            rows = statuses.get(cid, [])
            old = self._chargers.get(cid)
            if old is not None and self._unchanged(cid, site_id, stamp):
                self._restatus_from(cid, old, rows, announce, now)
            else:
                described = None
                if stamp is not None:
                    described = every.get(cid) if every is not None else self._equipment.get(cid)
                self._load_charger(cid, site_id, described, rows, announce, stamp=stamp, now=now)
            if i % RELOAD_SLICE == RELOAD_SLICE - 1:
                yield
                now = self._now()
        if announce:
            for site_id, row in sites.items():
                before = old_sites.get(site_id)
                if before is None or before.updated_at != row.updated_at:
                    self.changes.location_changed(site_id)
        self._edge = self._next_edge()

    def _unchanged(self, cid: str, site_id: str, stamp: str | None) -> bool:
        """Whether the charger is held as built from this very description at this site."""
        old = self._chargers.get(cid)
        return old is not None and stamp is not None and old.stamp == stamp and old.site_id == site_id

    def _restatus_from(
        self, cid: str, charger: _Charger, rows: Iterable[ConnectorStatusRow], announce: bool, now: datetime
    ) -> None:
        """A charger whose shape is unchanged: its statuses from the table (unless the book's are newer)."""
        for row in rows:
            e, c = _status_key(row.evse_id, row.connector_id)
            evse = charger.evses.get(e)
            if evse is not None and c in evse.connectors:
                _take_row(evse, c, row)
        online = self._online(cid)
        for evse in charger.evses.values():
            status = self._status_of(evse, online)
            if status != evse.status:
                evse.status = status
                evse.status_at = now
                self._touch(charger.site_id, evse)
                if announce:
                    self.changes.evse_changed(charger.site_id, evse.uid)
        self._retariff(cid, charger, announce)

    def _retariff(self, cid: str, charger: _Charger, announce: bool) -> None:
        """Resolve the charger's tariff again; when it changed, so did its connectors (`last_updated`)."""
        tariff_id = self._tariff_of(cid, charger.site_id)
        if tariff_id == charger.tariff_id:
            return
        charger.tariff_id = tariff_id
        now = self._now()
        for evse in charger.evses.values():
            evse.tariff_at = now
            self._touch(charger.site_id, evse)
            if announce:
                self.changes.tariffs_changed(charger.site_id, evse.uid)

    def _load_charger(
        self,
        cid: str,
        site_id: str,
        described: Equipment | None,
        rows: Iterable[ConnectorStatusRow],
        announce: bool,
        *,
        stamp: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """(Re)build one charger's EVSEs from its description (or its statuses) and statuses. `stamp`: the
        description's version, when the caller read it (`reload`)."""
        now = now or self._now()
        old = self._chargers.get(cid)
        if old is not None and old.site_id != site_id:
            self._drop_charger(cid, announce)
            old = None
        charger = _Charger(
            site_id,
            described is not None,
            stamp if described is not None else None,
            self._tariff_of(cid, site_id),
        )
        rows = list(rows)
        if described is not None:
            at = ocpi_time(described.updated_at)
            for spec in described.evses:
                emi3 = spec.emi3_id or mapping.default_emi3(
                    self.country_code, self.party_id, cid, spec.evse_id
                )
                evse = _Evse(mapping.evse_uid(cid, spec.evse_id), spec.evse_id, emi3, at)
                evse.connectors = {c.connector_id: c for c in spec.connectors}
                charger.evses[spec.evse_id] = evse
        else:
            facts = self._facts_of(cid)
            placement = self._site_rows.placement(cid)
            site = self._sites.get(site_id)
            for row in rows:
                if not is_connector(row.evse_id, row.connector_id):
                    continue
                e, c = _status_key(row.evse_id, row.connector_id)
                found = charger.evses.get(e)
                if found is None:
                    prior = old.evses.get(e) if old is not None and not old.described else None
                    found = _Evse(
                        mapping.evse_uid(cid, e),
                        e,
                        mapping.default_emi3(self.country_code, self.party_id, cid, e),
                        prior.described_at if prior is not None else now,
                    )
                    charger.evses[e] = found
                found.connectors[c] = default_connector(c, e, facts, placement, site)
        for evse in charger.evses.values():
            # What the book heard of the same connectors, kept unless the table holds a newer report.
            prior = old.evses.get(evse.evse) if old is not None else None
            if prior is not None:
                for c in evse.connectors.keys() & prior.statuses.keys():
                    evse.statuses[c] = prior.statuses[c]
                    if c in prior.reported:
                        evse.reported[c] = prior.reported[c]
        for row in rows:
            e, c = _status_key(row.evse_id, row.connector_id)
            target = charger.evses.get(e)
            if target is not None and c in target.connectors:
                _take_row(target, c, row)
        online = self._online(cid)
        for evse in charger.evses.values():
            evse.status = self._status_of(evse, online)
            prior = old.evses.get(evse.evse) if old is not None else None
            if prior is None:
                evse.status_at = evse.described_at if old is None and not announce else now
            elif prior.status == evse.status:
                evse.status_at = prior.status_at
            else:
                evse.status_at = now
            if old is not None and prior is not None:
                evse.tariff_at = prior.tariff_at if old.tariff_id == charger.tariff_id else now
        self._install(cid, charger, old, announce)

    def _install(self, cid: str, charger: _Charger, old: _Charger | None, announce: bool) -> None:
        site_id = charger.site_id
        self._chargers[cid] = charger
        self._by_site.setdefault(site_id, set()).add(cid)
        for evse in charger.evses.values():
            self._uids[evse.uid.upper()] = (cid, evse.evse)
            self._touch(site_id, evse)
        shape_changed = old is None and bool(charger.evses)
        if old is not None:
            for e, gone in old.evses.items():
                if e not in charger.evses:
                    self._uids.pop(gone.uid.upper(), None)
                    self._shape_at[site_id] = self._now()
                    if announce:
                        self.changes.evse_removed(site_id, gone.uid, self._now())
            shape_changed = shape_changed or _shape(old) != _shape(charger)
        if not announce:
            return
        if shape_changed:
            self.changes.location_changed(site_id)
            return
        retariffed = old is not None and old.tariff_id != charger.tariff_id
        for e, evse in charger.evses.items():
            prior = old.evses.get(e) if old is not None else None
            if prior is None or prior.status != evse.status:
                self.changes.evse_changed(site_id, evse.uid)
            if retariffed:
                self.changes.tariffs_changed(site_id, evse.uid)

    def _drop_charger(self, cid: str, announce: bool) -> None:
        charger = self._chargers.pop(cid, None)
        if charger is None:
            return
        site = self._by_site.get(charger.site_id)
        if site is not None:
            site.discard(cid)
        now = self._now()
        for evse in charger.evses.values():
            self._uids.pop(evse.uid.upper(), None)
            if announce:
                self.changes.evse_removed(charger.site_id, evse.uid, now)
        if charger.evses:
            self._shape_at[charger.site_id] = now

    def _drop_site(self, site_id: str, announce: bool) -> None:
        for cid in list(self._by_site.get(site_id, ())):
            self._drop_charger(cid, announce)
        self._by_site.pop(site_id, None)

    def _facts_of(self, cid: str) -> ConnectorFacts:
        facts = self._facts.get(cid)
        if facts is None:
            facts = self._facts[cid] = read_facts(self._variables, cid)
        return facts

    def _status_of(self, evse: _Evse, online: bool) -> EvseStatus:
        return mapping.combine(mapping.evse_status(evse.statuses.get(c), online) for c in evse.connectors)

    # -- events --------------------------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Follow one bus event (see the module docstring)."""
        if isinstance(event, ConnectorStatusChanged):
            self._on_status(event)
        elif isinstance(event, ChargerConnected | ChargerDisconnected):
            if event.charger_id is not None:
                self._on_presence(event.charger_id)
        elif isinstance(event, ChargerPlaced | ChargerUnplaced | ChargerConnectorsChanged | ChargerBooted):
            if event.charger_id is not None:
                if isinstance(event, ChargerBooted | ChargerConnectorsChanged | ChargerPlaced):
                    self._facts.pop(event.charger_id, None)
                held = self._chargers.get(event.charger_id)
                if isinstance(event, ChargerBooted) and held is not None and held.described:
                    # A boot may bring a new device model, which only an undescribed charger's connectors read;
                    # its statuses come as events. Reading it again cost three queries per charger in a boot
                    # storm of the whole fleet.
                    return
                self.reload_charger(event.charger_id)
        elif isinstance(event, SiteCreated | SiteUpdated):
            row = self._site_rows.site(event.site_id)
            if row is not None:
                self._sites[row.id] = row
                for cid in list(self._by_site.get(row.id, ())):
                    # Voltages feed the connector defaults; reloading also picks up nothing else.
                    self.reload_charger(cid, announce_shape=False)
                self.changes.location_changed(row.id)
        elif isinstance(event, SiteDeleted):
            self._sites.pop(event.site_id, None)
            self._drop_site(event.site_id, True)
        elif isinstance(event, TariffAssigned):
            self._on_assigned(event)
        elif isinstance(event, TariffChanged):
            self._on_tariff_changed(event)

    def _on_tariff_changed(self, ev: TariffChanged) -> None:
        """A tariff replaced may have moved its validity, so any charger's tariff may change (every charger
        again, in slices: `retariff`). One created is named by no assignment yet (billing assigns only tariffs it
        holds) and one deleted by none any more (billing refuses to delete an assigned one): only the next
        validity edge may have moved, and the chargers that still name a deleted one are resolved again."""
        if ev.change == "updated":
            self._retariff_pending = True
            return
        if ev.change == "deleted":
            for cid, charger in list(self._chargers.items()):
                if charger.tariff_id == ev.tariff_id:
                    self._retariff(cid, charger, True)
        self._edge = self._next_edge()

    def _on_assigned(self, ev: TariffAssigned) -> None:
        """A charger's assignment changes that charger's tariff, a site's those of its chargers, the default's
        anyone's (in slices, `retariff`); an id-token group's no connector's (it stays off the Location)."""
        if ev.scope == "charger" and ev.subject is not None:
            charger = self._chargers.get(ev.subject)
            if charger is not None:
                self._retariff(ev.subject, charger, True)
        elif ev.scope == "site" and ev.subject is not None:
            for cid in sorted(self._by_site.get(ev.subject, ())):
                self._retariff(cid, self._chargers[cid], True)
        elif ev.scope == "default":
            self._retariff_pending = True

    def reload_charger(self, cid: str, *, announce_shape: bool = True) -> None:
        """Read one charger's placement, description and statuses again."""
        placement = self._site_rows.placement(cid)
        if placement is None:
            self._drop_charger(cid, True)
            return
        self._load_charger(
            cid, placement.site_id, self._equipment.get(cid), self._status_rows.statuses(cid), announce_shape
        )

    def _on_status(self, ev: ConnectorStatusChanged) -> None:
        cid = ev.charger_id
        charger = self._chargers.get(cid) if cid is not None else None
        if charger is None or cid is None or not is_connector(ev.evse_id, ev.connector_id):
            return
        e, c = _status_key(ev.evse_id, ev.connector_id)
        evse = charger.evses.get(e)
        if evse is None or c not in evse.connectors:
            if not charger.described:
                # A connector first heard of: the Location gains an EVSE or connector.
                self._add_found(cid, charger, e, c, ev.status, ev.reported_at.timestamp())
            return
        at = ev.reported_at.timestamp()
        if at < evse.reported.get(c, at) - _SAME_REPORT_S:
            return  # older than what a reload read from the table meanwhile
        evse.statuses[c] = ev.status
        evse.reported[c] = at
        self._restatus(charger, evse, self._online(cid))

    def _add_found(self, cid: str, charger: _Charger, e: int, c: int, status: str, reported: float) -> None:
        now = self._now()
        evse = charger.evses.get(e)
        if evse is None:
            evse = _Evse(
                mapping.evse_uid(cid, e),
                e,
                mapping.default_emi3(self.country_code, self.party_id, cid, e),
                now,
            )
            charger.evses[e] = evse
            self._uids[evse.uid.upper()] = (cid, e)
        evse.connectors[c] = default_connector(
            c, e, self._facts_of(cid), self._site_rows.placement(cid), self._sites.get(charger.site_id)
        )
        evse.described_at = now
        evse.statuses[c] = status
        evse.reported[c] = reported
        evse.status = self._status_of(evse, self._online(cid))
        evse.status_at = now
        self._touch(charger.site_id, evse)
        self.changes.location_changed(charger.site_id)

    def _on_presence(self, cid: str) -> None:
        charger = self._chargers.get(cid)
        if charger is None:
            return
        online = self._online(cid)
        for evse in charger.evses.values():
            self._restatus(charger, evse, online)

    def _restatus(self, charger: _Charger, evse: _Evse, online: bool) -> None:
        status = self._status_of(evse, online)
        if status != evse.status:
            evse.status = status
            evse.status_at = self._now()
            self._touch(charger.site_id, evse)
            self.changes.evse_changed(charger.site_id, evse.uid)

    # -- OCPI objects --------------------------------------------------------------------------------------------

    def _publishable(self, site_id: str) -> SiteRow | None:
        row = self._sites.get(site_id)
        if row is None or row.location is None or not row.ocpi_publish:
            return None
        loc = row.location
        if not (loc.address and loc.city and loc.country):
            return None
        if not any(self._chargers[cid].evses for cid in self._by_site.get(site_id, ())):
            return None
        return row

    def _evses(self, site_id: str) -> list[tuple[str, _Evse]]:
        out = []
        for cid in sorted(self._by_site.get(site_id, ())):
            for e in sorted(self._chargers[cid].evses):
                out.append((cid, self._chargers[cid].evses[e]))
        return out

    def _last_updated(self, row: SiteRow) -> datetime:
        at = ocpi_time(row.updated_at)
        shaped = self._shape_at.get(row.id)
        if shaped is not None and shaped > at:
            at = shaped
        latest = self._evses_at.get(row.id)
        if latest is not None and latest > at:
            at = latest
        return at

    def _touch(self, site_id: str, evse: _Evse) -> None:
        """Keep the latest `last_updated` of the site's EVSEs (`_evses_at`) up to date with `evse`'s."""
        at = evse.last_updated
        latest = self._evses_at.get(site_id)
        if latest is None or at > latest:
            self._evses_at[site_id] = at

    def location_ids(self) -> list[str]:
        """The ids of every published Location, in id order."""
        return [s for s in sorted(self._sites) if self._publishable(s) is not None]

    def page(
        self, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int
    ) -> tuple[int, list[Location]]:
        """Published Locations in id order whose last_updated is in [date_from, date_to): how many there are in
        all, and those from `offset`, at most `limit`."""
        matching: list[SiteRow] = []
        for site_id in sorted(self._sites):
            row = self._publishable(site_id)
            if row is None:
                continue
            at = self._last_updated(row)
            if (date_from is None or at >= date_from) and (date_to is None or at < date_to):
                matching.append(row)
        return len(matching), [self._location(r) for r in matching[offset : offset + limit]]

    def location(self, location_id: str) -> Location | None:
        """One published Location (the id compared without case, as OCPI's CiString), or None."""
        row = self._publishable(self._site_id(location_id))
        return None if row is None else self._location(row)

    def evse(self, location_id: str, uid: str) -> Evse | None:
        """One EVSE of a published Location, or None."""
        found = self._find(location_id, uid)
        return None if found is None else self._evse_object(found[0], found[1])

    def evse_state(self, location_id: str, uid: str) -> tuple[EvseStatus, datetime] | None:
        """An EVSE's status and last_updated (what a status push carries), or None when it is not published."""
        found = self._find(location_id, uid)
        return None if found is None else (found[1].status, found[1].last_updated)

    def connector(self, location_id: str, uid: str, connector_id: str) -> Connector | None:
        found = self._find(location_id, uid)
        if found is None or not connector_id.isdigit():
            return None
        spec = found[1].connectors.get(int(connector_id))
        if spec is None:
            return None
        return _connector(spec, found[1].connectors_at, self._chargers[found[0]].tariff_id)

    def published_evses(self, charger_id: str) -> list[tuple[str, Evse]] | None:
        """The charger's EVSEs as published, each with its Location's id (whether or not the site is complete
        enough to be published); None when the charger is placed at no site."""
        charger = self._chargers.get(charger_id)
        if charger is None:
            return None
        return [
            (charger.site_id, self._evse_object(charger_id, charger.evses[e])) for e in sorted(charger.evses)
        ]

    def site_evses(self, site_id: str) -> list[tuple[str, Evse]]:
        """The EVSEs at site `site_id` as published, each with its charger's id, in charger and EVSE order,
        whether or not the site is complete enough to be an OCPI Location (the public locations route has its
        own opt-in and needs no address). Costs O(the site's EVSEs): statuses are kept mapped."""
        return [(cid, self._evse_object(cid, evse)) for cid, evse in self._evses(site_id)]

    def published_location(self, charger_id: str) -> tuple[str, list[str]] | None:
        """(Location id, its EVSE uids at the charger) when the charger's site is published as a Location: the
        LocationReferences of a real-time authorization there. None otherwise."""
        charger = self._chargers.get(charger_id)
        if charger is None or self._publishable(charger.site_id) is None:
            return None
        return charger.site_id, [charger.evses[e].uid for e in sorted(charger.evses)]

    def place(self, location_id: str, uid: str) -> tuple[str, int, EvseStatus, tuple[int, ...]] | None:
        """(charger id, EVSE number, its status, its connector ids) of an EVSE of a published Location (ids
        compared without case): where a command goes. None when the Location does not list it."""
        found = self._find(location_id, uid)
        if found is None:
            return None
        evse = found[1]
        return found[0], evse.evse, evse.status, tuple(sorted(evse.connectors))

    def chargers_at(self, location_id: str) -> list[str]:
        """The chargers whose EVSEs a published Location lists (ids compared without case), in id order."""
        site_id = self._site_id(location_id)
        if self._publishable(site_id) is None:
            return []
        return sorted(c for c in self._by_site.get(site_id, ()) if self._chargers[c].evses)

    def locate(self, uid: str) -> tuple[str, str, int] | None:
        """(location id, charger id, EVSE number) of an EVSE uid: for the modules that turn OCPI requests into
        OCPP calls (commands, sessions)."""
        key = self._uids.get(uid.upper())
        if key is None:
            return None
        charger = self._chargers.get(key[0])
        return None if charger is None else (charger.site_id, key[0], key[1])

    def _site_id(self, location_id: str) -> str:
        if location_id in self._sites:
            return location_id
        folded = location_id.casefold()
        return next((s for s in self._sites if s.casefold() == folded), location_id)

    def _find(self, location_id: str, uid: str) -> tuple[str, _Evse] | None:
        site_id = self._site_id(location_id)
        if self._publishable(site_id) is None:
            return None
        key = self._uids.get(uid.upper())
        if key is None:
            return None
        charger = self._chargers.get(key[0])
        if charger is None or charger.site_id != site_id or key[1] not in charger.evses:
            return None
        return key[0], charger.evses[key[1]]

    def _location(self, row: SiteRow) -> Location:
        loc = row.location
        assert loc is not None and loc.address and loc.city and loc.country
        return Location(
            country_code=self.country_code,
            party_id=self.party_id,
            id=row.id,
            publish=True,
            name=row.name,
            address=loc.address,
            city=loc.city,
            postal_code=loc.postal_code,
            country=loc.country,
            coordinates=GeoLocation(latitude=f"{loc.lat:.6f}", longitude=f"{loc.lon:.6f}"),
            time_zone=row.time_zone,
            evses=[self._evse_object(cid, evse) for cid, evse in self._evses(row.id)],
            last_updated=self._last_updated(row),
        )

    def _evse_object(self, cid: str, evse: _Evse) -> Evse:
        tariff_id, at = self._chargers[cid].tariff_id, evse.connectors_at
        return Evse(
            uid=evse.uid,
            evse_id=evse.emi3,
            status=evse.status,
            connectors=[_connector(evse.connectors[c], at, tariff_id) for c in sorted(evse.connectors)],
            last_updated=evse.last_updated,
        )


def _connector(spec: ConnectorSpec, at: datetime, tariff_id: str | None) -> Connector:
    return Connector(
        id=str(spec.connector_id),
        standard=spec.standard,
        format=spec.format,
        power_type=spec.power_type,
        max_voltage=spec.max_voltage,
        max_amperage=spec.max_amperage,
        max_electric_power=spec.max_electric_power,
        tariff_ids=None if tariff_id is None else [tariff_id],
        last_updated=at,
    )


def _shape(charger: _Charger) -> dict[int, tuple[Any, ...]]:
    return {
        e: (evse.emi3, tuple(sorted(evse.connectors.items(), key=lambda kv: kv[0])))
        for e, evse in charger.evses.items()
    }


def _take_row(evse: _Evse, connector: int, row: ConnectorStatusRow) -> None:
    """A connector's status from the table, unless the book holds a newer report of it (an event whose write is
    not committed yet)."""
    at = row.updated_at.timestamp()
    if evse.reported.get(connector, at) > at + _SAME_REPORT_S:
        return
    evse.statuses[connector] = row.status
    evse.reported[connector] = at
