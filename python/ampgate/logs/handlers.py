"""What chargers report about their uploads: LogStatusNotification (2.0.1 and the 1.6 security extension, with
the request's requestId) and DiagnosticsStatusNotification (1.6 core, with none: it belongs to the charger's
latest open GetDiagnostics). Each is added to its request's timeline, committed, then answered and published as
`log.status`; the wait is one writer group (milliseconds), and these messages come a few times per upload.
Notifications carry no timestamp: the node's receive time is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import LogStatusReported
from ampgate.logs import state
from ampgate.logs.repository import LogRow
from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session


class LogRecords(Protocol):
    """Where notifications are recorded (`ampgate.logs.LogRepository`)."""

    async def record_notification(
        self, charger_id: str, command: str, request_id: int | None, status: str, at: datetime, /
    ) -> LogRow | None: ...


class LogStatusHandlers:
    """LogStatusNotification (1.6 security extension and 2.0.1) and DiagnosticsStatusNotification (1.6)."""

    def __init__(self, records: LogRecords, bus: Publisher, clock: Clock) -> None:
        self._records = records
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "LogStatusNotification", self._log_status)
        router.register(OCPP201, "LogStatusNotification", self._log_status)
        router.register(OCPP16, "DiagnosticsStatusNotification", self._diagnostics_status)

    def _log_status(
        self, session: Session, req: v16.LogStatusNotificationRequest | v201.LogStatusNotificationRequest
    ) -> Any:
        return self._record(session, state.GET_LOG, req.request_id, req.status)

    def _diagnostics_status(self, session: Session, req: v16.DiagnosticsStatusNotificationRequest) -> Any:
        return self._record(session, state.GET_DIAGNOSTICS, None, req.status)

    async def _record(
        self, session: Session, command: str, request_id: int | None, status: str
    ) -> dict[str, Any]:
        at = self._clock.now()
        row = await self._records.record_notification(session.charger_id, command, request_id, status, at)
        self._bus.publish(
            LogStatusReported(
                at=at,
                charger_id=session.charger_id,
                log_id=None if row is None else row.id,
                command=command,
                request_id=request_id if row is None else row.request_id,
                status=status,
            )
        )
        return {}
