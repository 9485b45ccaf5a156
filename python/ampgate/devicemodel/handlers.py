"""NotifyReport (2.0.1): each part stored as a report part (the reply waits for its commit) and its variables
recorded in the device model; a base report of everything (FullInventory) replaces what was known of each
attribute it lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.clock import Clock
from ampgate.devicemodel.convert import from_report
from ampgate.devicemodel.repository import Variable
from ampgate.ocpp import v201
from ampgate.ocpp.envelope import OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.reports import ReportParts, part_of

NOTIFY_REPORT = "NotifyReport"


class VariableRecords(Protocol):
    def record(self, charger_id: str, variables: list[Variable], at: datetime, /, *, full: bool) -> None: ...


class DeviceModelHandlers:
    def __init__(self, variables: VariableRecords, reports: ReportParts, clock: Clock) -> None:
        self._variables = variables
        self._reports = reports
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP201, NOTIFY_REPORT, self._notify_report)

    def _notify_report(self, session: Session, req: v201.NotifyReportRequest) -> Any:
        now = self._clock.now()
        if req.report_data:
            # Queued before the part, so a waiter woken by the part's commit reads these too.
            self._variables.record(session.charger_id, from_report(req.report_data), now, full=True)
        part = part_of(session.charger_id, NOTIFY_REPORT, req, now)

        async def reply() -> dict[str, Any]:
            await self._reports.add(part)
            return {}

        return reply()
