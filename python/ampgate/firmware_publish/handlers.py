"""PublishFirmwareStatusNotification (2.0.1): a local controller reports on a publication. The status is added
to its publication's timeline (by requestId; committed before the reply), with the URIs it serves the image at
when Published, and published as `firmware_publication.status`. One without a requestId (Idle) or with one the
node did not send is published with no publication id and stored nowhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import FirmwarePublicationStatus
from ampgate.firmware_publish import state
from ampgate.firmware_publish.repository import PublicationRow
from ampgate.ocpp import v201
from ampgate.ocpp.envelope import OCPP201
from ampgate.ocpp.router import OcppRouter, Session


class PublicationRecords(Protocol):
    """`ampgate.firmware_publish.PublicationRepository`."""

    async def record_notification(
        self, charger_id: str, request_id: int, status: str, locations: list[str] | None, at: datetime, /
    ) -> PublicationRow | None: ...


class PublishStatusHandlers:
    def __init__(self, records: PublicationRecords, bus: Publisher, clock: Clock) -> None:
        self._records = records
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP201, state.PUBLISH_FIRMWARE_STATUS_NOTIFICATION, self._notify)

    def _notify(self, session: Session, req: v201.PublishFirmwareStatusNotificationRequest) -> Any:
        return self._record(session.charger_id, req.request_id, req.status, req.location)

    async def _record(
        self, charger_id: str, request_id: int | None, status: str, locations: list[str] | None
    ) -> dict[str, Any]:
        at = self._clock.now()
        row = None
        if state.notification_applies(request_id):
            assert request_id is not None
            row = await self._records.record_notification(charger_id, request_id, status, locations, at)
        self._bus.publish(
            FirmwarePublicationStatus(
                at=at,
                charger_id=charger_id,
                publication_id=None if row is None else row.id,
                request_id=request_id,
                status=status,
                locations=tuple(locations) if locations else None,
            )
        )
        return {}
