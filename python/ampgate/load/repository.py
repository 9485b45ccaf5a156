"""The topology's tables (`sites`, `capacity_nodes`, `charger_placements`) behind `TopologyRepository`. Write ops
run on the store's writer thread (they take a `sqlite_utils.Database`); reads take the reader connection on the
trio thread.

Values arrive checked (`model.validate_*`); what needs the stored rows is checked here, inside the one write op
that applies the change: an id already used by a site or a node, an unknown parent or node, a parent in another
site, a move that would make a node its own ancestor, a delete of a node that still has something under it. An op
that raises is rolled back alone (its own savepoint), so a refused change leaves nothing half-applied, and the
single writer thread makes check-then-write race-free.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.load.model import (
    Location,
    NodeRow,
    NodeSpec,
    PhaseLimits,
    PlacementRow,
    PlacementSpec,
    SiteRow,
    SiteSpec,
    would_cycle,
)
from ampgate.load.windows import MaintenanceWindow
from ampgate.store.store import Store

_SITE_COLUMNS = (
    "id, name, limit_l1_a, limit_l2_a, limit_l3_a, limit_kw, voltage_v, time_zone, lat, lon, address, city,"
    " postal_code, country, ean, created_at, updated_at, public_recommendations, ocpi_publish"
)
_NODE_COLUMNS = (
    "id, site_id, parent_id, name, limit_l1_a, limit_l2_a, limit_l3_a, limit_kw, created_at, updated_at"
)
_PLACEMENT_COLUMNS = "charger_id, site_id, node_id, phases, max_a, priority, weight, created_at, updated_at"


def _at(text: str) -> Any:
    at = parse_iso(text)
    assert at is not None  # NOT NULL
    return at


def _site(v: tuple[Any, ...]) -> SiteRow:
    location = None
    if v[8] is not None and v[9] is not None:
        location = Location(lat=v[8], lon=v[9], address=v[10], city=v[11], postal_code=v[12], country=v[13])
    return SiteRow(
        id=v[0],
        name=v[1],
        phase_limits_a=(v[2], v[3], v[4]),
        limit_kw=v[5],
        voltage_v=v[6],
        time_zone=v[7],
        location=location,
        ean=v[14],
        public_recommendations=bool(v[17]),
        ocpi_publish=bool(v[18]),
        created_at=_at(v[15]),
        updated_at=_at(v[16]),
    )


def _node(v: tuple[Any, ...]) -> NodeRow:
    return NodeRow(
        id=v[0],
        site_id=v[1],
        parent_id=v[2],
        name=v[3],
        phase_limits_a=(v[4], v[5], v[6]),
        limit_kw=v[7],
        created_at=_at(v[8]),
        updated_at=_at(v[9]),
    )


def _placement(v: tuple[Any, ...]) -> PlacementRow:
    return PlacementRow(
        charger_id=v[0],
        site_id=v[1],
        node_id=v[2],
        phases=v[3],
        max_a=v[4],
        priority=v[5],
        weight=v[6],
        created_at=_at(v[7]),
        updated_at=_at(v[8]),
    )


def _limit_columns(limits: PhaseLimits) -> dict[str, float | None]:
    return {"limit_l1_a": limits[0], "limit_l2_a": limits[1], "limit_l3_a": limits[2]}


def _location_columns(location: Location | None) -> dict[str, Any]:
    if location is None:
        return dict.fromkeys(("lat", "lon", "address", "city", "postal_code", "country"))
    return {
        "lat": location.lat,
        "lon": location.lon,
        "address": location.address,
        "city": location.city,
        "postal_code": location.postal_code,
        "country": location.country,
    }


# -- reads ----------------------------------------------------------------------------------------------------


def read_site(conn: sqlite3.Connection, site_id: str) -> SiteRow | None:
    v = conn.execute(f"SELECT {_SITE_COLUMNS} FROM sites WHERE id = ?", (site_id,)).fetchone()
    return None if v is None else _site(v)


def read_sites(conn: sqlite3.Connection, limit: int, after: str | None) -> list[SiteRow]:
    """Up to `limit` sites in id order, after `after`."""
    cur = conn.execute(
        f"SELECT {_SITE_COLUMNS} FROM sites WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit)
    )
    return [_site(v) for v in cur.fetchall()]


def read_node(conn: sqlite3.Connection, node_id: str) -> NodeRow | None:
    v = conn.execute(f"SELECT {_NODE_COLUMNS} FROM capacity_nodes WHERE id = ?", (node_id,)).fetchone()
    return None if v is None else _node(v)


def _under(site_id: str, parent: str | None, column: str) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause part selecting rows directly under `parent` (the site's id, or a node's)."""
    if parent is None:
        return "", ()
    if parent == site_id:
        return f" AND {column} IS NULL", ()
    return f" AND {column} = ?", (parent,)


