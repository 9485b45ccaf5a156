"""`Sites`: the operator's way to create, change and delete sites, their capacity nodes and the chargers'
placements, and the one place the topology is read for the allocator (`topology`).

Every value is checked (`model`) before the write; what needs the stored rows (unknown parents, cycles, ids in
use, deletes of what still has something under it) is checked inside the write (`repository`), so a refused
change leaves nothing half-applied. An event follows each change that took effect, after its commit; a write
that changes nothing (the same PATCH or PUT again) publishes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec

from ampgate.clock import Clock
from ampgate.errors import NotFoundError
from ampgate.events import (
    CapacityNodeCreated,
    CapacityNodeDeleted,
    CapacityNodeUpdated,
    ChargerPlaced,
    ChargerUnplaced,
    Event,
    SiteCreated,
    SiteDeleted,
    SiteMaintenanceWindowsChanged,
    SiteUpdated,
)
from ampgate.load import model, topology
from ampgate.load.model import NodeRow, NodeSpec, PlacementRow, PlacementSpec, SiteRow, SiteSpec
from ampgate.load.repository import TopologyRepository
from ampgate.load.windows import MaintenanceWindow, SiteWindows, validate_windows

# The fields of a row that an update may change, as the API names them (for the events' `changed`).
_SITE_FIELDS = (
    "name",
    "phase_limits_a",
    "limit_kw",
    "voltage_v",
    "time_zone",
    "location",
    "ean",
    "public_recommendations",
    "ocpi_publish",
)
_NODE_FIELDS = ("parent", "name", "phase_limits_a", "limit_kw")


class Publish(Protocol):
    """The event bus (`ampgate.bus.EventBus`)."""

    def publish(self, event: Event, /) -> None: ...


class ChargerLookup(Protocol):
    """Registered chargers (`ampgate.store.ChargerRepository`)."""

    def get(self, charger_id: str, /) -> object | None: ...


def _changed(before: msgspec.Struct, after: msgspec.Struct, fields: tuple[str, ...]) -> tuple[str, ...]:
    # The node's `parent` property is reported as the API's `parent_id`.
    return tuple(
        "parent_id" if f == "parent" else f for f in fields if getattr(before, f) != getattr(after, f)
    )


class Sites:
    """Sites, capacity nodes and placements as an admin changes them; reads for the API and the allocator."""

    def __init__(self, rows: TopologyRepository, chargers: ChargerLookup, bus: Publish, clock: Clock) -> None:
        self._rows = rows
        self._chargers = chargers
        self._bus = bus
        self._clock = clock

    # -- sites ------------------------------------------------------------------------------------------------

    async def create_site(self, spec: SiteSpec) -> SiteRow:
        """Create a site and return it as committed. Raises ValidationError naming the field, ConflictError
        (field id: `site_exists`, `node_exists`: ids of sites and nodes are one namespace)."""
        row = await self._rows.insert_site(model.validate_site(spec))
        self._bus.publish(SiteCreated(at=self._clock.now(), site_id=row.id, name=row.name))
        return row

    async def update_site(self, site_id: str, changes: dict[str, Any]) -> SiteRow:
        """Change the fields in `changes` (model.SITE_CHANGES; None clears name, limit_kw, location, ean).
        Raises ValidationError naming the field, NotFoundError (field site_id)."""
        checked = model.validate_changes(changes, model.SITE_CHANGES)
        before, after = await self._rows.update_site(site_id, checked)
        changed = _changed(before, after, _SITE_FIELDS)
        if changed:
            self._bus.publish(SiteUpdated(at=self._clock.now(), site_id=site_id, changed=changed))
        return after

    async def delete_site(self, site_id: str) -> None:
        """Delete a site with nothing in it. Raises NotFoundError (field site_id), ConflictError
        `site_not_empty` (it has nodes or chargers: delete or move them first; nothing cascades)."""
        await self._rows.delete_site(site_id)
        self._bus.publish(SiteDeleted(at=self._clock.now(), site_id=site_id))

    def get_site(self, site_id: str) -> SiteRow | None:
        return self._rows.site(site_id)

    def page_sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        """Up to `limit` sites in id order, after `after`."""
        return self._rows.sites(limit, after)

    def _site(self, site_id: str) -> SiteRow:
        site = self._rows.site(site_id)
        if site is None:
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        return site

    # -- maintenance windows ----------------------------------------------------------------------------------

    async def set_maintenance_windows(
        self, site_id: str, windows: Sequence[MaintenanceWindow]
    ) -> SiteWindows:
        """Replace the site's maintenance windows (an empty list removes them all: the site then holds no
        campaign back, see `ampgate.campaigns.sources.WindowsFrom`). Raises ValidationError naming `windows[i].cron`,
        `windows[i].duration_s` or `windows`, NotFoundError (field site_id). Publishes
        `site.maintenance_windows_changed` when the list changed."""
        checked = validate_windows(windows)
        before, after = await self._rows.put_windows(site_id, checked)
        if before != after:
            self._bus.publish(
                SiteMaintenanceWindowsChanged(at=self._clock.now(), site_id=site_id, windows=len(after))
            )
        return self.maintenance_windows(site_id)

    def maintenance_windows(self, site_id: str) -> SiteWindows:
        """The site's windows and its time zone (what `windows.window_at` / `next_window` take). Raises
        NotFoundError (field site_id)."""
        site = self._site(site_id)
        windows, at = self._rows.windows(site_id)
        return SiteWindows(site_id=site_id, time_zone=site.time_zone, windows=windows, updated_at=at)

    def now(self) -> datetime:
        """The node's time (to show which window is open now)."""
        return self._clock.now()

    # -- capacity nodes ---------------------------------------------------------------------------------------

    async def create_node(self, site_id: str, spec: NodeSpec) -> NodeRow:
        """Create a capacity node in `site_id` under `spec.parent_id` (the site's id, or a node of the site).
        Raises ValidationError naming the field (parent_id: another site, or a node of one), NotFoundError
        (site_id; parent_id), ConflictError (field id: `site_exists`, `node_exists`)."""
        row = await self._rows.insert_node(site_id, model.validate_node(spec))
        self._bus.publish(
            CapacityNodeCreated(at=self._clock.now(), site_id=site_id, node_id=row.id, parent_id=row.parent)
        )
        return row

    async def update_node(self, site_id: str, node_id: str, changes: dict[str, Any]) -> NodeRow:
        """Change the fields in `changes` (model.NODE_CHANGES; `parent_id` moves the node with everything under
        it; None clears name or limit_kw). Raises ValidationError naming the field (parent_id: a move that makes
        the node its own ancestor, another site), NotFoundError (site_id, node_id, parent_id)."""
        checked = model.validate_changes(changes, model.NODE_CHANGES)
        before, after = await self._rows.update_node(site_id, node_id, checked)
        changed = _changed(before, after, _NODE_FIELDS)
        if changed:
            self._bus.publish(
                CapacityNodeUpdated(
                    at=self._clock.now(),
                    site_id=site_id,
                    node_id=node_id,
                    parent_id=after.parent,
                    changed=changed,
                )
            )
        return after

    async def delete_node(self, site_id: str, node_id: str) -> None:
        """Delete a node with nothing under it. Raises NotFoundError (site_id, node_id), ConflictError
        `node_not_empty` (nodes or chargers under it: delete or move them first; nothing cascades)."""
        row = await self._rows.delete_node(site_id, node_id)
        self._bus.publish(
            CapacityNodeDeleted(at=self._clock.now(), site_id=site_id, node_id=node_id, parent_id=row.parent)
        )

    def get_node(self, site_id: str, node_id: str) -> NodeRow | None:
        """The node, if it is one of `site_id`'s."""
        row = self._rows.node(node_id)
        return row if row is not None and row.site_id == site_id else None

    def page_nodes(
        self, site_id: str, limit: int, after: str | None = None, *, parent_id: str | None = None
    ) -> list[NodeRow]:
        """Up to `limit` of the site's nodes in id order, after `after`; only those directly under `parent_id`
        (the site's id or a node's) when given. Raises NotFoundError (field site_id)."""
        self._site(site_id)
        return self._rows.nodes(site_id, limit, after, parent_id)

    # -- placements -------------------------------------------------------------------------------------------

    async def place(self, charger_id: str, spec: PlacementSpec) -> PlacementRow:
        """Place a registered charger under `spec.node_id` (a node, or a site's id: directly under the grid
        connection), replacing its earlier placement: a charger has one place, so placing it again moves it.
        Raises ValidationError naming the field (phases, max_a, priority, weight), NotFoundError (field id: the
        charger, as the charger routes name it; node_id)."""
        checked = model.validate_placement(spec)
        if self._chargers.get(charger_id) is None:
            raise NotFoundError(f"charger {charger_id!r} is not registered", field="id")
        before, after = await self._rows.put_placement(charger_id, checked)
        if before is None or _placement_values(before) != _placement_values(after):
            self._bus.publish(
                ChargerPlaced(
                    at=self._clock.now(),
                    charger_id=charger_id,
                    site_id=after.site_id,
                    node_id=after.node,
                    phases=after.phases,
                    max_a=after.max_a,
                    priority=after.priority,
                    weight=after.weight,
                    previous_node_id=None if before is None else before.node,
                )
            )
        return after

    async def unplace(self, charger_id: str) -> None:
        """Take the charger out of its site. Raises NotFoundError `not_placed`."""
        row = await self._rows.delete_placement(charger_id)
        self._bus.publish(
            ChargerUnplaced(
                at=self._clock.now(), charger_id=charger_id, site_id=row.site_id, node_id=row.node
            )
        )

    def placement(self, charger_id: str) -> PlacementRow | None:
        return self._rows.placement(charger_id)

    def page_placements(
        self, site_id: str, limit: int, after: str | None = None, *, node_id: str | None = None
    ) -> list[PlacementRow]:
        """Up to `limit` of the site's placements in charger id order, after `after`; only those directly under
        `node_id` (the site's id or a node's) when given. Raises NotFoundError (field site_id)."""
        self._site(site_id)
        return self._rows.placements(site_id, limit, after, node_id)

    # -- the allocator's view ---------------------------------------------------------------------------------

    def site_ids(self) -> list[str]:
        """Every site's id, in id order."""
        out: list[str] = []
        while True:
            page = self._rows.sites(1000, out[-1] if out else None)
            out.extend(r.id for r in page)
            if len(page) < 1000:
                return out

    def node_exists(self, node_id: str) -> bool:
        """Whether `node_id` names a site or a capacity node (one namespace)."""
        return self._rows.site(node_id) is not None or self._rows.node(node_id) is not None

    def topology(self, site_id: str) -> topology.Topology:
        """The site's tree and chargers as the allocator takes them (`topology.build`). Raises NotFoundError
        (field site_id)."""
        site, nodes, placements = self._rows.tree(site_id)
        if site is None:
            raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
        return topology.build(site, nodes, placements)


def _placement_values(row: PlacementRow) -> tuple[Any, ...]:
    return (row.site_id, row.node_id, row.phases, row.max_a, row.priority, row.weight)
