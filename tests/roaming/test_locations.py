"""The locations book alone, over in-memory stand-ins for the tables and presence: what a site publishes (EVSEs
from descriptions or from statuses, 1.6 one EVSE per connector, 2.0.1 connectors per EVSE, device-model
defaults), how bus events change statuses and `last_updated`, what it tells the pusher, the paging filter, and
the tariff each connector names (billing's assignments resolved by billing's own `resolve`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import trio
import trio.lowlevel
import trio.testing

from ampgate.billing.tariffs import resolve
from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.devicemodel.repository import VariableRow
from ampgate.events import (
    ChargerConnected,
    ChargerDisconnected,
    ChargerUnplaced,
    ConnectorStatusChanged,
    SiteUpdated,
    TariffAssigned,
    TariffChanged,
)
from ampgate.load.model import Location as SiteLocation
from ampgate.load.model import PlacementRow, SiteRow
from ampgate.pricing import Tariff
from ampgate.roaming.equipment import ConnectorSpec, Equipment, EvseSpec
from ampgate.roaming.locations import RECONCILE_INTERVAL_S, RELOAD_SLICE, LocationBook
from ampgate.roaming.types import ConnectorFormat, ConnectorType, EvseStatus, PowerType
from ampgate.store.connector_status import ConnectorStatusRow
from tests.pricing.builders import comp, element, tariff

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class StepClock(Clock):
    def __init__(self) -> None:
        self.at = T0

    def wall(self) -> float:
        return self.at.timestamp()


def site(site_id: str, *, address: str | None = "Stationsplein 1") -> SiteRow:
    return SiteRow(
        id=site_id,
        name=None,
        phase_limits_a=(63.0, 63.0, 63.0),
        limit_kw=None,
        voltage_v=230.0,
        time_zone="Europe/Amsterdam",
        location=SiteLocation(lat=52.0894, lon=5.11, address=address, city="Utrecht", country="NLD"),
        ean=None,
        created_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
    )


def placement(cid: str, site_id: str, phases: str = "L1L2L3") -> PlacementRow:
    return PlacementRow(
        charger_id=cid,
        site_id=site_id,
        node_id=None,
        phases=phases,
        max_a=16.0,
        priority=0,
        weight=1.0,
        created_at=T0,
        updated_at=T0,
    )


def status(evse: int | None, connector: int, word: str) -> ConnectorStatusRow:
    return ConnectorStatusRow(
        evse_id=evse, connector_id=connector, status=word, error_code=None, updated_at=T0
    )


@dataclass
class Online:
    online: bool


@dataclass
class World:
    sites: dict[str, SiteRow] = field(default_factory=dict)
    placements: dict[str, PlacementRow] = field(default_factory=dict)
    statuses_: dict[str, list[ConnectorStatusRow]] = field(default_factory=dict)
    equipment: dict[str, Equipment] = field(default_factory=dict)
    online: set[str] = field(default_factory=set)
    variables: list[VariableRow] = field(default_factory=list)
    told: list[tuple[str, ...]] = field(default_factory=list)

    # SiteSource
    def site(self, site_id: str) -> SiteRow | None:
        return self.sites.get(site_id)

    def sites_page(self, limit: int, after: str | None = None) -> list[SiteRow]:
        return [self.sites[k] for k in sorted(self.sites) if after is None or k > after][:limit]

    def placement(self, cid: str) -> PlacementRow | None:
        return self.placements.get(cid)

    def site_of_every_charger(self) -> list[tuple[str, str]]:
        return [(cid, p.site_id) for cid, p in self.placements.items()]

    # StatusSource
    def statuses(self, cid: str) -> list[ConnectorStatusRow]:
        return list(self.statuses_.get(cid, []))

    def every_status(self) -> list[tuple[str, ConnectorStatusRow]]:
        return [(cid, r) for cid, rows in self.statuses_.items() for r in rows]

    # EquipmentSource
    def get(self, cid: str) -> Equipment | None:
        return self.equipment.get(cid)

    def every(self) -> dict[str, Equipment]:
        return dict(self.equipment)

    def stamps(self) -> dict[str, str]:
        return {cid: e.updated_at.isoformat() for cid, e in self.equipment.items()}

    # Changes
    def evse_changed(self, location_id: str, uid: str) -> None:
        self.told.append(("evse", location_id, uid))

    def location_changed(self, location_id: str) -> None:
        self.told.append(("location", location_id))

    def evse_removed(self, location_id: str, uid: str, at: datetime) -> None:
        self.told.append(("removed", location_id, uid))

    def tariffs_changed(self, location_id: str, uid: str) -> None:
        self.told.append(("tariffs", location_id, uid))


@dataclass
class Assignments:
    """Billing's tariffs and assignments (scope, subject) → tariff id, resolved as `Tariffs` does: by billing's
    `resolve` without a group."""

    tariffs: dict[str, Tariff] = field(default_factory=dict)
    assigned: dict[tuple[str, str], str] = field(default_factory=dict)

    def ad_hoc_tariff_id(self, charger_id: str, site_id: str | None, at: datetime) -> str | None:
        found = resolve(
            self.assigned, self.tariffs, group=None, charger_id=charger_id, site_id=site_id, at=at
        )
        return None if found is None else found[0]

    def next_validity_edge(self, after: datetime) -> datetime | None:
        edges = [
            e
            for t in self.tariffs.values()
            for e in (t.start_date_time, t.end_date_time)
            if e is not None and e > after
        ]
        return min(edges, default=None)


class Sites:
    def __init__(self, w: World) -> None:
        self.w = w

    def site(self, site_id: str) -> SiteRow | None:
        return self.w.site(site_id)

    def sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        return self.w.sites_page(limit, after)

    def placement(self, cid: str) -> PlacementRow | None:
        return self.w.placement(cid)

    def site_of_every_charger(self) -> list[tuple[str, str]]:
        return self.w.site_of_every_charger()


class Presence:
    def __init__(self, w: World) -> None:
        self.w = w

    def get(self, cid: str) -> Online:
        return Online(cid in self.w.online)


class Variables:
    def __init__(self, w: World) -> None:
        self.w = w

    def page(
        self, cid: str, limit: int, *, component: str | None = None, variable: str | None = None
    ) -> list[Any]:
        return [r for r in self.w.variables if r.component == component and r.variable == variable]


def book(
    w: World, clock: StepClock, tariffs: Assignments | None = None, bus: EventBus | None = None
) -> LocationBook:
    b = LocationBook(
        Sites(w),
        w,
        w,
        Presence(w),
        Variables(w),
        bus or EventBus(),
        clock,
        country_code="NL",
        party_id="AMP",
        changes=w,
        tariffs=tariffs,
    )
    b.reload(announce=False)
    return b


def t2(evse: int, *connectors: int) -> EvseSpec:
    return EvseSpec(
        evse_id=evse,
        connectors=tuple(
            ConnectorSpec(
                connector_id=c,
                standard=ConnectorType.IEC_62196_T2,
                format=ConnectorFormat.CABLE,
                power_type=PowerType.AC_3_PHASE,
                max_voltage=230,
                max_amperage=32,
            )
            for c in connectors or (evse,)
        ),
    )


def test_a_16_charger_publishes_one_evse_per_connector_from_its_statuses() -> None:
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP16"] = placement("CP16", "S1", phases="L1")
    w.statuses_["CP16"] = [
        status(None, 0, "Available"),
        status(None, 1, "Charging"),
        status(None, 2, "Faulted"),
    ]
    w.online.add("CP16")
    loc = book(w, clock).location("S1")
    assert loc is not None and loc.evses is not None
    assert [(e.uid, e.status, [c.id for c in e.connectors]) for e in loc.evses] == [
        ("CP16-1", EvseStatus.CHARGING, ["1"]),
        ("CP16-2", EvseStatus.OUTOFORDER, ["2"]),
    ]
    c = loc.evses[0].connectors[0]
    # Undescribed: Type 2 socket, the placement's wiring and current, the site's voltage.
    assert (c.standard, c.format, c.power_type, c.max_voltage, c.max_amperage) == (
        ConnectorType.IEC_62196_T2,
        ConnectorFormat.SOCKET,
        PowerType.AC_1_PHASE,
        230,
        16,
    )
    assert loc.evses[0].evse_id == "NL*AMP*ECP16*1"


def test_a_201_charger_has_its_connectors_per_evse_and_device_model_defaults() -> None:
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP2"] = placement("CP2", "S1")
    w.statuses_["CP2"] = [status(1, 1, "Occupied"), status(1, 2, "Unavailable"), status(2, 1, "Available")]
    w.online.add("CP2")

    def var(
        component: str, variable: str, evse: int, connector: int | None, value: str | None, **kw: Any
    ) -> None:
        w.variables.append(
            VariableRow(
                component=component,
                component_instance=None,
                evse_id=evse,
                connector_id=connector,
                variable=variable,
                variable_instance=None,
                attribute_type="Actual",
                value=value,
                mutability=None,
                persistent=None,
                constant=None,
                characteristics=kw or None,
                updated_at=T0,
            )
        )

    var("Connector", "ConnectorType", 2, 1, "cCCS2")
    var("EVSE", "Power", 2, None, "0", maxLimit=150000)
    loc = book(w, clock).location("S1")
    assert loc is not None and loc.evses is not None
    one, two = loc.evses
    assert one.uid == "CP2-1" and [c.id for c in one.connectors] == ["1", "2"]
    assert one.status is EvseStatus.CHARGING  # Occupied on one connector, the other Unavailable meanwhile
    assert two.status is EvseStatus.AVAILABLE
    dc = two.connectors[0]
    assert (dc.standard, dc.format, dc.power_type, dc.max_electric_power) == (
        ConnectorType.IEC_62196_T2_COMBO,
        ConnectorFormat.CABLE,
        PowerType.DC,
        150000,
    )


def test_status_events_and_presence_change_the_status_and_last_updated() -> None:
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP"] = placement("CP", "S1")
    w.equipment["CP"] = Equipment(charger_id="CP", evses=(t2(1), t2(2)), updated_at=T0 - timedelta(hours=1))
    b = book(w, clock)
    assert b.evse_state("S1", "CP-1") == (EvseStatus.UNKNOWN, T0 - timedelta(hours=1))

    clock.at = T0 + timedelta(minutes=1)
    w.online.add("CP")
    b.apply(
        ChargerConnected(at=clock.now(), charger_id="CP", conn_id=1, protocol="ocpp1.6", remote_address="x")
    )
    assert w.told == []  # still nothing known: UNKNOWN stays UNKNOWN
    ev = ConnectorStatusChanged(
        at=clock.now(),
        charger_id="CP",
        evse_id=None,
        connector_id=1,
        old_status=None,
        status="Charging",
        error_code=None,
        reported_at=clock.now(),
    )
    b.apply(ev)
    assert w.told == [("evse", "S1", "CP-1")]
    assert b.evse_state("S1", "CP-1") == (EvseStatus.CHARGING, clock.now().replace(microsecond=0))
    loc = b.location("S1")
    assert loc is not None and loc.last_updated == clock.now()  # carried up to the Location

    clock.at = T0 + timedelta(minutes=2)
    w.online.clear()
    b.apply(ChargerDisconnected(at=clock.now(), charger_id="CP", conn_id=1, code=1006, reason="lost"))
    # EVSE 2 was UNKNOWN already: only EVSE 1 changed.
    assert w.told[1:] == [("evse", "S1", "CP-1")]
    assert b.evse_state("S1", "CP-1") == (EvseStatus.UNKNOWN, clock.now())


def test_a_connector_first_heard_of_reshapes_the_location() -> None:
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP"] = placement("CP", "S1")
    w.online.add("CP")
    b = book(w, clock)
    assert b.location("S1") is None  # no EVSE yet: not published
    b.apply(
        ConnectorStatusChanged(
            at=clock.now(),
            charger_id="CP",
            evse_id=1,
            connector_id=1,
            old_status=None,
            status="Available",
            error_code=None,
            reported_at=clock.now(),
        )
    )
    assert w.told == [("location", "S1")]
    assert b.evse_state("S1", "CP-1") == (EvseStatus.AVAILABLE, clock.now())
    assert b.locate("cp-1") == ("S1", "CP", 1)


def test_paging_filters_on_last_updated_and_skips_sites_ocpi_cannot_publish() -> None:
    w, clock = World(), StepClock()
    for s in ("A", "B", "C"):
        w.sites[s] = site(s)
        w.placements[f"CP{s}"] = placement(f"CP{s}", s)
        w.equipment[f"CP{s}"] = Equipment(charger_id=f"CP{s}", evses=(t2(1),), updated_at=T0)
    w.sites["N"] = site("N", address=None)
    w.placements["CPN"] = placement("CPN", "N")
    w.equipment["CPN"] = Equipment(charger_id="CPN", evses=(t2(1),), updated_at=T0)
    w.sites["E"] = site("E")  # no EVSE
    b = book(w, clock)
    total, page = b.page(None, None, 0, 2)
    assert total == 3 and [loc.id for loc in page] == ["A", "B"]
    assert b.page(None, None, 2, 2)[1][0].id == "C"

    clock.at = T0 + timedelta(hours=1)
    w.online.add("CPB")
    b.apply(
        ConnectorStatusChanged(
            at=clock.now(),
            charger_id="CPB",
            evse_id=None,
            connector_id=1,
            old_status=None,
            status="Reserved",
            error_code=None,
            reported_at=clock.now(),
        )
    )
    since = T0 + timedelta(minutes=30)
    total, page = b.page(since, None, 0, 10)
    assert total == 1 and page[0].id == "B" and page[0].last_updated == clock.now()
    assert b.page(None, since, 0, 10)[0] == 2  # date_to is exclusive of later ones
    assert b.page(clock.now(), None, 0, 10)[0] == 1  # date_from is inclusive


def test_after_a_loss_the_reload_tells_what_the_events_missed() -> None:
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP"] = placement("CP", "S1")
    w.equipment["CP"] = Equipment(charger_id="CP", evses=(t2(1),), updated_at=T0)
    w.online.add("CP")
    w.statuses_["CP"] = [status(None, 1, "Available")]
    b = book(w, clock)
    w.statuses_["CP"] = [status(None, 1, "Faulted")]  # no event reached the book
    clock.at = T0 + timedelta(minutes=5)
    b.reload(announce=True)
    assert ("evse", "S1", "CP-1") in w.told
    assert b.evse_state("S1", "CP-1") == (EvseStatus.OUTOFORDER, clock.now())


def test_a_charger_taken_out_of_its_site_removes_its_evses() -> None:
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP"] = placement("CP", "S1")
    w.placements["CP2"] = placement("CP2", "S1")
    for cid in ("CP", "CP2"):
        w.equipment[cid] = Equipment(charger_id=cid, evses=(t2(1),), updated_at=T0)
    b = book(w, clock)
    del w.placements["CP"]
    clock.at = T0 + timedelta(minutes=3)
    b.apply(ChargerUnplaced(at=clock.now(), charger_id="CP", site_id="S1", node_id="S1"))
    assert w.told == [("removed", "S1", "CP-1")]
    loc = b.location("S1")
    assert loc is not None and [e.uid for e in loc.evses or []] == ["CP2-1"]
    assert loc.last_updated == clock.now()  # an EVSE leaving changes the Location


def _status_event(clock: StepClock, cid: str, word: str, reported: datetime) -> ConnectorStatusChanged:
    return ConnectorStatusChanged(
        at=clock.now(),
        charger_id=cid,
        evse_id=None,
        connector_id=1,
        old_status=None,
        status=word,
        error_code=None,
        reported_at=reported,
    )


def test_a_reconcile_runs_in_slices_and_rereads_only_changed_descriptions() -> None:
    """At 100k chargers a reload was seconds with the loop stopped: the running book's reconcile lets other
    tasks run every RELOAD_SLICE chargers, compares only statuses of chargers whose site and description did
    not change, and reads again only the descriptions that did."""
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    n = RELOAD_SLICE * 3
    for i in range(n):
        cid = f"CP{i}"
        w.placements[cid] = placement(cid, "S1")
        w.equipment[cid] = Equipment(charger_id=cid, evses=(t2(1),), updated_at=T0)
        w.statuses_[cid] = [status(None, 1, "Available")]
        w.online.add(cid)
    reads: list[str] = []
    every, get = w.every, w.get
    w.every = lambda: reads.append("every") or every()  # type: ignore[method-assign]
    w.get = lambda cid: reads.append(cid) or get(cid)  # type: ignore[method-assign]
    b = book(w, clock)
    assert reads == ["every"]  # the start reads every description in one scan
    reads.clear()
    clock.at = T0 + timedelta(minutes=5)
    w.statuses_["CP7"] = [
        ConnectorStatusRow(
            evse_id=None, connector_id=1, status="Charging", error_code=None, updated_at=clock.at
        )
    ]
    w.equipment["CP9"] = Equipment(charger_id="CP9", evses=(t2(1), t2(2)), updated_at=clock.at)
    turns = 0

    async def main() -> None:
        nonlocal turns

        async def other_task() -> None:
            nonlocal turns
            while True:
                turns += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_task)
            await trio.lowlevel.checkpoint()
            before = turns
            await b.reconcile()
            turns -= before
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert turns >= 3, "other tasks ran while the reconcile went through the chargers"
    assert reads == ["CP9"]  # only the changed description was read again
    assert ("evse", "S1", "CP7-1") in w.told and ("location", "S1") in w.told
    assert b.evse_state("S1", "CP7-1") == (EvseStatus.CHARGING, clock.now())
    assert b.evse_state("S1", "CP9-2") is not None
    assert sum(1 for t in w.told if t[0] == "evse") == 1


def test_a_reload_keeps_a_newer_status_from_an_event_and_a_late_event_does_not_undo_it() -> None:
    """The status table's write of a report lags its event: a reload that reads the older row keeps what the
    event said. And an event queued while a reload read a newer row is older than that row: not applied."""
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP"] = placement("CP", "S1")
    w.equipment["CP"] = Equipment(charger_id="CP", evses=(t2(1),), updated_at=T0)
    w.statuses_["CP"] = [status(None, 1, "Available")]
    w.online.add("CP")
    b = book(w, clock)
    clock.at = T0 + timedelta(seconds=10)
    b.apply(_status_event(clock, "CP", "Charging", clock.now()))
    assert w.told == [("evse", "S1", "CP-1")]
    b.reload(announce=True)  # the table still says Available at T0
    assert w.told == [("evse", "S1", "CP-1")]
    assert b.evse_state("S1", "CP-1") == (EvseStatus.CHARGING, clock.now())

    clock.at = T0 + timedelta(seconds=30)
    w.statuses_["CP"] = [
        ConnectorStatusRow(
            evse_id=None,
            connector_id=1,
            status="Faulted",
            error_code=None,
            updated_at=T0 + timedelta(seconds=20),
        )
    ]
    b.reload(announce=True)  # an event was lost: the table has the newer report
    assert b.evse_state("S1", "CP-1") == (EvseStatus.OUTOFORDER, clock.now())
    b.apply(_status_event(clock, "CP", "Available", T0 + timedelta(seconds=15)))  # older than the row
    assert b.evse_state("S1", "CP-1") == (EvseStatus.OUTOFORDER, clock.now())
    assert w.told[-1] == ("evse", "S1", "CP-1") and len(w.told) == 2


def test_a_locations_last_updated_is_the_latest_of_its_own_and_its_evses() -> None:
    """Kept as EVSEs change rather than walked per request: equal to the walk after every kind of change."""
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    for cid in ("A", "B", "C"):
        w.placements[cid] = placement(cid, "S1")
        w.equipment[cid] = Equipment(charger_id=cid, evses=(t2(1),), updated_at=T0 - timedelta(hours=2))
        w.online.add(cid)
    b = book(w, clock)

    def check() -> None:
        loc = b.location("S1")
        assert loc is not None and loc.evses
        walked = max([w.sites["S1"].updated_at.replace(microsecond=0), *(e.last_updated for e in loc.evses)])
        assert loc.last_updated == walked

    check()
    for minutes, cid, word in [(1, "A", "Charging"), (2, "B", "Faulted"), (3, "A", "Available")]:
        clock.at = T0 + timedelta(minutes=minutes)
        b.apply(_status_event(clock, cid, word, clock.now()))
        check()
    clock.at = T0 + timedelta(minutes=4)
    w.online.discard("C")
    b.apply(ChargerDisconnected(at=clock.now(), charger_id="C", conn_id=1, code=1006, reason="lost"))
    check()
    clock.at = T0 + timedelta(minutes=5)
    w.equipment["B"] = Equipment(charger_id="B", evses=(t2(1),), updated_at=clock.now())
    b.reload(announce=True)
    check()


def test_a_steady_stream_of_events_is_followed_without_a_loss() -> None:
    """Events that come a batch per turn of the loop (as the pump publishes them) are all applied in that turn:
    taken one per turn, the book fell behind at 1,000 status changes a second, lost events and reloaded."""
    w, clock = World(), StepClock()
    w.sites["S1"] = site("S1")
    w.placements["CP"] = placement("CP", "S1")
    w.equipment["CP"] = Equipment(charger_id="CP", evses=(t2(1),), updated_at=T0)
    w.online.add("CP")
    bus = EventBus()
    b = LocationBook(
        Sites(w), w, w, Presence(w), Variables(w), bus, clock, country_code="NL", party_id="AMP", changes=w
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(b.run)
            started = b.reconciles
            words = ("Available", "Charging")
            for turn in range(300):
                for i in range(50):
                    n = turn * 50 + i
                    bus.publish(_status_event(clock, "CP", words[n % 2], T0 + timedelta(milliseconds=n)))
                await trio.lowlevel.checkpoint()
            await trio.lowlevel.checkpoint()
            assert b.reconciles == started and bus.lost == 0
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert b.evse_state("S1", "CP-1") == (EvseStatus.CHARGING, clock.now())


def test_a_private_site_is_in_no_answer_and_no_push() -> None:
    """OCPI: a private location must not be published. A site the operator keeps out (ocpi_publish false) is not
    listed nor found, its EVSEs' statuses give nothing to push, and it comes back when let in again."""
    w, clock = World(), StepClock()
    for s in ("PUB", "HOME"):
        w.sites[s] = site(s)
        w.placements[f"CP{s}"] = placement(f"CP{s}", s)
        w.equipment[f"CP{s}"] = Equipment(charger_id=f"CP{s}", evses=(t2(1),), updated_at=T0)
        w.online.add(f"CP{s}")
    w.sites["HOME"] = msgspec.structs.replace(w.sites["HOME"], ocpi_publish=False)
    b = book(w, clock)
    assert [loc.id for loc in b.page(None, None, 0, 10)[1]] == ["PUB"]
    assert b.location("HOME") is None and b.evse("HOME", "CPHOME-1") is None
    assert b.evse_state("HOME", "CPHOME-1") is None  # what a push of its status reads: nothing to send
    assert b.published_location("CPHOME") is None and b.place("HOME", "CPHOME-1") is None
    clock.at = T0 + timedelta(minutes=1)
    b.apply(_status_event(clock, "CPHOME", "Charging", clock.now()))
    assert b.evse_state("HOME", "CPHOME-1") is None

    w.sites["HOME"] = msgspec.structs.replace(w.sites["HOME"], ocpi_publish=True, updated_at=clock.now())
    b.apply(SiteUpdated(at=clock.now(), site_id="HOME", changed=("ocpi_publish",)))
    assert ("location", "HOME") in w.told  # the whole Location goes out (a PUT)
    assert b.evse_state("HOME", "CPHOME-1") == (EvseStatus.CHARGING, clock.now())
    assert [loc.id for loc in b.page(None, None, 0, 10)[1]] == ["HOME", "PUB"]