def read_nodes(
    conn: sqlite3.Connection, site_id: str, limit: int, after: str | None, parent: str | None
) -> list[NodeRow]:
    """Up to `limit` of a site's nodes in id order, after `after`; only those directly under `parent` (the
    site's id or a node's) when it is given."""
    clause, args = _under(site_id, parent, "parent_id")
    cur = conn.execute(
        f"SELECT {_NODE_COLUMNS} FROM capacity_nodes WHERE site_id = ? AND id > ?{clause} ORDER BY id LIMIT ?",
        (site_id, after or "", *args, limit),
    )
    return [_node(v) for v in cur.fetchall()]


def read_all_nodes(conn: sqlite3.Connection, site_id: str) -> list[NodeRow]:
    cur = conn.execute(
        f"SELECT {_NODE_COLUMNS} FROM capacity_nodes WHERE site_id = ? ORDER BY id", (site_id,)
    )
    return [_node(v) for v in cur.fetchall()]


def read_placement(conn: sqlite3.Connection, charger_id: str) -> PlacementRow | None:
    v = conn.execute(
        f"SELECT {_PLACEMENT_COLUMNS} FROM charger_placements WHERE charger_id = ?", (charger_id,)
    ).fetchone()
    return None if v is None else _placement(v)


def read_placements(
    conn: sqlite3.Connection, site_id: str, limit: int, after: str | None, node: str | None
) -> list[PlacementRow]:
    """Up to `limit` of a site's placements in charger id order, after `after`; only those directly under
    `node` (the site's id or a node's) when it is given."""
    clause, args = _under(site_id, node, "node_id")
    cur = conn.execute(
        f"SELECT {_PLACEMENT_COLUMNS} FROM charger_placements WHERE site_id = ? AND charger_id > ?{clause}"
        " ORDER BY charger_id LIMIT ?",
        (site_id, after or "", *args, limit),
    )
    return [_placement(v) for v in cur.fetchall()]


def read_all_placements(conn: sqlite3.Connection, site_id: str) -> list[PlacementRow]:
    cur = conn.execute(
        f"SELECT {_PLACEMENT_COLUMNS} FROM charger_placements WHERE site_id = ? ORDER BY charger_id",
        (site_id,),
    )
    return [_placement(v) for v in cur.fetchall()]


def read_tree(
    conn: sqlite3.Connection, site_id: str
) -> tuple[SiteRow | None, list[NodeRow], list[PlacementRow]]:
    """A site with all its nodes and placements, read in one transaction (one snapshot under WAL: a change that
    commits between the reads cannot show a placement under a node the node read did not see)."""
    conn.execute("BEGIN")
    try:
        return read_site(conn, site_id), read_all_nodes(conn, site_id), read_all_placements(conn, site_id)
    finally:
        conn.execute("ROLLBACK")


# -- checks against the stored rows ----------------------------------------------------------------------------


