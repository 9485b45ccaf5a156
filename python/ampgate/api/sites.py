"""/api/v1/sites and /api/v1/sites/{site_id}/nodes: the site topology load management works on. A site is the root
of a tree (its limits are the grid connection's) and capacity nodes of any depth hang under it; each charger is
placed under a node or directly under the site (`api.placements`).

References in bodies are `<thing>_id` (shared/API-CONVENTIONS.md): the issue's `parent` and `node` are
`parent_id` and `node_id` here; either may name the site itself (directly under the grid connection). A node
moves with PATCH `parent_id`; a charger moves with another PUT of its placement. Deletes do not cascade: a site
or node with something under it is 409.

Roles: changing the topology is for admins; reading it for viewers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import SiteService
from ampgate.api.paging import (
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    decode_cursor,
    encode_cursor,
)
from ampgate.api.placements import PlacementPage, placement_read
from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError
from ampgate.load import model
from ampgate.load.model import Location, NodeRow, NodeSpec, SiteRow, SiteSpec
from ampgate.store import validate_charger_id

SITES_PATH = "/api/v1/sites"

# -- bodies -----------------------------------------------------------------------------------------------------

_PHASE_LIMITS = (
    "Per-phase limits in A, [L1, L2, L3], each a number >= 0 or null (no limit on that phase). A child's limit "
    "may exceed its parent's: the parent's limit still bounds everything under it."
)
PhaseLimitsBody = Annotated[list[float | None], Meta(min_length=3, max_length=3, description=_PHASE_LIMITS)]
LimitKw = Annotated[float | None, Meta(description="Total limit in kW (>= 0); null: none")]
Name = Annotated[str | None, Meta(description="What operators call it (up to 255 characters)")]
_OCPI_PUBLISH = (
    "Whether OCPI publishes the site as a Location to the registered eMSPs (GET /ocpi/2.2.1/locations and the "
    "pushes of its EVSEs' statuses); true by default. False for a private site, which OCPI says must not be "
    "published. Independent of public_recommendations."
)
_PUBLIC_RECOMMENDATIONS = (
    "Whether the site is shown to the public: EV owners' apps may be sent here (GET /public/v1/recommendations on "
    "the public listener shows its name, location, free connectors, headroom and recent occupancy) and see its "
    "EVSEs' live status and current prices (GET /public/v1/locations); false until the operator opts in. Needs a "
    "location to be shown."
)


class LocationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where a site is (roaming publishes it as an OCPI location)."""

    lat: Annotated[float, Meta(description="Latitude, WGS 84 degrees (-90 to 90)")]
    lon: Annotated[float, Meta(description="Longitude, WGS 84 degrees (-180 to 180)")]
    address: Annotated[str | None, Meta(description="Street and number (up to 45 characters)")] = None
    city: Annotated[str | None, Meta(description="Up to 45 characters")] = None
    postal_code: Annotated[str | None, Meta(description="Up to 10 characters")] = None
    country: Annotated[str | None, Meta(description="ISO 3166-1 alpha-3, e.g. NLD")] = None


class SiteCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A site: the root of a capacity tree, its limits the grid connection's."""

    id: Annotated[
        str,
        Meta(
            description="1 to 36 characters of A-Z a-z 0-9 . _ ~ -, unique among sites and capacity nodes",
            examples=["AMS-01"],
        ),
    ]
    name: Name = None
    phase_limits_a: PhaseLimitsBody
    limit_kw: LimitKw = None
    voltage_v: Annotated[
        float, Meta(description="Nominal line-to-neutral voltage (P = I × V × phases in use)")
    ] = model.DEFAULT_VOLTAGE_V
    time_zone: Annotated[
        str, Meta(description="IANA time zone (maintenance windows, roaming)", examples=["Europe/Amsterdam"])
    ] = model.DEFAULT_TIME_ZONE
    location: LocationBody | None = None
    ean: Annotated[str | None, Meta(description="The grid connection's 18-digit EAN code")] = None
    public_recommendations: Annotated[bool, Meta(description=_PUBLIC_RECOMMENDATIONS)] = False
    ocpi_publish: Annotated[bool, Meta(description=_OCPI_PUBLISH)] = True


class SiteUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change a site: only the fields present change (null clears name, limit_kw, location, ean)."""

    name: str | msgspec.UnsetType | None = msgspec.UNSET
    phase_limits_a: PhaseLimitsBody | msgspec.UnsetType = msgspec.UNSET
    limit_kw: float | msgspec.UnsetType | None = msgspec.UNSET
    voltage_v: float | msgspec.UnsetType = msgspec.UNSET
    time_zone: str | msgspec.UnsetType = msgspec.UNSET
    location: LocationBody | msgspec.UnsetType | None = msgspec.UNSET
    ean: str | msgspec.UnsetType | None = msgspec.UNSET
    public_recommendations: bool | msgspec.UnsetType = msgspec.UNSET
    ocpi_publish: bool | msgspec.UnsetType = msgspec.UNSET


class LocationRead(msgspec.Struct, kw_only=True):
    lat: float
    lon: float
    address: str | None
    city: str | None
    postal_code: str | None
    country: str | None


class SiteRead(msgspec.Struct, kw_only=True):
    """A site."""

    id: str
    name: str | None
    phase_limits_a: list[float | None]
    limit_kw: float | None
    voltage_v: float
    time_zone: str
    location: LocationRead | None
    ean: str | None
    public_recommendations: bool
    ocpi_publish: bool
    created_at: datetime
    updated_at: datetime


class SitePage(msgspec.Struct, kw_only=True):
    """One page of sites in id order; `next_cursor` null on the last."""

    items: list[SiteRead]
    next_cursor: str | None


class NodeCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A capacity node (transformer, feeder, panel, …) in a site."""

    id: Annotated[
        str,
        Meta(description="1 to 36 characters of A-Z a-z 0-9 . _ ~ -, unique among sites and capacity nodes"),
    ]
    parent_id: Annotated[
        str, Meta(description="The site's id (directly under it) or another node of the site")
    ]
    name: Name = None
    phase_limits_a: PhaseLimitsBody | None = None
    limit_kw: LimitKw = None


class NodeUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change a node: only the fields present change; `parent_id` moves it with everything under it (null
    clears name, phase_limits_a, limit_kw)."""

    parent_id: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType | None = msgspec.UNSET
    phase_limits_a: PhaseLimitsBody | msgspec.UnsetType | None = msgspec.UNSET
    limit_kw: float | msgspec.UnsetType | None = msgspec.UNSET


class NodeRead(msgspec.Struct, kw_only=True):
    """A capacity node: `parent_id` is the site's id when it hangs directly under the site; `phase_limits_a`
    has null where it has no limit."""

    id: str
    site_id: str
    parent_id: str
    name: str | None
    phase_limits_a: list[float | None]
    limit_kw: float | None
    created_at: datetime
    updated_at: datetime


class NodePage(msgspec.Struct, kw_only=True):
    """One page of a site's capacity nodes in id order; `next_cursor` null on the last."""

    items: list[NodeRead]
    next_cursor: str | None


# -- views ------------------------------------------------------------------------------------------------------


