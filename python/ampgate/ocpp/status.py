"""Connector status, both versions: 1.6 StatusNotification (connectorId, status, errorCode), 2.0.1
StatusNotification (evseId, connectorId, connectorStatus) and 2.0.1 NotifyEvent reports of a Connector's
AvailabilityState. Written fire-and-forget: status is not a transaction message, and the charger reports it
again after an outage [B04]. Shown by GET /api/v1/chargers/{id}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ampgate.ocpp import v16, v201
from ampgate.ocpp.rpc import OCPP16, OCPP201

if TYPE_CHECKING:
    from ampgate.node import Node
    from ampgate.ocpp.router import OcppRouter, Session

# 2.0.1 device model: the component and variable that carry a connector's status in NotifyEvent (part 2,
# appendix: Connector.AvailabilityState, values as ConnectorStatusEnumType).
CONNECTOR_COMPONENT = "Connector"
AVAILABILITY_STATE = "AvailabilityState"
# 1.6 errorCode meaning "no error": stored as no error code.
NO_ERROR = "NoError"


class StatusHandlers:
    """StatusNotification (both versions) and NotifyEvent (2.0.1, AvailabilityState only)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "StatusNotification", self._status16)
        router.register(OCPP201, "StatusNotification", self._status201)
        router.register(OCPP201, "NotifyEvent", self._notify_event201)

    def _status16(self, session: Session, req: v16.StatusNotificationRequest) -> dict[str, Any]:
        self._node.store.record_status(
            session.charger_id,
            evse_id=None,
            connector_id=req.connector_id,
            protocol=OCPP16,
            status=req.status,
            error_code=None if req.error_code == NO_ERROR else req.error_code,
            at=req.timestamp or self._node.clock.now(),
        )
        return {}

    def _status201(self, session: Session, req: v201.StatusNotificationRequest) -> dict[str, Any]:
        self._node.store.record_status(
            session.charger_id,
            evse_id=req.evse_id,
            connector_id=req.connector_id,
            protocol=OCPP201,
            status=req.connector_status,
            error_code=None,
            at=req.timestamp,
        )
        return {}

    def _notify_event201(self, session: Session, req: v201.NotifyEventRequest) -> dict[str, Any]:
        for ev in req.event_data:
            evse = ev.component.evse
            if (
                ev.component.name != CONNECTOR_COMPONENT
                or ev.variable.name != AVAILABILITY_STATE
                or evse is None
                or evse.connector_id is None
            ):
                continue
            self._node.store.record_status(
                session.charger_id,
                evse_id=evse.id,
                connector_id=evse.connector_id,
                protocol=OCPP201,
                status=ev.actual_value,
                error_code=ev.tech_code,
                at=ev.timestamp,
            )
        return {}