# -- tariffs ------------------------------------------------------------------------------------------------------


def _priced(*ids: str, **kw: Any) -> dict[str, Tariff]:
    return {i: tariff(element(comp("ENERGY", "0.30")), id=i, **kw) for i in ids}


def _assigned(clock: StepClock, scope: str, subject: str | None, tariff_id: str | None) -> TariffAssigned:
    return TariffAssigned(
        at=clock.now(),
        charger_id=subject if scope == "charger" else None,
        scope=scope,
        subject=subject,
        tariff_id=tariff_id,
        previous_tariff_id=None,
    )


def _tariffed_world() -> tuple[World, StepClock, Assignments]:
    """Site S1 with chargers A (two EVSEs) and B, site S2 with charger C; tariffs C, S, D, G."""
    w, clock = World(), StepClock()
    for s, chargers in (("S1", ("A", "B")), ("S2", ("C",))):
        w.sites[s] = site(s)
        for cid in chargers:
            w.placements[cid] = placement(cid, s)
            evses = (t2(1), t2(2)) if cid == "A" else (t2(1),)
            w.equipment[cid] = Equipment(charger_id=cid, evses=evses, updated_at=T0 - timedelta(hours=1))
    return w, clock, Assignments(tariffs=_priced("C", "S", "D", "G"))


