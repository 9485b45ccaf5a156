"""The locations book alone, over in-memory stand-ins for the tables and presence: what a site publishes (EVSEs
from descriptions or from statuses, 1.6 one EVSE per connector, 2.0.1 connectors per EVSE, device-model
defaults), how bus events change statuses and `last_updated`, what it tells the pusher, and the paging filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import trio
import trio.lowlevel

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.devicemodel.repository import VariableRow
from ampgate.events import (
    ChargerConnected,
    ChargerDisconnected,
    ChargerUnplaced,
    ConnectorStatusChanged,
    SiteUpdated,
)
from ampgate.load.model import Location as SiteLocation
from ampgate.load.model import PlacementRow, SiteRow
from ampgate.roaming.equipment import ConnectorSpec, Equipment, EvseSpec
from ampgate.roaming.locations import RELOAD_SLICE, LocationBook
from ampgate.roaming.types import ConnectorFormat, ConnectorType, EvseStatus, PowerType
from ampgate.store.connector_status import ConnectorStatusRow

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


def book(w: World, clock: StepClock) -> LocationBook:
    b = LocationBook(
        Sites(w),
        w,
        w,
        Presence(w),
        Variables(w),
        EventBus(),
        clock,
        country_code="NL",
        party_id="AMP",
        changes=w,
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
