"""Firmware progress, both versions: 1.6 FirmwareStatusNotification (status only), 1.6
SignedFirmwareStatusNotification (security extension: status and the update's requestId) and 2.0.1
FirmwareStatusNotification (status, requestId when an update is under way [L01]). The charger's last status is
recorded as sent, with its request id and the node's receive time (the notifications carry no timestamp), and
shown by GET /api/v1/chargers. Written fire-and-forget like connector status: it is not a transaction message,
and a charger repeats it when asked (TriggerMessage FirmwareStatusNotification). The version a charger runs is
not taken from here: every BootNotification records it, so a charger that installed and rebooted shows the new
one once it boots again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ampgate.ocpp import v16, v201
from ampgate.ocpp.rpc import OCPP16, OCPP201

if TYPE_CHECKING:
    from ampgate.node import Node
    from ampgate.ocpp.router import OcppRouter, Session


class FirmwareHandlers:
    """FirmwareStatusNotification (both versions) and SignedFirmwareStatusNotification (1.6)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "FirmwareStatusNotification", self._status16)
        router.register(OCPP16, "SignedFirmwareStatusNotification", self._signed16)
        router.register(OCPP201, "FirmwareStatusNotification", self._status201)

    def _record(self, session: Session, status: str, request_id: int | None) -> dict[str, Any]:
        self._node.store.record_firmware_status(
            session.charger_id, status=status, request_id=request_id, at=self._node.clock.now()
        )
        return {}

    def _status16(self, session: Session, req: v16.FirmwareStatusNotificationRequest) -> dict[str, Any]:
        return self._record(session, req.status, None)

    def _signed16(self, session: Session, req: v16.SignedFirmwareStatusNotificationRequest) -> dict[str, Any]:
        return self._record(session, req.status, req.request_id)

    def _status201(self, session: Session, req: v201.FirmwareStatusNotificationRequest) -> dict[str, Any]:
        return self._record(session, req.status, req.request_id)