def _tariff_ids(b: LocationBook, location_id: str) -> dict[str, list[str] | None]:
    loc = b.location(location_id)
    assert loc is not None and loc.evses is not None
    return {f"{e.uid}/{c.id}": c.tariff_ids for e in loc.evses for c in e.connectors}


def test_each_connector_names_the_charger_else_the_site_else_the_default_tariff() -> None:
    w, clock, tariffs = _tariffed_world()
    tariffs.assigned = {
        ("charger", "A"): "C",
        ("site", "S1"): "S",
        ("default", ""): "D",
        ("id_token_group", "FLEET"): "G",  # a private price for some drivers: never on a connector
    }
    b = book(w, clock, tariffs)
    assert _tariff_ids(b, "S1") == {"A-1/1": ["C"], "A-2/2": ["C"], "B-1/1": ["S"]}
    assert _tariff_ids(b, "S2") == {"C-1/1": ["D"]}
    connector = b.connector("S1", "B-1", "1")
    assert connector is not None and connector.tariff_ids == ["S"]


def test_a_connector_no_tariff_applies_to_names_none_and_the_field_is_left_out() -> None:
    w, clock, tariffs = _tariffed_world()
    tariffs.assigned = {("id_token_group", "FLEET"): "G"}
    b = book(w, clock, tariffs)
    assert _tariff_ids(b, "S1") == {"A-1/1": None, "A-2/2": None, "B-1/1": None}
    # OCPI: an optional field left out (not null) when none applies.
    assert b"tariff_ids" not in msgspec.json.encode(b.location("S1"))
    # Without billing (a book built with no tariffs) the same.
    assert _tariff_ids(book(w, clock), "S2") == {"C-1/1": None}