def _id_taken(conn: sqlite3.Connection, id_: str) -> None:
    """Raises ConflictError (field id) when `id_` names a site or a capacity node already."""
    if conn.execute("SELECT 1 FROM sites WHERE id = ?", (id_,)).fetchone() is not None:
        raise ConflictError(f"site {id_!r} exists", field="id", code="site_exists")
    if conn.execute("SELECT 1 FROM capacity_nodes WHERE id = ?", (id_,)).fetchone() is not None:
        raise ConflictError(f"capacity node {id_!r} exists", field="id", code="node_exists")


def _site_or_404(conn: sqlite3.Connection, site_id: str) -> SiteRow:
    site = read_site(conn, site_id)
    if site is None:
        raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
    return site


def _node_or_404(conn: sqlite3.Connection, site_id: str, node_id: str) -> NodeRow:
    _site_or_404(conn, site_id)
    node = read_node(conn, node_id)
    if node is None or node.site_id != site_id:
        raise NotFoundError(f"site {site_id!r} has no capacity node {node_id!r}", field="node_id")
    return node


def _stored_parent(conn: sqlite3.Connection, site_id: str, parent: str) -> str | None:
    """The parent_id to store for `parent` as the API names it (the site's id: NULL). Raises NotFoundError
    (field parent_id) for an id that names nothing, ValidationError (field parent_id) for another site or a
    node of another site."""
    if parent == site_id:
        return None
    node = read_node(conn, parent)
    if node is None:
        if read_site(conn, parent) is not None:
            raise ValidationError(
                f"parent_id {parent!r} is another site; a node's parent is its own site or a node of it",
                field="parent_id",
            )
        raise NotFoundError(f"site {site_id!r} has no capacity node {parent!r}", field="parent_id")
    if node.site_id != site_id:
        raise ValidationError(
            f"parent_id {parent!r} is a node of site {node.site_id!r}, not of {site_id!r}", field="parent_id"
        )
    return node.id


def _set(
    conn: sqlite3.Connection, table: str, key: str, key_value: str, columns: dict[str, Any], at: str
) -> None:
    sets = "".join(f"{col} = ?, " for col in columns)
    conn.execute(
        f"UPDATE {table} SET {sets}updated_at = ? WHERE {key} = ?", (*columns.values(), at, key_value)
    )


def _insert(conn: sqlite3.Connection, table: str, columns: dict[str, Any]) -> None:
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        tuple(columns.values()),
    )


# -- writes ---------------------------------------------------------------------------------------------------


def insert_site(db: sqlite_utils.Database, spec: SiteSpec, at: str) -> SiteRow:
    """Create a site. Raises ConflictError (field id: `site_exists`, `node_exists`) when the id is taken."""
    conn = db.conn
    _id_taken(conn, spec.id)
    columns: dict[str, Any] = {
        "id": spec.id,
        "name": spec.name,
        **_limit_columns(spec.phase_limits_a),
        "limit_kw": spec.limit_kw,
        "voltage_v": spec.voltage_v,
        "time_zone": spec.time_zone,
        **_location_columns(spec.location),
        "ean": spec.ean,
        "public_recommendations": int(spec.public_recommendations),
        "ocpi_publish": int(spec.ocpi_publish),
        "created_at": at,
        "updated_at": at,
    }
    _insert(conn, "sites", columns)
    row = read_site(conn, spec.id)
    assert row is not None
    return row


def update_site(
    db: sqlite_utils.Database, site_id: str, changes: dict[str, Any], at: str
) -> tuple[SiteRow, SiteRow]:
    """Apply checked `changes` (model.SITE_CHANGES keys); returns the site before and after. Raises
    NotFoundError (field site_id)."""
    conn = db.conn
    before = _site_or_404(conn, site_id)
    columns: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "phase_limits_a":
            columns.update(_limit_columns(value))
        elif key == "location":
            columns.update(_location_columns(value))
        else:
            columns[key] = value
    if columns:
        _set(conn, "sites", "id", site_id, columns, at)
    after = read_site(conn, site_id)
    assert after is not None
    return before, after


