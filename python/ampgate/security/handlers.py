"""SecurityEventNotification, 2.0.1 and the 1.6 security extension: stored (the reply waits for the commit),
then published as `security.event`; a critical one is logged at WARNING too."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import SecurityAlert, SecurityEventReported
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.security.catalogue import is_critical
from ampgate.security.repository import SecurityEventReport

log = logging.getLogger(__name__)


class SecurityEventRecords(Protocol):
    async def record(self, report: SecurityEventReport, /) -> tuple[int, bool]: ...


class SecurityEventHandlers:
    def __init__(self, records: SecurityEventRecords, bus: Publisher, clock: Clock) -> None:
        self._records = records
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "SecurityEventNotification", self._notification)
        router.register(OCPP201, "SecurityEventNotification", self._notification)

    def _notification(self, session: Session, req: Any) -> Any:
        report = SecurityEventReport(
            charger_id=session.charger_id,
            type=req.type,
            occurred_at=req.timestamp,
            tech_info=req.tech_info,
            critical=is_critical(req.type),
            received_at=self._clock.now(),
        )

        async def reply() -> dict[str, Any]:
            event_id, created = await self._records.record(report)
            if created:
                if report.critical:
                    log.warning(
                        "%s: critical security event %s (%s)",
                        report.charger_id,
                        report.type,
                        report.tech_info,
                    )
                event = SecurityEventReported(
                    at=report.received_at,
                    charger_id=report.charger_id,
                    id=event_id,
                    event_type=report.type,
                    occurred_at=report.occurred_at,
                    tech_info=report.tech_info,
                    critical=report.critical,
                )
                self._bus.publish(event)
                if report.critical:
                    self._bus.publish(
                        SecurityAlert(
                            at=event.at,
                            charger_id=event.charger_id,
                            id=event_id,
                            event_type=report.type,
                            occurred_at=report.occurred_at,
                            tech_info=report.tech_info,
                        )
                    )
            return {}

        return reply()