def test_an_assignment_changes_the_connectors_it_decides_and_their_last_updated() -> None:
    w, clock, tariffs = _tariffed_world()
    tariffs.assigned = {("charger", "A"): "C"}
    b = book(w, clock, tariffs)
    before = b.location("S1")
    assert before is not None and before.last_updated == T0 - timedelta(hours=1)  # the descriptions'

    # A site's assignment: the connectors of its chargers that have none of their own.
    clock.at = T0 + timedelta(minutes=1)
    tariffs.assigned[("site", "S1")] = "S"
    b.apply(_assigned(clock, "site", "S1", "S"))
    assert w.told == [("tariffs", "S1", "B-1")]
    assert _tariff_ids(b, "S1") == {"A-1/1": ["C"], "A-2/2": ["C"], "B-1/1": ["S"]}
    evse = b.evse("S1", "B-1")
    assert evse is not None and evse.connectors[0].last_updated == clock.now()
    assert evse.last_updated == clock.now()  # carried up to the EVSE
    loc = b.location("S1")
    assert loc is not None and loc.last_updated == clock.now()  # and the Location
    untouched = b.evse("S1", "A-1")
    assert untouched is not None and untouched.last_updated == T0 - timedelta(hours=1)

    # A charger's: that charger only; removed, its site's applies again.
    clock.at = T0 + timedelta(minutes=2)
    del tariffs.assigned[("charger", "A")]
    b.apply(_assigned(clock, "charger", "A", None))
    assert w.told[1:] == [("tariffs", "S1", "A-1"), ("tariffs", "S1", "A-2")]
    assert _tariff_ids(b, "S1")["A-2/2"] == ["S"]

    # An id-token group's: no connector's. The same assignment again: nothing changed, nothing told.
    w.told.clear()
    tariffs.assigned[("id_token_group", "FLEET")] = "G"
    b.apply(_assigned(clock, "id_token_group", "FLEET", "G"))
    b.apply(_assigned(clock, "site", "S1", "S"))
    assert w.told == []


