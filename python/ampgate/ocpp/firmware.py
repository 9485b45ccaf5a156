"""Firmware progress, both versions: 1.6 FirmwareStatusNotification (status only), 1.6
SignedFirmwareStatusNotification (security extension: status and the update's requestId) and 2.0.1
FirmwareStatusNotification (status, requestId when an update is under way [L01]). The charger's last status is
recorded as sent, with its request id and the node's receive time (the notifications carry no timestamp),
shown by GET /api/v1/chargers and published as `firmware.status`. Written fire-and-forget like connector
status: it is not a transaction message, and a charger repeats it when asked (TriggerMessage
FirmwareStatusNotification). The version a charger runs is
not taken from here: every BootNotification records it, so a charger that installed and rebooted shows the new
one once it boots again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import FirmwareStatusReported
from ampgate.ocpp import v16, v201
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import OcppRouter, Session


class FirmwareRecords(Protocol):
    """Where firmware statuses are recorded (the charger repository)."""

    def record_firmware_status(
        self, cp_id: str, /, *, status: str, request_id: int | None, at: datetime
    ) -> None: ...


class FirmwareHandlers:
    """FirmwareStatusNotification (both versions) and SignedFirmwareStatusNotification (1.6)."""

    def __init__(self, records: FirmwareRecords, bus: Publisher, clock: Clock) -> None:
        self._records = records
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "FirmwareStatusNotification", self._status16)
        router.register(OCPP16, "SignedFirmwareStatusNotification", self._signed16)
        router.register(OCPP201, "FirmwareStatusNotification", self._status201)

    def _record(
        self, session: Session, status: str, request_id: int | None, *, signed: bool = False
    ) -> dict[str, Any]:
        at = self._clock.now()
        self._records.record_firmware_status(session.charger_id, status=status, request_id=request_id, at=at)
        self._bus.publish(
            FirmwareStatusReported(
                at=at, charger_id=session.charger_id, status=status, request_id=request_id, signed=signed
            )
        )
        return {}

    def _status16(self, session: Session, req: v16.FirmwareStatusNotificationRequest) -> dict[str, Any]:
        return self._record(session, req.status, None)

    def _signed16(self, session: Session, req: v16.SignedFirmwareStatusNotificationRequest) -> dict[str, Any]:
        return self._record(session, req.status, req.request_id, signed=True)

    def _status201(self, session: Session, req: v201.FirmwareStatusNotificationRequest) -> dict[str, Any]:
        return self._record(session, req.status, req.request_id)