def delete_site(db: sqlite_utils.Database, site_id: str) -> SiteRow:
    """Delete a site that has no nodes and no chargers. Raises NotFoundError (field site_id), ConflictError
    `site_not_empty`."""
    conn = db.conn
    site = _site_or_404(conn, site_id)
    nodes = conn.execute("SELECT count(*) FROM capacity_nodes WHERE site_id = ?", (site_id,)).fetchone()[0]
    placed = conn.execute("SELECT count(*) FROM charger_placements WHERE site_id = ?", (site_id,)).fetchone()[
        0
    ]
    if nodes or placed:
        raise ConflictError(
            f"site {site_id!r} still has {nodes} capacity node(s) and {placed} charger(s); delete or move them first",
            code="site_not_empty",
        )
    conn.execute("DELETE FROM sites WHERE id = ?", (site_id,))
    # Windows are part of the site, not something under it: they go with it.
    conn.execute("DELETE FROM site_maintenance_windows WHERE site_id = ?", (site_id,))
    return site


def insert_node(db: sqlite_utils.Database, site_id: str, spec: NodeSpec, at: str) -> NodeRow:
    """Create a capacity node in `site_id` under `spec.parent_id`. Raises NotFoundError (site_id; parent_id),
    ValidationError (parent_id: another site, or a node of one), ConflictError (id: `site_exists`,
    `node_exists`)."""
    conn = db.conn
    _site_or_404(conn, site_id)
    parent_id = _stored_parent(conn, site_id, spec.parent_id)
    _id_taken(conn, spec.id)
    columns: dict[str, Any] = {
        "id": spec.id,
        "site_id": site_id,
        "parent_id": parent_id,
        "name": spec.name,
        **_limit_columns(spec.phase_limits_a),
        "limit_kw": spec.limit_kw,
        "created_at": at,
        "updated_at": at,
    }
    _insert(conn, "capacity_nodes", columns)
    row = read_node(conn, spec.id)
    assert row is not None
    return row


def update_node(
    db: sqlite_utils.Database, site_id: str, node_id: str, changes: dict[str, Any], at: str
) -> tuple[NodeRow, NodeRow]:
    """Apply checked `changes` (model.NODE_CHANGES keys) to a node of `site_id`; returns it before and after.
    A new `parent_id` moves the node with everything under it. Raises NotFoundError (site_id, node_id,
    parent_id), ValidationError (parent_id: another site, a node of one, or a move that makes the node its own
    ancestor)."""
    conn = db.conn
    before = _node_or_404(conn, site_id, node_id)
    columns: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "parent_id":
            if value == node_id:
                raise ValidationError(f"node {node_id!r} cannot be its own parent", field="parent_id")
            parent_id = _stored_parent(conn, site_id, value)
            parent_of = dict(
                conn.execute(
                    "SELECT id, parent_id FROM capacity_nodes WHERE site_id = ?", (site_id,)
                ).fetchall()
            )
            if would_cycle(parent_of, node_id, parent_id):
                raise ValidationError(
                    f"moving {node_id!r} under {value!r} makes a cycle: {value!r} is below {node_id!r}",
                    field="parent_id",
                )
            columns["parent_id"] = parent_id
        elif key == "phase_limits_a":
            columns.update(_limit_columns(value))
        else:
            columns[key] = value
    if columns:
        _set(conn, "capacity_nodes", "id", node_id, columns, at)
    after = read_node(conn, node_id)
    assert after is not None
    return before, after


def delete_node(db: sqlite_utils.Database, site_id: str, node_id: str) -> NodeRow:
    """Delete a node with nothing under it. Raises NotFoundError (site_id, node_id), ConflictError
    `node_not_empty`."""
    conn = db.conn
    node = _node_or_404(conn, site_id, node_id)
    children = conn.execute("SELECT count(*) FROM capacity_nodes WHERE parent_id = ?", (node_id,)).fetchone()[
        0
    ]
    placed = conn.execute("SELECT count(*) FROM charger_placements WHERE node_id = ?", (node_id,)).fetchone()[
        0
    ]
    if children or placed:
        raise ConflictError(
            f"capacity node {node_id!r} still has {children} node(s) and {placed} charger(s) under it; delete or"
            " move them first",
            code="node_not_empty",
        )
    conn.execute("DELETE FROM capacity_nodes WHERE id = ?", (node_id,))
    return node