def test_the_default_and_changed_tariffs_are_resolved_again_in_slices() -> None:
    w, clock, tariffs = _tariffed_world()
    b = book(w, clock, tariffs)
    clock.at = T0 + timedelta(minutes=1)
    tariffs.assigned[("default", "")] = "D"
    b.apply(_assigned(clock, "default", None, "D"))
    assert w.told == []  # left to `retariff`, which lets other tasks run

    trio.run(b.retariff)
    assert sorted(w.told) == [
        ("tariffs", "S1", "A-1"),
        ("tariffs", "S1", "A-2"),
        ("tariffs", "S1", "B-1"),
        ("tariffs", "S2", "C-1"),
    ]
    assert _tariff_ids(b, "S2") == {"C-1/1": ["D"]}

    # A tariff replaced so that it is not valid now: the next level (none here) decides.
    w.told.clear()
    tariffs.tariffs.update(_priced("D", start_date_time=T0 + timedelta(days=1)))
    b.apply(TariffChanged(at=clock.now(), tariff_id="D", change="updated", currency="EUR"))
    trio.run(b.retariff)
    assert len(w.told) == 4 and _tariff_ids(b, "S2") == {"C-1/1": None}


def test_a_reload_resolves_tariffs_again_after_lost_events() -> None:
    w, clock, tariffs = _tariffed_world()
    b = book(w, clock, tariffs)
    tariffs.assigned[("site", "S2")] = "S"  # no event reached the book
    clock.at = T0 + timedelta(minutes=5)
    b.reload(announce=True)
    assert w.told == [("tariffs", "S2", "C-1")]
    assert _tariff_ids(b, "S2") == {"C-1/1": ["S"]}


