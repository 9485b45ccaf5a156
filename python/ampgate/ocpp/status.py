"""Connector status, both versions: 1.6 StatusNotification (connectorId, status, errorCode), 2.0.1
StatusNotification (evseId, connectorId, connectorStatus) and 2.0.1 NotifyEvent reports of a Connector's
AvailabilityState. Written fire-and-forget: status is not a transaction message, and the charger reports it
again after an outage [B04]. Shown by GET /api/v1/chargers/{id}.

A change of a connector's status is published as `connector.status` with the old and the new status. The last
status of each connector is kept in memory for that (about 190 bytes a connector); `old_status` is None for the
first report the node hears after it started. A report older than the last one changes nothing, in memory as on
disk.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import ConnectorStatusChanged
from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.store.connector_status import StatusReport

# 2.0.1 device model: the component and variable that carry a connector's status in NotifyEvent (part 2,
# appendix: Connector.AvailabilityState, values as ConnectorStatusEnumType).
CONNECTOR_COMPONENT = "Connector"
AVAILABILITY_STATE = "AvailabilityState"
# 1.6 errorCode meaning "no error": stored as no error code.
NO_ERROR = "NoError"


class StatusRecords(Protocol):
    """Where connector statuses are recorded (`ampgate.store.ConnectorStatusRepository`)."""

    def record(self, report: StatusReport, /) -> None: ...


class StatusHandlers:
    """StatusNotification (both versions) and NotifyEvent (2.0.1, AvailabilityState only)."""

    def __init__(
        self,
        records: StatusRecords,
        bus: Publisher,
        clock: Clock,
        *,
        events: Callable[[Session, v201.NotifyEventRequest], None] | None = None,
    ) -> None:
        self._records = records
        # Every NotifyEvent also goes here (the monitoring part keeps all events, linked to their monitors).
        self._events = events
        self._bus = bus
        self._clock = clock
        # (charger, evse, connector) -> (status, the charger's time of it in epoch seconds). The status is
        # interned and the time a float, so a connector costs ~190 bytes however many reports it sends.
        self._last: dict[tuple[str, int | None, int], tuple[str, float]] = {}

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "StatusNotification", self._status16)
        router.register(OCPP201, "StatusNotification", self._status201)
        router.register(OCPP201, "NotifyEvent", self._notify_event201)

    def last(self, charger_id: str, evse_id: int | None, connector_id: int) -> str | None:
        """The connector's last status the node heard since it started."""
        seen = self._last.get((charger_id, evse_id, connector_id))
        return None if seen is None else seen[0]

    def _record(
        self,
        session: Session,
        evse_id: int | None,
        connector_id: int,
        status: str,
        error_code: str | None,
        at: datetime,
    ) -> None:
        self._records.record(
            StatusReport(
                charger_id=session.charger_id,
                evse_id=evse_id,
                connector_id=connector_id,
                protocol=session.protocol,
                status=status,
                error_code=error_code,
                at=at,
            )
        )
        key = (session.charger_id, evse_id, connector_id)
        seen = self._last.get(key)
        ts = at.timestamp()
        if seen is not None and ts < seen[1]:
            return  # an older report arriving late: the store keeps the newer one too
        self._last[key] = (sys.intern(status), ts)
        if seen is None or seen[0] != status:
            self._bus.publish(
                ConnectorStatusChanged(
                    at=self._clock.now(),
                    charger_id=session.charger_id,
                    evse_id=evse_id,
                    connector_id=connector_id,
                    old_status=None if seen is None else seen[0],
                    status=status,
                    error_code=error_code,
                    reported_at=at,
                )
            )

    def _status16(self, session: Session, req: v16.StatusNotificationRequest) -> dict[str, Any]:
        error_code = None if req.error_code == NO_ERROR else req.error_code
        self._record(
            session, None, req.connector_id, req.status, error_code, req.timestamp or self._clock.now()
        )
        return {}

    def _status201(self, session: Session, req: v201.StatusNotificationRequest) -> dict[str, Any]:
        self._record(session, req.evse_id, req.connector_id, req.connector_status, None, req.timestamp)
        return {}

    def _notify_event201(self, session: Session, req: v201.NotifyEventRequest) -> dict[str, Any]:
        if self._events is not None:
            self._events(session, req)
        for ev in req.event_data:
            evse = ev.component.evse
            if (
                ev.component.name != CONNECTOR_COMPONENT
                or ev.variable.name != AVAILABILITY_STATE
                or evse is None
                or evse.connector_id is None
            ):
                continue
            self._record(session, evse.id, evse.connector_id, ev.actual_value, ev.tech_code, ev.timestamp)
        return {}
