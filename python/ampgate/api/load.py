"""/api/v1/sites/{site_id}/load: the live allocation of a site (each capacity node's limits and what is
allocated and measured on each phase; each charging session's current), and its load history
(`ampgate.loadctl`).

Roles: viewer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.auth import requires_viewer
from ampgate.api.deps import LoadView, SiteService
from ampgate.api.paging import COMMON_ERRORS
from ampgate.api.schemas import ErrorBody
from ampgate.errors import NotFoundError, ValidationError

# A history answer holds at most this many points; the default window is the last day.
MAX_POINTS = 10_000
MIN_STEP_S = 60


class NodeLoad(msgspec.Struct, kw_only=True):
    """A capacity node (or the site itself): limits (null: none), the demand-response limit in force (kW, null:
    none), and the current allocated and measured on each site phase [L1, L2, L3]."""

    id: str
    parent_id: str | None
    limit_a: list[float | None]
    limit_kw: float | None
    demand_response_kw: float | None
    allocated_a: list[float]
    measured_a: list[float]


class SessionLoad(msgspec.Struct, kw_only=True):
    """A charging session: `limit_a` the allocation per phase (null before the first tick), `measured_a` its
    highest phase's latest current, `acknowledged_a` what the charger last accepted; `flags` rejects_profiles,
    overdraws."""

    charger_id: str
    connector_id: int
    transaction_id: int
    limit_a: float | None
    measured_a: float | None
    paused: bool
    phases: list[str]
    acknowledged_a: float | None
    online: bool
    flags: list[str]


class SiteLoad(msgspec.Struct, kw_only=True):
    site_id: str
    at: datetime
    nodes: list[NodeLoad]
    allocations: list[SessionLoad]


class LoadPoint(msgspec.Struct, kw_only=True):
    at: datetime
    limit_kw: float | None
    allocated_kw: float
    measured_kw: float | None
    sessions: int


class LoadHistory(msgspec.Struct, kw_only=True):
    """Means over each step of the per-minute history; steps without data are left out."""

    step_s: int
    points: list[LoadPoint]


SiteId = Annotated[str, Parameter(description="The site's id")]
_404 = {404: ResponseSpec(ErrorBody, description="No such site (`field`: site_id)")}


def _require(sites: SiteService, site_id: str) -> None:
    if sites.get_site(site_id) is None:
        raise NotFoundError(f"site {site_id!r} does not exist", field="site_id")


class SiteLoadController(Controller):
    path = "/api/v1/sites/{site_id:str}/load"
    tags = ("load management",)

    @get(
        "/",
        operation_id="get_site_load",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_404},
        summary="A site's live allocation",
        description="Role: viewer. Each node's limits, allocated and measured current per phase; each "
        "session's allocation as of the last tick.",
    )
    async def site_load(
        self, sites: NamedDependency[SiteService], load: NamedDependency[LoadView], site_id: SiteId
    ) -> SiteLoad:
        """Role: viewer."""
        _require(sites, site_id)
        view = load.site_load(site_id)
        if view is None:  # created since the last tick: nothing allocated yet
            return SiteLoad(site_id=site_id, at=load.now(), nodes=[], allocations=[])
        return msgspec.convert(view, SiteLoad)

    @get(
        "/history",
        operation_id="get_site_load_history",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_404},
        summary="A site's load history",
        description="Role: viewer. since (inclusive, default a day ago), until (exclusive, default now), step "
        f"(seconds, a multiple of {MIN_STEP_S}, default {MIN_STEP_S}); at most {MAX_POINTS} points.",
    )
    async def history(
        self,
        sites: NamedDependency[SiteService],
        load: NamedDependency[LoadView],
        site_id: SiteId,
        since: Annotated[
            datetime | None, Parameter(description="From (inclusive); default a day before until")
        ] = None,
        until: Annotated[datetime | None, Parameter(description="To (exclusive); default now")] = None,
        step: Annotated[int, Parameter(description="Seconds per point", ge=MIN_STEP_S)] = MIN_STEP_S,
    ) -> LoadHistory:
        """Role: viewer."""
        _require(sites, site_id)
        now = load.now()
        until = until or now
        since = since or until - timedelta(days=1)
        for name, at in (("since", since), ("until", until)):
            if at.tzinfo is None:
                raise ValidationError(f"{name} needs a UTC offset", field=name)
        if until <= since:
            raise ValidationError("until must be after since", field="until")
        if step % MIN_STEP_S:
            raise ValidationError(f"step must be a multiple of {MIN_STEP_S} s", field="step")
        if (until - since).total_seconds() / step > MAX_POINTS:
            raise ValidationError(
                f"more than {MAX_POINTS} points: widen step or narrow the window", field="step"
            )
        points = [msgspec.convert(p, LoadPoint) for p in load.history(site_id, since, until, step)]
        return LoadHistory(step_s=step, points=points)
