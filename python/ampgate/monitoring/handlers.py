"""NotifyMonitoringReport (its parts, and the monitors they list) and the events of NotifyEvent (handed over by
the status handlers, which own NotifyEvent for connector availability)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import DeviceEventReported
from ampgate.monitoring import convert
from ampgate.monitoring.repository import DeviceEvent, Monitor
from ampgate.ocpp import v201
from ampgate.ocpp.envelope import OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.reports import ReportParts, part_of

NOTIFY_MONITORING_REPORT = "NotifyMonitoringReport"


class MonitorRecords(Protocol):
    def record_monitors(self, charger_id: str, monitors: list[Monitor], at: datetime, /) -> None: ...
    def record_events(self, charger_id: str, events: list[DeviceEvent], at: datetime, /) -> None: ...


class MonitoringHandlers:
    def __init__(self, records: MonitorRecords, reports: ReportParts, bus: Publisher, clock: Clock) -> None:
        self._records = records
        self._reports = reports
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP201, NOTIFY_MONITORING_REPORT, self._report)

    def _report(self, session: Session, req: v201.NotifyMonitoringReportRequest) -> Any:
        now = self._clock.now()
        if req.monitor:
            self._records.record_monitors(session.charger_id, convert.from_report(req.monitor), now)
        part = part_of(session.charger_id, NOTIFY_MONITORING_REPORT, req, now)

        async def reply() -> dict[str, Any]:
            await self._reports.add(part)
            return {}

        return reply()

    def events(self, session: Session, req: v201.NotifyEventRequest) -> None:
        """Keep and publish every event of a NotifyEvent, each with the monitor that raised it (if any)."""
        now = self._clock.now()
        events = convert.events(req.event_data)
        self._records.record_events(session.charger_id, events, now)
        for e in events:
            self._bus.publish(
                DeviceEventReported(
                    at=now,
                    charger_id=session.charger_id,
                    event_id=e.event_id,
                    occurred_at=e.at,
                    trigger=e.trigger,
                    monitor_id=e.monitor_id,
                    component=e.where.component,
                    variable=e.where.variable,
                    actual_value=e.actual_value,
                    cleared=e.cleared,
                )
            )
