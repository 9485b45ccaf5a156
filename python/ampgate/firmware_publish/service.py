"""`FirmwarePublications`: asks 2.0.1 local controllers to publish a firmware image to the chargers behind them
(PublishFirmware) and to stop (UnpublishFirmware), through the Commander, each publication a row of
`firmware_publications` that the answers and notifications complete."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.errors import AmpgateError, ChargerTimeoutError, ConflictError, NotFoundError
from ampgate.events import FirmwarePublicationStatus
from ampgate.firmware_publish import state
from ampgate.firmware_publish.repository import PublicationRow
from ampgate.firmware_publish.state import PublishSpec
from ampgate.ocpp.commander import reply_status
from ampgate.ocpp.versions import require_201


class Commands(Protocol):
    """The Commander (`ampgate.ocpp.commander.Commander`)."""

    def ready(self, charger_id: str, action: str, /) -> str: ...
    async def call(self, charger_id: str, action: str, payload: Any, /) -> Any: ...


class PublicationRecords(Protocol):
    """`ampgate.firmware_publish.PublicationRepository`."""

    async def create(self, charger_id: str, spec: PublishSpec, at: datetime, /) -> PublicationRow: ...
    async def record_status(
        self,
        pub_id: int,
        status: str,
        at: datetime,
        error_code: str | None = None,
        error_message: str | None = None,
        /,
    ) -> PublicationRow: ...
    async def record_unpublished(
        self, charger_id: str, checksum: str, status: str, at: datetime, /
    ) -> list[PublicationRow]: ...
    def get(self, charger_id: str, pub_id: int, /) -> PublicationRow | None: ...
    def page(self, charger_id: str, limit: int, before: int | None = None, /) -> list[PublicationRow]: ...


class FirmwarePublications:
    def __init__(
        self, records: PublicationRecords, commander: Commands, bus: Publisher, clock: Clock
    ) -> None:
        self._records = records
        self._commander = commander
        self._bus = bus
        self._clock = clock

    def get(self, charger_id: str, request_id: int) -> PublicationRow | None:
        """The charger's publication `request_id`, or None."""
        return self._records.get(charger_id, request_id)

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[PublicationRow]:
        """Up to `limit` of the charger's publications, newest first, with a request id below `before`."""
        return self._records.page(charger_id, limit, before)

    async def publish(self, charger_id: str, spec: PublishSpec) -> PublicationRow:
        """Send PublishFirmware (the requestId is the new row's id) and return the publication once the
        controller answered (Accepted or Rejected). Raises ValidationError naming the field (nothing stored),
        ConflictError `unsupported_protocol`, the Commander's errors (the row then says Failed / TimedOut)."""
        state.check(spec)
        require_201(
            self._commander.ready(charger_id, state.PUBLISH_FIRMWARE), charger_id, state.PUBLISH_FIRMWARE
        )
        row = await self._records.create(charger_id, spec, self._clock.now())
        self._publish(row)
        try:
            reply = await self._commander.call(
                charger_id, state.PUBLISH_FIRMWARE, state.build_payload(row.id, spec)
            )
        except AmpgateError as e:
            failed = state.TIMED_OUT if isinstance(e, ChargerTimeoutError) else state.FAILED
            self._publish(
                await self._records.record_status(row.id, failed, self._clock.now(), e.code, e.message)
            )
            raise
        row = await self._records.record_status(row.id, str(reply_status(reply)), self._clock.now())
        self._publish(row)
        return row

    async def unpublish(self, charger_id: str, request_id: int) -> PublicationRow:
        """Send UnpublishFirmware with the publication's checksum and return it with the answer on its timeline
        (Unpublished, or NoFirmware: the controller had none; every publication of that checksum on it gets the
        answer). Idempotent: one already unpublished is returned as it is, nothing sent. Raises NotFoundError
        (field request_id), ConflictError `download_ongoing` (the controller is still downloading it; nothing
        changes), ConflictError `unsupported_protocol`, the Commander's errors (nothing changes)."""
        row = self._records.get(charger_id, request_id)
        if row is None:
            raise NotFoundError(
                f"charger {charger_id!r} has no firmware publication {request_id}", field="request_id"
            )
        if row.status in state.UNPUBLISHED_STATUSES:
            return row
        require_201(
            self._commander.ready(charger_id, state.UNPUBLISH_FIRMWARE), charger_id, state.UNPUBLISH_FIRMWARE
        )
        reply = await self._commander.call(charger_id, state.UNPUBLISH_FIRMWARE, {"checksum": row.checksum})
        status = str(reply_status(reply))
        if status not in state.UNPUBLISHED_STATUSES:
            raise ConflictError(
                f"charger {charger_id!r} answered UnpublishFirmware with {status}: it is still downloading the image",
                code="download_ongoing",
            )
        for changed in await self._records.record_unpublished(
            charger_id, row.checksum, status, self._clock.now()
        ):
            self._publish(changed)
        found = self._records.get(charger_id, request_id)
        assert found is not None
        return found

    def _publish(self, row: PublicationRow) -> None:
        self._bus.publish(
            FirmwarePublicationStatus(
                at=self._clock.now(),
                charger_id=row.charger_id,
                publication_id=row.id,
                request_id=row.id,
                status=row.status,
            )
        )
