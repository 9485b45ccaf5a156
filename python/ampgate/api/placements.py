"""/api/v1/chargers/{charger_id}/placement: where a charger hangs in a site's capacity tree (under a capacity node,
or directly under the site) and how it is wired to the phases, and the bodies of a site's placement list.

`PUT` replaces the one placement a charger has, so placing it again moves it (also to another site); the body's
reference is `node_id` (shared/API-CONVENTIONS.md; the issue wrote `node`). Roles: placing and unplacing is for
admins; reading for viewers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_admin, requires_viewer
from ampgate.api.deps import ChargerReads, SiteService
from ampgate.api.paging import CHARGER_ERRORS, COMMON_ERRORS, require_charger
from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError
from ampgate.load import model
from ampgate.load.model import PlacementRow, PlacementSpec

# -- bodies -----------------------------------------------------------------------------------------------------


class PlacementPut(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where a charger hangs and how it is wired."""

    node_id: Annotated[str, Meta(description="A capacity node, or a site's id (directly under the site)")]
    phases: Annotated[
        str,
        Meta(
            description="L1, L2 or L3 (one phase, on that site phase), L1L2L3 (three phases, = RST) or an OCPP "
            "rotation: RST, RTS, SRT, STR, TRS, TSR (the i-th letter is the site phase of the charger's phase "
            "i; R, S, T = L1, L2, L3)",
            examples=["L1L2L3"],
        ),
    ]
    max_a: Annotated[float, Meta(description="The most the charger draws per phase, A (> 0)")]
    priority: Annotated[int, Meta(description="Higher is served first")] = model.DEFAULT_PRIORITY
    weight: Annotated[float, Meta(description="Share among chargers of equal priority (> 0)")] = (
        model.DEFAULT_WEIGHT
    )


class PlacementRead(msgspec.Struct, kw_only=True):
    """A charger's place: `node_id` is the site's id when it hangs directly under the site."""

    charger_id: str
    site_id: str
    node_id: str
    phases: str
    max_a: float
    priority: int
    weight: float
    created_at: datetime
    updated_at: datetime


class PlacementPage(msgspec.Struct, kw_only=True):
    """One page of a site's placed chargers in charger id order; `next_cursor` null on the last."""

    items: list[PlacementRead]
    next_cursor: str | None


def placement_read(row: PlacementRow) -> PlacementRead:
    return PlacementRead(
        charger_id=row.charger_id,
        site_id=row.site_id,
        node_id=row.node,
        phases=row.phases,
        max_a=row.max_a,
        priority=row.priority,
        weight=row.weight,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


ChargerId = Annotated[str, Parameter(description="The charge point id")]
_NOT_PLACED = {
    404: ResponseSpec(ErrorBody, description="No such charger (`field`: id), or not placed (`not_placed`)")
}


class PlacementController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/placement"
    tags = ("sites",)

    @put(
        "/",
        operation_id="put_charger_placement",
        guards=[requires_admin],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(
                ErrorBody, description="No such charger (`field`: id), or node (`field`: node_id)"
            ),
        },
        summary="Place a charger in a site",
        description="Role: admin. Puts the charger under a capacity node (or a site's id: directly under the "
        "site) with its phase wiring, max_a, priority and weight. A charger has one place: a second PUT moves it.",
    )
    async def put_charger_placement(
        self, sites: NamedDependency[SiteService], charger_id: ChargerId, data: JSONBody[PlacementPut]
    ) -> PlacementRead:
        """Role: admin. 200 with the placement. 404 (id: the charger; node_id), 422 naming the field (phases,
        max_a, priority, weight)."""
        spec = PlacementSpec(
            node_id=data.node_id,
            phases=data.phases,
            max_a=data.max_a,
            priority=data.priority,
            weight=data.weight,
        )
        return placement_read(await sites.place(charger_id, spec))

    @get(
        "/",
        operation_id="get_charger_placement",
        guards=[requires_viewer],
        responses={**CHARGER_ERRORS, **_NOT_PLACED},
        summary="Where a charger is placed",
        description="Role: viewer. 404 not_placed when the charger is in no site.",
    )
    async def get_charger_placement(
        self,
        sites: NamedDependency[SiteService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
    ) -> PlacementRead:
        """Role: viewer. 404 (field id) for an unknown charger, 404 `not_placed`."""
        require_charger(chargers, charger_id)
        row = sites.placement(charger_id)
        if row is None:
            raise NotFoundError(f"charger {charger_id!r} is not placed in a site", code="not_placed")
        return placement_read(row)

    @delete(
        "/",
        operation_id="delete_charger_placement",
        guards=[requires_admin],
        status_code=204,
        responses={**CHARGER_ERRORS, **_NOT_PLACED},
        summary="Take a charger out of its site",
        description="Role: admin. 204; no load management applies to it afterwards. 404 not_placed.",
    )
    async def delete_charger_placement(
        self,
        sites: NamedDependency[SiteService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
    ) -> Response[None]:
        """Role: admin. 204; 404 (field id) for an unknown charger, 404 `not_placed`."""
        require_charger(chargers, charger_id)
        await sites.unplace(charger_id)
        return Response(None, status_code=204)