def put_placement(
    db: sqlite_utils.Database, charger_id: str, spec: PlacementSpec, at: str
) -> tuple[PlacementRow | None, PlacementRow]:
    """Place `charger_id` under `spec.node_id` (a node, or a site: directly under it), replacing its place if
    it had one; returns the placement before (None) and after. Raises NotFoundError (field node_id)."""
    conn = db.conn
    if read_site(conn, spec.node_id) is not None:
        site_id, node_id = spec.node_id, None
    else:
        node = read_node(conn, spec.node_id)
        if node is None:
            raise NotFoundError(f"no site or capacity node {spec.node_id!r}", field="node_id")
        site_id, node_id = node.site_id, node.id
    before = read_placement(conn, charger_id)
    conn.execute(
        "INSERT INTO charger_placements (charger_id, site_id, node_id, phases, max_a, priority, weight,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charger_id) DO UPDATE SET"
        " site_id = excluded.site_id, node_id = excluded.node_id, phases = excluded.phases,"
        " max_a = excluded.max_a, priority = excluded.priority, weight = excluded.weight,"
        " updated_at = excluded.updated_at",
        (charger_id, site_id, node_id, spec.phases, spec.max_a, spec.priority, spec.weight, at, at),
    )
    after = read_placement(conn, charger_id)
    assert after is not None
    return before, after


def delete_placement(db: sqlite_utils.Database, charger_id: str) -> PlacementRow:
    """Take a charger out of its site. Raises NotFoundError `not_placed`."""
    before = read_placement(db.conn, charger_id)
    if before is None:
        raise NotFoundError(f"charger {charger_id!r} is not placed in a site", code="not_placed")
    db.conn.execute("DELETE FROM charger_placements WHERE charger_id = ?", (charger_id,))
    return before


# -- maintenance windows ------------------------------------------------------------------------------------------

_WINDOWS = msgspec.json.Decoder(list[MaintenanceWindow])


def read_windows(conn: sqlite3.Connection, site_id: str) -> tuple[tuple[MaintenanceWindow, ...], str | None]:
    """The site's maintenance windows and when they were last set (None: never; no windows)."""
    v = conn.execute(
        "SELECT windows, updated_at FROM site_maintenance_windows WHERE site_id = ?", (site_id,)
    ).fetchone()
    if v is None:
        return (), None
    return tuple(_WINDOWS.decode(v[0])), v[1]


def put_windows(
    db: sqlite_utils.Database, site_id: str, windows: tuple[MaintenanceWindow, ...], at: str
) -> tuple[tuple[MaintenanceWindow, ...], tuple[MaintenanceWindow, ...]]:
    """Replace the site's windows (an empty list removes them); returns (before, after). Raises NotFoundError
    (field site_id)."""
    conn = db.conn
    _site_or_404(conn, site_id)
    before, _ = read_windows(conn, site_id)
    conn.execute(
        "INSERT INTO site_maintenance_windows (site_id, windows, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (site_id) DO UPDATE SET windows = excluded.windows, updated_at = excluded.updated_at",
        (site_id, msgspec.json.encode(list(windows)).decode(), at),
    )
    return before, windows