def test_the_book_wakes_when_a_tariffs_validity_ends() -> None:
    """No event says that a tariff stopped being valid: the book wakes at the edge and resolves again (before
    its next reconcile, which would find it too)."""
    w, clock, tariffs = _tariffed_world()
    end = T0 + timedelta(minutes=2)
    assert (end - T0).total_seconds() < RECONCILE_INTERVAL_S / 2
    tariffs.tariffs.update(_priced("S", end_date_time=end))
    tariffs.assigned = {("site", "S2"): "S", ("default", ""): "D"}
    bus = EventBus()
    b = LocationBook(
        Sites(w),
        w,
        w,
        Presence(w),
        Variables(w),
        bus,
        clock,
        country_code="NL",
        party_id="AMP",
        changes=w,
        tariffs=tariffs,
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(b.run)
            assert _tariff_ids(b, "S2") == {"C-1/1": ["S"]}
            await trio.sleep(60)
            assert w.told == []
            clock.at = end + timedelta(seconds=1)  # the wall clock passes the edge
            await trio.sleep(62)
            assert b.reconciles == 1  # the start's only
            assert w.told == [("tariffs", "S2", "C-1")]
            assert _tariff_ids(b, "S2") == {"C-1/1": ["D"]}
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_deleted_tariff_is_named_by_no_connector() -> None:
    """Billing refuses to delete an assigned tariff; should a connector still name one (a lost event), the
    deletion has it resolved again at once. A tariff created changes no connector."""
    w, clock, tariffs = _tariffed_world()
    tariffs.assigned = {("charger", "A"): "C", ("site", "S1"): "S"}
    b = book(w, clock, tariffs)
    clock.at = T0 + timedelta(minutes=1)
    tariffs.tariffs.update(_priced("NEW"))
    b.apply(TariffChanged(at=clock.now(), tariff_id="NEW", change="created", currency="EUR"))
    assert w.told == []
    del tariffs.tariffs["C"]
    b.apply(TariffChanged(at=clock.now(), tariff_id="C", change="deleted", currency="EUR"))
    assert w.told == [("tariffs", "S1", "A-1"), ("tariffs", "S1", "A-2")]
    assert _tariff_ids(b, "S1") == {"A-1/1": ["S"], "A-2/2": ["S"], "B-1/1": ["S"]}
