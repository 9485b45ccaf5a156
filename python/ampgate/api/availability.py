"""GET /api/v1/sites/{site_id}/availability and …/occupancy: a site's connectors per state and power headroom now,
and its occupancy per hour (ampgate.availability). Role: viewer (reads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.auth import requires_viewer
from ampgate.api.deps import AvailabilityReads
from ampgate.api.paging import COMMON_ERRORS, instant
from ampgate.api.schemas import ErrorBody
from ampgate.api.sites import SITES_PATH
from ampgate.availability.occupancy import HOUR_S, OccupancyRow

SiteId = Annotated[str, Parameter(description="The site's id")]
_SITE_404 = {404: ResponseSpec(ErrorBody, description="No such site (`field`: site_id)")}


class ConnectorRead(msgspec.Struct, kw_only=True):
    """A connector: `status` as the charger last reported it, `state` what it counts as (free, in_use,
    faulted, unavailable, offline: a connector of an offline charger is offline whatever it last said)."""

    evse_id: int | None
    connector_id: int
    status: str
    state: str


class ChargerAvailabilityRead(msgspec.Struct, kw_only=True):
    charger_id: str
    online: bool
    connectors: list[ConnectorRead]


class AvailabilityRead(msgspec.Struct, kw_only=True):
    """A site's connectors per state at `at`, its power headroom now (kW; null: unknown) and its chargers."""

    site_id: str
    at: datetime
    connectors_free: int
    connectors_in_use: int
    connectors_faulted: int
    connectors_unavailable: int
    connectors_offline: int
    connectors_total: int
    headroom_kw: float | None
    chargers: list[ChargerAvailabilityRead]


class OccupancyPoint(msgspec.Struct, kw_only=True):
    """Connector-seconds per state in the bucket starting `at`, and `occupancy`: in use / (in use + free), the
    mean fraction of in-service connectors in use (null: none was in service)."""

    at: datetime
    in_use_s: float
    free_s: float
    faulted_s: float
    unavailable_s: float
    offline_s: float
    occupancy: float | None


class OccupancySeries(msgspec.Struct, kw_only=True):
    step_s: int
    points: list[OccupancyPoint]


def _point(row: OccupancyRow) -> OccupancyPoint:
    return OccupancyPoint(
        at=datetime.fromtimestamp(row.hour_start, UTC),
        in_use_s=round(row.in_use_s, 3),
        free_s=round(row.free_s, 3),
        faulted_s=round(row.faulted_s, 3),
        unavailable_s=round(row.unavailable_s, 3),
        offline_s=round(row.offline_s, 3),
        occupancy=None if (o := row.occupancy) is None else round(o, 4),
    )


class AvailabilityController(Controller):
    path = f"{SITES_PATH}/{{site_id:str}}"
    tags = ("sites",)

    @get(
        "/availability",
        operation_id="get_site_availability",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="A site's connectors free / in use / faulted / offline and its power headroom now",
        description="Role: viewer. Counted from the chargers' last connector statuses and their presence (a "
        "connector of an offline charger counts offline). headroom_kw is what load control can still give the "
        "site now; null when unknown.",
    )
    async def get_site_availability(
        self, availability: NamedDependency[AvailabilityReads], site_id: SiteId
    ) -> AvailabilityRead:
        """Role: viewer. 404 (field site_id)."""
        a = availability.availability(site_id)
        c = a.counts
        return AvailabilityRead(
            site_id=a.site_id,
            at=a.at,
            connectors_free=c.free,
            connectors_in_use=c.in_use,
            connectors_faulted=c.faulted,
            connectors_unavailable=c.unavailable,
            connectors_offline=c.offline,
            connectors_total=c.total,
            headroom_kw=a.headroom_kw,
            chargers=[
                ChargerAvailabilityRead(
                    charger_id=ch.charger_id,
                    online=ch.online,
                    connectors=[
                        ConnectorRead(
                            evse_id=cn.evse_id, connector_id=cn.connector_id, status=cn.status, state=cn.state
                        )
                        for cn in ch.connectors
                    ],
                )
                for ch in a.chargers
            ],
        )

    @get(
        "/occupancy",
        operation_id="get_site_occupancy",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="A site's occupancy per hour",
        description="Role: viewer. Connector-seconds in use, free, faulted, unavailable and offline per UTC hour "
        "(or per step, a multiple of 3600 s), and the mean fraction of in-service connectors in use. Buckets "
        "that start in [since rounded down to the step, until); only buckets with connector time; the hour in "
        "progress as far as it has gone. Defaults: until now, since a day earlier.",
    )
    async def get_site_occupancy(
        self,
        availability: NamedDependency[AvailabilityReads],
        site_id: SiteId,
        since: Annotated[str | None, Parameter(description="ISO 8601; default: a day before until")] = None,
        until: Annotated[str | None, Parameter(description="ISO 8601, exclusive; default: now")] = None,
        step: Annotated[
            int, Parameter(description="Bucket in seconds: a multiple of 3600, at most 31 days")
        ] = HOUR_S,
    ) -> OccupancySeries:
        """Role: viewer. 404 (field site_id); 422 naming since, until or step."""
        rows = availability.occupancy(site_id, instant(since, "since"), instant(until, "until"), step)
        return OccupancySeries(step_s=step, points=[_point(r) for r in rows])
