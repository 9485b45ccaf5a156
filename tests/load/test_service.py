"""`Sites` over a real Store: the allocator's view read back from the tables, a subtree moved in one write, a
refused change leaving every row as it was, events after each change and none for a change that changes
nothing."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from ampgate.bus import EventBus
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.events import (
    CapacityNodeCreated,
    CapacityNodeUpdated,
    ChargerPlaced,
    ChargerUnplaced,
    SiteCreated,
    SiteUpdated,
)
from ampgate.load import NodeSpec, PlacementSpec, Sites, SiteSpec, TopologyRepository
from ampgate.store import ChargerRepository, Store
from tests.ocpp.fakes import FixedClock


class World:
    def __init__(self, path: Path) -> None:
        self.clock = FixedClock()
        self.store = Store(str(path), now=self.clock.now)
        self.bus = EventBus()
        self.events = self.bus.subscribe()
        self.chargers = ChargerRepository(self.store)
        self.sites = Sites(TopologyRepository(self.store), self.chargers, self.bus, self.clock)

    def drain(self) -> list[Any]:
        out = []
        while (e := self.events.receive_nowait()) is not None:
            out.append(e)
        return out

    async def tree(self) -> None:
        # S ─┬─ T1 ─ F1        CP1 on F1 (STR), CP2 directly under S (L3)
        #    └─ T2
        await self.sites.create_site(SiteSpec(id="S", phase_limits_a=(80, 80, 80), limit_kw=50))
        await self.sites.create_node("S", NodeSpec(id="T1", parent_id="S", phase_limits_a=(63, 63, 63)))
        await self.sites.create_node("S", NodeSpec(id="T2", parent_id="S"))
        await self.sites.create_node("S", NodeSpec(id="F1", parent_id="T1", limit_kw=11))
        for cp in ("CP1", "CP2"):
            await self.chargers.register(cp, None)
        await self.sites.place("CP1", PlacementSpec(node_id="F1", phases="STR", max_a=16))
        await self.sites.place("CP2", PlacementSpec(node_id="S", phases="L3", max_a=32, priority=1))


def run(path: Path, body: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        w = World(path)
        async with trio.open_nursery() as nursery:
            await nursery.start(w.store.run)
            await body(w)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_the_allocators_view_comes_from_the_tables(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.tree()
        t = w.sites.topology("S")
        assert t.node_ids == ("S", "T1", "F1", "T2") and t.parent == (-1, 0, 1, 0)
        assert t.limit_a[0] == (80.0, 63.0, math.inf, math.inf)
        assert t.limit_w == (50_000.0, math.inf, 11_000.0, math.inf)
        assert t.charger_ids == ("CP2", "CP1") and t.charger_node == (0, 2)
        assert t.charger_phases == ((2,), (1, 2, 0))
        with pytest.raises(NotFoundError) as e:
            w.sites.topology("NOPE")
        assert e.value.field == "site_id"

    run(tmp_path / "db", body)


def test_moving_a_node_takes_its_subtree_and_a_cycle_changes_nothing(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.tree()
        await w.sites.update_node("S", "T1", {"parent_id": "T2"})
        t = w.sites.topology("S")
        assert t.node_ids == ("S", "T2", "T1", "F1") and t.parent == (-1, 0, 1, 2)
        w.drain()
        # T2 under F1 (its grandchild now), with a valid limit change in the same PATCH: refused whole.
        with pytest.raises(ValidationError) as e:
            await w.sites.update_node("S", "T2", {"limit_kw": 5, "parent_id": "F1"})
        assert e.value.field == "parent_id" and "cycle" in e.value.message
        t2 = w.sites.get_node("S", "T2")
        assert t2 is not None and t2.limit_kw is None and t2.parent == "S"
        assert w.sites.topology("S").parent == (-1, 0, 1, 2)
        assert w.drain() == []

    run(tmp_path / "db", body)


def test_events_follow_changes_and_a_change_to_the_same_values_publishes_nothing(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.tree()
        kinds = [type(e) for e in w.drain()]
        assert kinds == [SiteCreated] + [CapacityNodeCreated] * 3 + [ChargerPlaced] * 2
        await w.sites.update_site("S", {"phase_limits_a": [80, 80, 80], "limit_kw": 50})
        await w.sites.update_node("S", "T1", {"parent_id": "S"})
        await w.sites.place("CP1", PlacementSpec(node_id="F1", phases="STR", max_a=16))
        assert w.drain() == []
        await w.sites.update_site("S", {"phase_limits_a": [80, 80, 70], "name": "Depot"})
        await w.sites.update_node("S", "F1", {"parent_id": "T2"})
        await w.sites.place("CP1", PlacementSpec(node_id="T1", phases="L1", max_a=16))
        await w.sites.unplace("CP2")
        site_up, node_up, moved, unplaced = w.drain()
        assert isinstance(site_up, SiteUpdated) and site_up.changed == ("name", "phase_limits_a")
        assert isinstance(node_up, CapacityNodeUpdated)
        assert (node_up.node_id, node_up.parent_id, node_up.changed) == ("F1", "T2", ("parent_id",))
        assert isinstance(moved, ChargerPlaced) and moved.charger_id == "CP1"
        assert (moved.node_id, moved.previous_node_id, moved.phases) == ("T1", "F1", "L1")
        assert isinstance(unplaced, ChargerUnplaced) and (unplaced.charger_id, unplaced.node_id) == (
            "CP2",
            "S",
        )

    run(tmp_path / "db", body)


def test_ids_of_sites_and_nodes_are_one_namespace(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.tree()
        with pytest.raises(ConflictError) as e:
            await w.sites.create_site(SiteSpec(id="T1", phase_limits_a=(1, 1, 1)))
        assert (e.value.code, e.value.field) == ("node_exists", "id")
        with pytest.raises(ConflictError) as e:
            await w.sites.create_node("S", NodeSpec(id="S", parent_id="T1"))
        assert (e.value.code, e.value.field) == ("site_exists", "id")

    run(tmp_path / "db", body)


def test_deletes_do_not_cascade(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        await w.tree()
        for call, code in (
            (w.sites.delete_node("S", "T1"), "node_not_empty"),  # F1 under it
            (w.sites.delete_node("S", "F1"), "node_not_empty"),  # CP1 under it
            (w.sites.delete_site("S"), "site_not_empty"),
        ):
            with pytest.raises(ConflictError) as e:
                await call
            assert e.value.code == code
        assert w.sites.topology("S").node_ids == ("S", "T1", "F1", "T2")
        await w.sites.delete_node("S", "T2")
        await w.sites.unplace("CP1")
        await w.sites.unplace("CP2")
        await w.sites.delete_node("S", "F1")
        await w.sites.delete_node("S", "T1")
        await w.sites.delete_site("S")
        assert w.sites.get_site("S") is None

    run(tmp_path / "db", body)


def test_the_public_recommendations_opt_in_is_stored_and_changed(tmp_path: Path) -> None:
    async def body(w: World) -> None:
        made = await w.sites.create_site(
            SiteSpec(id="PUB", phase_limits_a=(32, 32, 32), public_recommendations=True)
        )
        assert made.public_recommendations is True
        await w.sites.create_site(SiteSpec(id="PRIV", phase_limits_a=(32, 32, 32)))
        assert [(s.id, s.public_recommendations) for s in w.sites.page_sites(10)] == [
            ("PRIV", False),
            ("PUB", True),
        ]
        w.drain()
        row = await w.sites.update_site("PUB", {"public_recommendations": False})
        assert row.public_recommendations is False
        (changed,) = w.drain()
        assert isinstance(changed, SiteUpdated) and changed.changed == ("public_recommendations",)
        with pytest.raises(ValidationError) as e:
            await w.sites.update_site("PUB", {"public_recommendations": "no"})
        assert e.value.field == "public_recommendations"

    run(tmp_path / "db", body)


def test_the_ocpi_publish_setting_is_stored_and_changed(tmp_path: Path) -> None:
    """On by default (every site roams, as before it existed), off for a private site; distinct from the public
    recommendations' opt-in; a change is a site.updated naming it."""

    async def body(w: World) -> None:
        made = await w.sites.create_site(SiteSpec(id="ROAM", phase_limits_a=(32, 32, 32)))
        assert made.ocpi_publish is True and made.public_recommendations is False
        await w.sites.create_site(SiteSpec(id="HOME", phase_limits_a=(32, 32, 32), ocpi_publish=False))
        assert [(s.id, s.ocpi_publish) for s in w.sites.page_sites(10)] == [("HOME", False), ("ROAM", True)]
        w.drain()
        row = await w.sites.update_site("ROAM", {"ocpi_publish": False})
        assert row.ocpi_publish is False and w.sites.get_site("ROAM").ocpi_publish is False  # type: ignore[union-attr]
        (changed,) = w.drain()
        assert isinstance(changed, SiteUpdated) and changed.changed == ("ocpi_publish",)
        with pytest.raises(ValidationError) as e:
            await w.sites.update_site("ROAM", {"ocpi_publish": 1})
        assert e.value.field == "ocpi_publish"

    run(tmp_path / "db", body)
