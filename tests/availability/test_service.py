"""`Availability` over a real Store (placements, connector statuses, occupancy) with presence and headroom stand-ins:
counts from the tables and from events, the offline rule, a stale table row losing to a newer event, the event it
publishes, the ranking, and occupancy flushed to its table on the wall clock's boundaries and at shutdown (on
trio's MockClock: the wall clock here is trio's clock plus an epoch)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from ampgate.availability import Availability, OccupancyRepository, service
from ampgate.availability.model import Counts, count, state_of
from ampgate.availability.occupancy import HOUR_S
from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.errors import NotFoundError, ValidationError
from ampgate.events import (
    ChargerConnected,
    ChargerDisconnected,
    ChargerPlaced,
    ConnectorStatusChanged,
    SiteAvailabilityChanged,
    SiteUpdated,
)
from ampgate.load import Location, PlacementSpec, Sites, SiteSpec, TopologyRepository
from ampgate.store import ChargerRepository, ConnectorStatusRepository, Store
from ampgate.store.connector_status import StatusReport

EPOCH = 1_764_540_000.0 + 1800  # half past an hour


class TrioWall(Clock):
    """Wall time moves with trio's (mock) clock."""

    def wall(self) -> float:
        return EPOCH + trio.current_time()


@dataclass
class Online:
    online: bool


class Headroom:
    def __init__(self) -> None:
        self.kw: dict[str, float | None] = {}

    def headroom_kw(self, site_id: str, /) -> float | None:
        return self.kw.get(site_id)


class World:
    def __init__(self, path: Path) -> None:
        self.clock = TrioWall()
        self.store = Store(str(path), now=self.clock.now)
        self.bus = EventBus()
        self.events = self.bus.subscribe(["site.availability_changed"])
        self.chargers = ChargerRepository(self.store)
        self.topology = TopologyRepository(self.store)
        self.sites = Sites(self.topology, self.chargers, EventBus(), self.clock)
        self.statuses = ConnectorStatusRepository(self.store)
        self.presence: dict[str, Online] = {}
        self.headroom = Headroom()
        self.occupancy = OccupancyRepository(self.store)
        self.a = Availability(
            self.topology, self.statuses, self.presence, self.occupancy, self.headroom, self.bus, self.clock
        )

    def drain(self) -> list[Any]:
        out = []
        while (e := self.events.receive_nowait()) is not None:
            out.append(e)
        return out

    async def site(self, site_id: str, lat: float, lon: float, *, public: bool = True) -> None:
        await self.sites.create_site(
            SiteSpec(
                id=site_id,
                name=f"Site {site_id}",
                phase_limits_a=(63, 63, 63),
                location=Location(lat=lat, lon=lon),
                public_recommendations=public,
            )
        )

    async def charger(
        self, charger_id: str, site_id: str, statuses: list[str], *, online: bool = True
    ) -> None:
        await self.chargers.register(charger_id, None)
        await self.sites.place(charger_id, PlacementSpec(node_id=site_id, phases="L1L2L3", max_a=32))
        for n, status in enumerate(statuses, start=1):
            self.record(charger_id, n, status, self.clock.now())
        self.presence[charger_id] = Online(online)
        await self.store.write(lambda db: None)  # the fire-and-forget writes have committed

    def record(self, charger_id: str, connector: int, status: str, at: datetime) -> None:
        self.statuses.record(
            StatusReport(
                charger_id=charger_id,
                evse_id=None,
                connector_id=connector,
                protocol="ocpp1.6",
                status=status,
                error_code=None,
                at=at,
            )
        )

    def status(
        self, charger_id: str, connector: int, status: str, old: str | None = None
    ) -> ConnectorStatusChanged:
        now = self.clock.now()
        return ConnectorStatusChanged(
            at=now,
            charger_id=charger_id,
            evse_id=None,
            connector_id=connector,
            old_status=old,
            status=status,
            error_code=None,
            reported_at=now,
        )