class TopologyRepository:
    """Sites, their capacity nodes and the chargers' placements. Values are stored as given: the caller
    (`ampgate.load.service.Sites`) checks them; what needs the rows is checked inside each write."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> str:
        return iso_utc(self._store.now())

    # reads
    def site(self, site_id: str) -> SiteRow | None:
        return read_site(self._store.reader, site_id)

    def sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        return read_sites(self._store.reader, limit, after)

    def node(self, node_id: str) -> NodeRow | None:
        return read_node(self._store.reader, node_id)

    def nodes(
        self, site_id: str, limit: int, after: str | None = None, parent: str | None = None
    ) -> list[NodeRow]:
        return read_nodes(self._store.reader, site_id, limit, after, parent)

    def placement(self, charger_id: str) -> PlacementRow | None:
        return read_placement(self._store.reader, charger_id)

    def placements(
        self, site_id: str, limit: int, after: str | None = None, node: str | None = None
    ) -> list[PlacementRow]:
        return read_placements(self._store.reader, site_id, limit, after, node)

    def public_sites(self) -> list[SiteRow]:
        """The sites opted in to public recommendations that have a location, in id order."""
        cur = self._store.reader.execute(
            f"SELECT {_SITE_COLUMNS} FROM sites WHERE public_recommendations = 1 AND lat IS NOT NULL"
            " AND lon IS NOT NULL ORDER BY id"
        )
        return [_site(v) for v in cur.fetchall()]

    def site_of_every_charger(self) -> list[tuple[str, str]]:
        """Every placement as (charger id, site id): one scan, for in-memory indexes at start."""
        return list(
            self._store.reader.execute("SELECT charger_id, site_id FROM charger_placements").fetchall()
        )

    def tree(self, site_id: str) -> tuple[SiteRow | None, list[NodeRow], list[PlacementRow]]:
        """The site, its nodes and its placements as of one instant (None: no such site)."""
        return read_tree(self._store.reader, site_id)

    # writes (each waits for its commit)
    async def insert_site(self, spec: SiteSpec) -> SiteRow:
        return await self._store.write(functools.partial(insert_site, spec=spec, at=self._now()))

    async def update_site(self, site_id: str, changes: dict[str, Any]) -> tuple[SiteRow, SiteRow]:
        return await self._store.write(
            functools.partial(update_site, site_id=site_id, changes=changes, at=self._now())
        )

    async def delete_site(self, site_id: str) -> SiteRow:
        return await self._store.write(functools.partial(delete_site, site_id=site_id))

    async def insert_node(self, site_id: str, spec: NodeSpec) -> NodeRow:
        return await self._store.write(
            functools.partial(insert_node, site_id=site_id, spec=spec, at=self._now())
        )

    async def update_node(
        self, site_id: str, node_id: str, changes: dict[str, Any]
    ) -> tuple[NodeRow, NodeRow]:
        return await self._store.write(
            functools.partial(update_node, site_id=site_id, node_id=node_id, changes=changes, at=self._now())
        )

    async def delete_node(self, site_id: str, node_id: str) -> NodeRow:
        return await self._store.write(functools.partial(delete_node, site_id=site_id, node_id=node_id))

    async def put_placement(
        self, charger_id: str, spec: PlacementSpec
    ) -> tuple[PlacementRow | None, PlacementRow]:
        return await self._store.write(
            functools.partial(put_placement, charger_id=charger_id, spec=spec, at=self._now())
        )

    async def delete_placement(self, charger_id: str) -> PlacementRow:
        return await self._store.write(functools.partial(delete_placement, charger_id=charger_id))

    def windows(self, site_id: str) -> tuple[tuple[MaintenanceWindow, ...], datetime | None]:
        """The site's maintenance windows (none: empty) and when they were last set."""
        windows, at = read_windows(self._store.reader, site_id)
        return windows, parse_iso(at)

    async def put_windows(
        self, site_id: str, windows: tuple[MaintenanceWindow, ...]
    ) -> tuple[tuple[MaintenanceWindow, ...], tuple[MaintenanceWindow, ...]]:
        """Replace the site's windows; (before, after). Raises NotFoundError (field site_id)."""
        return await self._store.write(
            functools.partial(put_windows, site_id=site_id, windows=windows, at=self._now())
        )