def site_read(row: SiteRow) -> SiteRead:
    loc = row.location
    return SiteRead(
        id=row.id,
        name=row.name,
        phase_limits_a=list(row.phase_limits_a),
        limit_kw=row.limit_kw,
        voltage_v=row.voltage_v,
        time_zone=row.time_zone,
        location=None
        if loc is None
        else LocationRead(
            lat=loc.lat,
            lon=loc.lon,
            address=loc.address,
            city=loc.city,
            postal_code=loc.postal_code,
            country=loc.country,
        ),
        ean=row.ean,
        public_recommendations=row.public_recommendations,
        ocpi_publish=row.ocpi_publish,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def node_read(row: NodeRow) -> NodeRead:
    return NodeRead(
        id=row.id,
        site_id=row.site_id,
        parent_id=row.parent,
        name=row.name,
        phase_limits_a=list(row.phase_limits_a),
        limit_kw=row.limit_kw,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _location(body: LocationBody | None) -> Location | None:
    if body is None:
        return None
    return Location(
        lat=body.lat,
        lon=body.lon,
        address=body.address,
        city=body.city,
        postal_code=body.postal_code,
        country=body.country,
    )


def _limits(value: list[float | None] | None) -> model.PhaseLimits:
    # The model checks the length (msgspec did too); the tuple is what the model stores.
    return model.NO_PHASE_LIMITS if value is None else tuple(value)  # type: ignore[return-value]


def _present(data: msgspec.Struct) -> dict[str, object]:
    return {f: v for f in data.__struct_fields__ if (v := getattr(data, f)) is not msgspec.UNSET}


SiteId = Annotated[str, Parameter(description="The site's id")]
NodeId = Annotated[str, Parameter(description="The capacity node's id")]

_SITE_404 = {404: ResponseSpec(ErrorBody, description="No such site (`field`: site_id)")}
_NODE_404 = {404: ResponseSpec(ErrorBody, description="No such site or node (`field`: site_id, node_id)")}
_ID_409 = {
    409: ResponseSpec(
        ErrorBody, description="The id names a site or node already (`site_exists`, `node_exists`)"
    )
}


def _site(sites: SiteService, site_id: str) -> SiteRow:
    row = sites.get_site(site_id)
    if row is None:
        raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")
    return row


class SiteController(Controller):
    path = SITES_PATH
    tags = ("sites",)

    @post(
        "/",
        operation_id="create_site",
        guards=[requires_admin],
        status_code=201,
        responses={**COMMON_ERRORS, **_ID_409},
        summary="Create a site",
        description="Role: admin. A site is the root of a capacity tree; its phase_limits_a (and limit_kw) are "
        "the grid connection's. 201 with the site and its Location.",
    )
    async def create_site(
        self, sites: NamedDependency[SiteService], data: JSONBody[SiteCreate]
    ) -> Response[SiteRead]:
        """Role: admin. 201 with the site and `Location`. 409 `site_exists` / `node_exists` (ids of sites and
        nodes are one namespace), 422 naming the field (a negative limit, an unknown time zone, a bad EAN)."""
        spec = SiteSpec(
            id=data.id,
            name=data.name,
            phase_limits_a=_limits(data.phase_limits_a),
            limit_kw=data.limit_kw,
            voltage_v=data.voltage_v,
            time_zone=data.time_zone,
            location=_location(data.location),
            ean=data.ean,
            public_recommendations=data.public_recommendations,
            ocpi_publish=data.ocpi_publish,
        )
        row = await sites.create_site(spec)
        return Response(site_read(row), status_code=201, headers={"Location": f"{SITES_PATH}/{row.id}"})

    @get(
        "/",
        operation_id="list_sites",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="List sites",
        description="Role: viewer. Sites in id order.",
    )
    async def list_sites(
        self, sites: NamedDependency[SiteService], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> SitePage:
        """Role: viewer. Sites in id order; 422 naming limit or cursor."""
        after = None if cursor is None else decode_cursor(cursor, model.validate_id)
        rows = sites.page_sites(limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return SitePage(
            items=[site_read(r) for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None
        )

    @get(
        "/{site_id:str}",
        operation_id="get_site",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="One site",
        description="Role: viewer. The site with its limits, voltage, time zone, location and EAN.",
    )
    async def get_site(self, sites: NamedDependency[SiteService], site_id: SiteId) -> SiteRead:
        """Role: viewer. 404 (field site_id) if there is none."""
        return site_read(_site(sites, site_id))

    @patch(
        "/{site_id:str}",
        operation_id="update_site",
        guards=[requires_admin],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="Change a site",
        description="Role: admin. Changes the fields present (null clears name, limit_kw, location, ean); the id "
        "cannot change. public_recommendations: true opts the site in to the public recommendations; ocpi_publish: "
        "false takes it out of OCPI (a private site).",
    )
    async def update_site(
        self, sites: NamedDependency[SiteService], site_id: SiteId, data: JSONBody[SiteUpdate]
    ) -> SiteRead:
        """Role: admin. 404 (field site_id), 422 naming the field; nothing changes when one field is refused."""
        changes = _present(data)
        if "phase_limits_a" in changes:
            changes["phase_limits_a"] = _limits(data.phase_limits_a)  # type: ignore[arg-type]
        if "location" in changes:
            changes["location"] = _location(data.location)  # type: ignore[arg-type]
        return site_read(await sites.update_site(site_id, changes))

    @delete(
        "/{site_id:str}",
        operation_id="delete_site",
        guards=[requires_admin],
        status_code=204,
        responses={
            **COMMON_ERRORS,
            **_SITE_404,
            409: ResponseSpec(ErrorBody, description="It still has nodes or chargers (`site_not_empty`)"),
        },
        summary="Delete a site",
        description="Role: admin. Only an empty site: nothing cascades (409 site_not_empty while nodes or chargers "
        "are in it).",
    )
    async def delete_site(self, sites: NamedDependency[SiteService], site_id: SiteId) -> Response[None]:
        """Role: admin. 204; 404 (field site_id); 409 `site_not_empty`."""
        await sites.delete_site(site_id)
        return Response(None, status_code=204)

    @get(
        "/{site_id:str}/placements",
        operation_id="list_site_placements",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="The chargers placed in a site",
        description="Role: viewer. Placements in charger id order; node_id: only those directly under that node "
        "(the site's id: directly under the site).",
    )
    async def list_site_placements(
        self,
        sites: NamedDependency[SiteService],
        site_id: SiteId,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        node_id: Annotated[
            str | None, Parameter(description="Only chargers directly under this node")
        ] = None,
    ) -> PlacementPage:
        """Role: viewer. 404 (field site_id); 422 naming limit or cursor."""
        after = None if cursor is None else decode_cursor(cursor, validate_charger_id)
        rows = sites.page_placements(site_id, limit + 1, after, node_id=node_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return PlacementPage(
            items=[placement_read(r) for r in rows],
            next_cursor=encode_cursor(rows[-1].charger_id) if more else None,
        )


class CapacityNodeController(Controller):
    path = f"{SITES_PATH}/{{site_id:str}}/nodes"
    tags = ("sites",)

    @post(
        "/",
        operation_id="create_capacity_node",
        guards=[requires_admin],
        status_code=201,
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such site, or parent (`field`: site_id, parent_id)"),
            **_ID_409,
        },
        summary="Add a capacity node to a site",
        description="Role: admin. A transformer, feeder, panel, … under the site or another node of it, with "
        "optional per-phase (A) and total (kW) limits. 201 with the node and its Location.",
    )
    async def create_capacity_node(
        self, sites: NamedDependency[SiteService], site_id: SiteId, data: JSONBody[NodeCreate]
    ) -> Response[NodeRead]:
        """Role: admin. 201 with the node and `Location`. 404 (site_id; parent_id), 409 `site_exists` /
        `node_exists`, 422 naming the field (parent_id in another site, a negative limit)."""
        spec = NodeSpec(
            id=data.id,
            parent_id=data.parent_id,
            name=data.name,
            phase_limits_a=_limits(data.phase_limits_a),
            limit_kw=data.limit_kw,
        )
        row = await sites.create_node(site_id, spec)
        return Response(
            node_read(row), status_code=201, headers={"Location": f"{SITES_PATH}/{site_id}/nodes/{row.id}"}
        )

    @get(
        "/",
        operation_id="list_capacity_nodes",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="A site's capacity nodes",
        description="Role: viewer. The site's nodes in id order; parent_id: only those directly under it (the "
        "site's id: directly under the site).",
    )
    async def list_capacity_nodes(
        self,
        sites: NamedDependency[SiteService],
        site_id: SiteId,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        parent_id: Annotated[str | None, Parameter(description="Only nodes directly under this one")] = None,
    ) -> NodePage:
        """Role: viewer. 404 (field site_id); 422 naming limit or cursor."""
        after = None if cursor is None else decode_cursor(cursor, model.validate_id)
        rows = sites.page_nodes(site_id, limit + 1, after, parent_id=parent_id)
        more = len(rows) > limit
        rows = rows[:limit]
        return NodePage(
            items=[node_read(r) for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None
        )

    @get(
        "/{node_id:str}",
        operation_id="get_capacity_node",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_NODE_404},
        summary="One capacity node",
        description="Role: viewer. The node with its parent and limits.",
    )
    async def get_capacity_node(
        self, sites: NamedDependency[SiteService], site_id: SiteId, node_id: NodeId
    ) -> NodeRead:
        """Role: viewer. 404 (field site_id, node_id) if the site or its node does not exist."""
        _site(sites, site_id)
        row = sites.get_node(site_id, node_id)
        if row is None:
            raise NotFoundError(f"site {site_id!r} has no capacity node {node_id!r}", field="node_id")
        return node_read(row)

    @patch(
        "/{node_id:str}",
        operation_id="update_capacity_node",
        guards=[requires_admin],
        responses={**COMMON_ERRORS, **_NODE_404},
        summary="Change or move a capacity node",
        description="Role: admin. Changes the fields present; parent_id moves the node with everything under it "
        "(422 when that would make it its own ancestor).",
    )
    async def update_capacity_node(
        self,
        sites: NamedDependency[SiteService],
        site_id: SiteId,
        node_id: NodeId,
        data: JSONBody[NodeUpdate],
    ) -> NodeRead:
        """Role: admin. 404 (site_id, node_id, parent_id), 422 naming the field (parent_id: a cycle, another
        site); nothing changes when one field is refused."""
        changes = _present(data)
        if "phase_limits_a" in changes and changes["phase_limits_a"] is not None:
            changes["phase_limits_a"] = _limits(data.phase_limits_a)  # type: ignore[arg-type]
        return node_read(await sites.update_node(site_id, node_id, changes))

    @delete(
        "/{node_id:str}",
        operation_id="delete_capacity_node",
        guards=[requires_admin],
        status_code=204,
        responses={
            **COMMON_ERRORS,
            **_NODE_404,
            409: ResponseSpec(ErrorBody, description="Nodes or chargers are under it (`node_not_empty`)"),
        },
        summary="Delete a capacity node",
        description="Role: admin. Only a node with nothing under it: nothing cascades (409 node_not_empty).",
    )
    async def delete_capacity_node(
        self, sites: NamedDependency[SiteService], site_id: SiteId, node_id: NodeId
    ) -> Response[None]:
        """Role: admin. 204; 404 (site_id, node_id); 409 `node_not_empty`."""
        await sites.delete_node(site_id, node_id)
        return Response(None, status_code=204)
