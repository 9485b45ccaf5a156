"""/api/v1/chargers/{id}/monitors and /device-events: a 2.0.1 charger's variable monitors (from its monitoring
report and the SetVariableMonitoring / ClearVariableMonitoring commands sent through the API) and the events it
reported with NotifyEvent, each linked to the monitor that raised it."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ChargerReads, MonitoringService
from ampgate.api.paging import (
    CHARGER_ERRORS,
    DEFAULT_LIMIT,
    REFRESH_ERRORS,
    Cursor,
    Limit,
    int_cursor,
    require_charger,
)
from ampgate.monitoring import DeviceEventRow, MonitorRow

ChargerId = Annotated[str, Parameter(description="The charge point id")]


class MonitorList(msgspec.Struct, kw_only=True):
    items: list[MonitorRow]


class DeviceEventRead(DeviceEventRow, frozen=True, kw_only=True):
    """An event as reported; `monitor` the monitor that raised it when the node knows it."""

    monitor: MonitorRow | None = None


class DeviceEventPage(msgspec.Struct, kw_only=True):
    items: list[DeviceEventRead]
    next_cursor: str | None


class MonitorRefresh(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    criteria: list[Literal["ThresholdMonitoring", "DeltaMonitoring", "PeriodicMonitoring"]] | None = None


class MonitorRefreshResult(msgspec.Struct, kw_only=True):
    request_id: int | None  # null: the charger had no monitor to report
    monitors: int


class MonitoringController(Controller):
    path = "/api/v1/chargers/{charger_id:str}"
    tags = ("monitoring",)

    @get(
        "/monitors",
        operation_id="list_monitors",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="The charger's variable monitors (role: viewer)",
    )
    async def list_monitors(
        self,
        monitoring: NamedDependency[MonitoringService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
    ) -> MonitorList:
        """Monitors by id, as the last monitoring report and the monitoring commands left them. Role: viewer."""
        require_charger(chargers, charger_id)
        return MonitorList(items=monitoring.monitors(charger_id))

    @post(
        "/monitors/refresh",
        operation_id="refresh_monitors",
        guards=[requires_operator],
        status_code=200,
        responses=REFRESH_ERRORS,
        summary="Ask the charger for its monitors and wait for the report (role: operator)",
    )
    async def refresh_monitors(
        self,
        monitoring: NamedDependency[MonitoringService],
        charger_id: ChargerId,
        data: JSONBody[MonitorRefresh],
    ) -> MonitorRefreshResult:
        """GetMonitoringReport with a new request id; answered once every NotifyMonitoringReport part is in.
        Role: operator."""
        request_id = await monitoring.refresh(charger_id, list(data.criteria) if data.criteria else None)
        return MonitorRefreshResult(
            request_id=request_id or None, monitors=len(monitoring.monitors(charger_id))
        )

    @get(
        "/device-events",
        operation_id="list_device_events",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="Events the charger reported with NotifyEvent (role: viewer)",
    )
    async def list_device_events(
        self,
        monitoring: NamedDependency[MonitoringService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
        monitor_id: Annotated[int | None, Parameter(description="Only those this monitor raised")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> DeviceEventPage:
        """Newest first, each with its monitor when known. Role: viewer. Raises 404 (field id), 422."""
        require_charger(chargers, charger_id)
        rows = monitoring.events(charger_id, limit + 1, monitor_id=monitor_id, before=int_cursor(cursor))
        more = len(rows) > limit
        rows = rows[:limit]
        monitors = {m.id: m for m in monitoring.monitors(charger_id)}
        return DeviceEventPage(
            items=[
                DeviceEventRead(
                    **msgspec.structs.asdict(r),
                    monitor=None if r.monitor_id is None else monitors.get(r.monitor_id),
                )
                for r in rows
            ],
            next_cursor=str(rows[-1].id) if more else None,
        )
