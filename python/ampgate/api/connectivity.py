"""/api/v1/chargers/{id}/connectivity and /api/v1/connectivity/summary: who is online, stale or offline, since
when and why, flapping, history and uptime per day, and the fleet at a glance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter, QueryParameter

from ampgate.api.auth import requires_viewer
from ampgate.api.deps import ChargerReads, ConnectivityReads, IncidentReads
from ampgate.api.paging import (
    CHARGER_ERRORS,
    COMMON_ERRORS,
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    instant,
    int_cursor,
    require_charger,
)
from ampgate.api.schemas import (
    ConnectivityHistoryPage,
    ConnectivityHistoryRead,
    ConnectivityRead,
    ConnectivitySummary,
    ErrorBody,
)
from ampgate.connectivity.view import MAX_UPTIME_DAYS
from ampgate.errors import NotFoundError, ValidationError

ChargerId = Annotated[str, Parameter(description="The charge point id")]


class ChargerConnectivityController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/connectivity"
    tags = ("connectivity",)

    @get(
        "/",
        operation_id="get_charger_connectivity",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's connectivity",
        description="Role: viewer. State (online, stale, offline) and since when, its link, last message and "
        "heartbeat, connects today, flapping, the last disconnect and why, and its uptime per UTC day.",
    )
    async def get_charger_connectivity(
        self,
        connectivity: NamedDependency[ConnectivityReads],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
        days: Annotated[
            int, Parameter(ge=1, le=MAX_UPTIME_DAYS, description="Days of uptime, today included (1 to 90)")
        ] = 7,
    ) -> ConnectivityRead:
        """Role: viewer. 404 (field id) for an unknown charger; 422 naming days."""
        require_charger(chargers, charger_id)
        return msgspec.convert(connectivity.charger(charger_id, days), ConnectivityRead)

    @get(
        "/history",
        operation_id="list_charger_connectivity_history",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="A charger's connectivity history",
        description="Role: viewer. Its state changes newest first (connects, disconnects with their reason, "
        "close code and duration, stale and back), kept for --history-days.",
    )
    async def list_charger_connectivity_history(
        self,
        connectivity: NamedDependency[ConnectivityReads],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        since: Annotated[str | None, Parameter(description="Only changes at or after this time")] = None,
    ) -> ConnectivityHistoryPage:
        """Role: viewer. 404 (field id) for an unknown charger; 422 naming limit, cursor or since."""
        require_charger(chargers, charger_id)
        rows = connectivity.history(charger_id, limit + 1, int_cursor(cursor), instant(since, "since"))
        more = len(rows) > limit
        rows = rows[:limit]
        return ConnectivityHistoryPage(
            items=[msgspec.convert(msgspec.to_builtins(r), ConnectivityHistoryRead) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )


class ConnectivityController(Controller):
    path = "/api/v1/connectivity"
    tags = ("connectivity",)

    @get(
        "/summary",
        operation_id="get_connectivity_summary",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="The fleet's connectivity",
        description="Role: viewer. Registered chargers online, stale and offline (by protocol), flapping, and "
        "connects and disconnects per minute.",
    )
    async def get_connectivity_summary(
        self, connectivity: NamedDependency[ConnectivityReads]
    ) -> ConnectivitySummary:
        """Role: viewer."""
        summary: dict[str, Any] = connectivity.summary()
        return msgspec.convert(summary, ConnectivitySummary)


class IncidentRead(msgspec.Struct, kw_only=True):
    """An outage: `kind` disconnect_spike, `scope` fleet (sites come with load management), `ended_at` null
    while it lasts, `disconnects` the most within one window of `fleet` registered chargers."""

    id: int
    kind: str
    scope: str
    severity: str
    started_at: datetime
    ended_at: datetime | None
    disconnects: int
    fleet: int


class IncidentPage(msgspec.Struct, kw_only=True):
    items: list[IncidentRead]
    next_cursor: str | None


class IncidentController(Controller):
    path = "/api/v1/incidents"
    tags = ("connectivity",)

    @get(
        "/",
        operation_id="list_incidents",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="Outage incidents",
        description="Role: viewer. Incidents newest first (state: open or ended): a disconnect spike of the fleet "
        "is one incident with its start, end and size, not an alert per charger.",
    )
    async def list_incidents(
        self,
        incidents: NamedDependency[IncidentReads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        state_filter: Annotated[str | None, QueryParameter(name="state", description="open or ended")] = None,
    ) -> IncidentPage:
        """Role: viewer. 422 naming limit, cursor or state."""
        if state_filter is not None and state_filter not in ("open", "ended"):
            raise ValidationError("state must be open or ended", field="state")
        rows = incidents.page(limit + 1, int_cursor(cursor), state_filter)
        more = len(rows) > limit
        rows = rows[:limit]
        return IncidentPage(
            items=[msgspec.convert(msgspec.to_builtins(r), IncidentRead) for r in rows],
            next_cursor=str(rows[-1].id) if more else None,
        )

    @get(
        "/{id:int}",
        operation_id="get_incident",
        guards=[requires_viewer],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such incident (`field`: id)"),
        },
        summary="One incident",
        description="Role: viewer.",
    )
    async def get_incident(
        self,
        incidents: NamedDependency[IncidentReads],
        id: Annotated[int, Parameter(description="The incident id")],
    ) -> IncidentRead:
        """Role: viewer. 404 (field id) if there is none."""
        row = incidents.get(id)
        if row is None:
            raise NotFoundError(f"no incident {id}", field="id")
        return msgspec.convert(msgspec.to_builtins(row), IncidentRead)