def run(path: Path, body: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        w = World(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(w.store.run)
            await body(w)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_counts_come_from_the_tables_and_presence(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("S", 52.0, 5.0)
        await w.charger("CP1", "S", ["Available", "Charging"])
        await w.charger("CP2", "S", ["Faulted", "Available"], online=False)
        w.record("CP1", 0, "Available", w.clock.now())  # connector 0 is the charge point: not counted
        await w.store.write(lambda db: None)
        w.a.reconcile()
        assert w.a.counts("S") == Counts(free=1, in_use=1, offline=2)
        assert w.drain() == []  # learning the counts is not a change

        view = w.a.availability("S")
        assert view.counts == Counts(free=1, in_use=1, offline=2) and view.headroom_kw is None
        assert [(c.charger_id, c.online) for c in view.chargers] == [("CP1", True), ("CP2", False)]
        assert [(c.connector_id, c.status, c.state) for c in view.chargers[1].connectors] == [
            (1, "Faulted", "offline"),
            (2, "Available", "offline"),
        ]
        w.headroom.kw["S"] = 40.0
        assert w.a.availability("S").headroom_kw == 40.0
        with pytest.raises(NotFoundError) as e:
            w.a.availability("NOPE")
        assert e.value.field == "site_id"

    run(tmp_path / "db", body)


def test_events_move_the_counts_and_a_change_is_published(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("S", 52.0, 5.0)
        await w.charger("CP1", "S", ["Available", "Available"])
        w.a.reconcile()
        w.a.apply(w.status("CP1", 1, "Charging", "Available"))
        assert w.a.counts("S") == Counts(free=1, in_use=1)
        (changed,) = w.drain()
        assert isinstance(changed, SiteAvailabilityChanged)
        assert (
            changed.site_id,
            changed.connectors_free,
            changed.connectors_in_use,
            changed.previous_free,
        ) == (
            "S",
            1,
            1,
            2,
        )
        w.a.apply(w.status("CP1", 2, "Faulted", "Available"))
        assert w.a.counts("S") == Counts(in_use=1, faulted=1)
        w.presence["CP1"].online = False
        w.a.apply(
            ChargerDisconnected(at=w.clock.now(), charger_id="CP1", conn_id=1, code=1006, reason="gone")
        )
        assert w.a.counts("S") == Counts(offline=2)
        assert [e.connectors_offline for e in w.drain()] == [0, 2]
        # A status of a charger placed nowhere, or of the same value again, changes nothing.
        w.a.apply(w.status("ELSEWHERE", 1, "Charging"))
        w.a.apply(
            ChargerDisconnected(at=w.clock.now(), charger_id="CP1", conn_id=1, code=1006, reason="gone")
        )
        assert w.drain() == []

    run(tmp_path / "db", body)


def test_a_stale_row_in_the_table_does_not_undo_a_newer_event(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("S", 52.0, 5.0)
        await w.charger("CP1", "S", ["Available"])
        w.a.reconcile()
        await trio.sleep(10)
        w.a.apply(w.status("CP1", 1, "Charging", "Available"))  # the table still says Available (older)
        w.a.reconcile()
        assert w.a.counts("S") == Counts(in_use=1)
        # A newer row in the table (an event that was lost) wins at the next reconcile.
        await trio.sleep(10)
        w.record("CP1", 1, "Finishing", w.clock.now())
        await trio.sleep(1)
        w.record("CP1", 1, "Available", w.clock.now())
        await w.store.write(lambda db: None)
        w.a.reconcile()
        assert w.a.counts("S") == Counts(free=1)

    run(tmp_path / "db", body)


def test_placements_follow_the_bus(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("A", 52.0, 5.0)
        await w.site("B", 52.1, 5.0)
        await w.charger("CP1", "A", ["Available", "Available"])
        w.a.reconcile()
        await w.sites.place("CP1", PlacementSpec(node_id="B", phases="L1", max_a=16))
        w.a.apply(
            ChargerPlaced(
                at=w.clock.now(), charger_id="CP1", site_id="B", node_id="B", phases="L1", max_a=16, priority=0,
                weight=1, previous_node_id="A",
            )
        )  # fmt: skip
        assert (w.a.counts("A"), w.a.counts("B")) == (Counts(), Counts(free=2))

    run(tmp_path / "db", body)


def test_the_ranking_prefers_idle_sites_and_hides_what_is_not_public(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("BUSY", 52.000, 5.000)
        await w.site("IDLE", 52.050, 5.000)  # 5.6 km further north
        await w.site("PRIVATE", 52.001, 5.000, public=False)
        await w.site("FAR", 53.000, 5.000)  # 111 km away
        await w.charger("CP1", "BUSY", ["Charging", "Available"])
        await w.charger("CP2", "IDLE", ["Available", "Available"])
        await w.charger("CP3", "PRIVATE", ["Available", "Available"])
        await w.charger("CP4", "FAR", ["Available", "Available"])
        w.a.reconcile()
        ranked = w.a.recommend(52.0, 5.0, 20.0, None, 10)
        assert [r.site.id for r in ranked] == ["IDLE", "BUSY"]
        assert ranked[0].score > ranked[1].score
        assert ranked[1].distance_km == pytest.approx(0.0) and ranked[0].distance_km == pytest.approx(
            5.56, abs=0.01
        )
        assert (ranked[0].counts.free, ranked[0].counts.total) == (2, 2)
        assert [r.site.id for r in w.a.recommend(52.0, 5.0, 200.0, None, 10)] == ["IDLE", "FAR", "BUSY"]
        assert [r.site.id for r in w.a.recommend(52.0, 5.0, 200.0, None, 1)] == ["IDLE"]

        # min_kw: only sites known to have that much headroom.
        w.headroom.kw.update({"BUSY": 50.0, "IDLE": 3.0})
        assert [r.site.id for r in w.a.recommend(52.0, 5.0, 20.0, 10.0, 10)] == ["BUSY"]

        # Opting in (and out) is followed from the bus.
        await w.sites.update_site("PRIVATE", {"public_recommendations": True})
        w.a.apply(SiteUpdated(at=w.clock.now(), site_id="PRIVATE", changed=("public_recommendations",)))
        assert "PRIVATE" in [r.site.id for r in w.a.recommend(52.0, 5.0, 20.0, None, 10)]

    run(tmp_path / "db", body)


def test_recent_occupancy_pushes_a_busy_site_down(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("WAS_BUSY", 52.0, 5.0)
        await w.site("WAS_IDLE", 52.0, 5.0)
        await w.charger("CP1", "WAS_BUSY", ["Charging", "Charging"])
        await w.charger("CP2", "WAS_IDLE", ["Available", "Available"])
        w.a.reconcile()
        await trio.sleep(HOUR_S)
        w.a.flush()  # an hour of history in the table
        w.a.apply(w.status("CP1", 1, "Available", "Charging"))
        w.a.apply(w.status("CP1", 2, "Available", "Charging"))
        await w.store.write(lambda db: None)
        await trio.sleep(60)
        # Both have two free connectors now; the one that was busy lately ranks lower.
        ranked = w.a.recommend(52.0, 5.0, 5.0, None, 10)
        assert [(r.site.id, r.counts.free) for r in ranked] == [("WAS_IDLE", 2), ("WAS_BUSY", 2)]
        assert ranked[1].occupancy_recent == pytest.approx(3600 / 3660)
        assert ranked[0].occupancy_recent == 0.0

    run(tmp_path / "db", body)


def test_occupancy_is_flushed_on_the_hour_and_at_shutdown_and_read_back(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.site("S", 52.0, 5.0)
        await w.charger("CP1", "S", ["Available", "Available"])
        start = w.clock.wall()
        async with trio.open_nursery() as nursery:
            await nursery.start(w.a.run)
            await trio.sleep(HOUR_S)  # to half past the next hour
            w.record("CP1", 1, "Charging", w.clock.now())
            w.a.apply(w.status("CP1", 1, "Charging", "Available"))
            await trio.sleep(610)  # not on a 5-minute flush: the last 10 s are written at shutdown
            nursery.cancel_scope.cancel()
        end = w.clock.wall()
        await w.store.write(lambda db: None)
        first = int(start // HOUR_S * HOUR_S)
        rows = w.occupancy.hours("S", first, first + 10 * HOUR_S)
        assert [r.hour_start for r in rows] == [first, first + HOUR_S]
        in_table = sum(r.in_use_s + r.free_s + r.faulted_s + r.unavailable_s + r.offline_s for r in rows)
        assert in_table == pytest.approx(2 * (end - start))  # two connectors, all the time, nothing twice
        assert sum(r.in_use_s for r in rows) == pytest.approx(610)

        # The service's read: the table plus what is still pending, bucketed.
        since = datetime.fromtimestamp(first, UTC)
        until = datetime.fromtimestamp(first + 3 * HOUR_S, UTC)
        hourly = w.a.occupancy("S", since, until, HOUR_S)
        assert [r.hour_start for r in hourly] == [first, first + HOUR_S]
        two_hourly = w.a.occupancy("S", since, until, 2 * HOUR_S)
        assert all(r.hour_start % (2 * HOUR_S) == 0 for r in two_hourly) and len(two_hourly) <= 2
        assert sum(r.free_s + r.in_use_s for r in two_hourly) == pytest.approx(in_table)
        for bad, field in ((1800, "step"), (5000, "step")):
            with pytest.raises(ValidationError) as e:
                w.a.occupancy("S", since, until, bad)
            assert e.value.field == field
        with pytest.raises(ValidationError) as e:
            w.a.occupancy("S", until, since, HOUR_S)
        assert e.value.field == "until"
        with pytest.raises(NotFoundError):
            w.a.occupancy("NOPE", since, until, HOUR_S)

    run(tmp_path / "db", body)


def test_a_steady_stream_of_events_is_followed_without_a_loss(tmp_path: Path) -> None:
    """Events that come a batch per turn of the loop (as the pump publishes them) are all applied in that turn:
    taken one per turn, the service fell behind, lost events and read every table again, over and over."""

    async def body(w: World) -> None:
        await w.site("S", 52.0, 5.0)
        await w.charger("CP1", "S", ["Available"])
        reconciles = 0
        reconcile = w.a.reconcile

        def counted() -> None:
            nonlocal reconciles
            reconciles += 1
            reconcile()

        w.a.reconcile = counted  # type: ignore[method-assign]
        async with trio.open_nursery() as nursery:
            await nursery.start(w.a.run)
            words = ("Available", "Charging")
            for turn in range(300):
                for i in range(50):
                    n = turn * 50 + i
                    w.bus.publish(w.status("CP1", 1, words[n % 2], words[(n + 1) % 2]))
                await trio.lowlevel.checkpoint()
                w.drain()
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        assert reconciles == 1  # the start's, none after a loss
        assert w.a.counts("S").in_use == 1  # the last event: Charging

    run(tmp_path / "db", body)


def test_counts_kept_by_shifting_equal_a_full_count(tmp_path: Path) -> None:
    """A status change shifts one connector between states, and chargers coming and going are counted once per
    batch: after any mix of them, in batches through the bus or one by one, the counts are what counting every
    connector gives."""

    async def body(w: World) -> None:
        await w.site("S", 52.0, 5.0)
        chargers = [f"CP{i}" for i in range(4)]
        for cid in chargers:
            await w.charger(cid, "S", ["Available", "Available"])
        held = {(cid, n): "Available" for cid in chargers for n in (1, 2)}
        rng = random.Random(7)
        words = ("Available", "Charging", "Faulted", "Unavailable", "Preparing")

        def expected() -> Any:
            return count(state_of(word, w.presence[cid].online) for (cid, _), word in held.items())

        async with trio.open_nursery() as nursery:
            await nursery.start(w.a.run)
            for _ in range(60):
                for _ in range(rng.randint(1, 12)):
                    cid = rng.choice(chargers)
                    if rng.random() < 0.2:
                        online = not w.presence[cid].online
                        w.presence[cid] = Online(online)
                        w.bus.publish(
                            ChargerConnected(
                                at=w.clock.now(),
                                charger_id=cid,
                                conn_id=1,
                                protocol="ocpp1.6",
                                remote_address="x",
                            )
                            if online
                            else ChargerDisconnected(
                                at=w.clock.now(), charger_id=cid, conn_id=1, code=1006, reason="lost"
                            )
                        )
                    else:
                        n, word = rng.choice((1, 2)), rng.choice(words)
                        old, held[(cid, n)] = held[(cid, n)], word
                        await trio.sleep(0.001)  # a later report than the one before
                        w.bus.publish(w.status(cid, n, word, old))
                await trio.sleep(0.01)
                w.drain()
                assert w.a.counts("S") == expected()
            nursery.cancel_scope.cancel()

    run(tmp_path / "db", body)


def test_reconcile_reads_only_the_placed_chargers_statuses_when_few_are_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans: list[int] = []
    every = ConnectorStatusRepository.every_status

    def counted(self: ConnectorStatusRepository) -> Any:
        scans.append(1)
        return every(self)

    monkeypatch.setattr(ConnectorStatusRepository, "every_status", counted)

    async def body(w: World) -> None:
        w.record("UNPLACED", 1, "Charging", w.clock.now())
        await w.store.write(lambda db: None)
        w.a.reconcile()  # nothing placed: nothing to read
        assert scans == [] and w.a.counts("S") == Counts()
        await w.site("S", 52.0, 5.0)
        await w.charger("CP1", "S", ["Available", "Charging"])
        w.a.reconcile()
        assert scans == [] and w.a.counts("S") == Counts(free=1, in_use=1)
        monkeypatch.setattr(service, "PER_CHARGER_READS", 0)  # many placed: one scan
        w.a.reconcile()
        assert scans == [1] and w.a.counts("S") == Counts(free=1, in_use=1)

    run(tmp_path / "db", body)
