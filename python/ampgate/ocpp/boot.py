"""BootNotification and Heartbeat, both versions. The boot is recorded on the charger (fire-and-forget: the reply
never waits for the disk to record what it reported), answered as the boot policy decides (and, for a boot the
policy accepts during a boot storm, as boot spreading decides: `ampgate.ocpp.boot_spread`), and published as
`charger.booted`. One write is waited for: a charger the policy accepts for the first time is told Accepted
only once its acceptance is committed (durably), since a charger told Accepted need not boot again [B01] and a
node that forgot it would answer SecurityError to everything it sends.

A charger id the node did not know when it connected is recorded by its first boot (not by its connection):
`first_boot` is told first, so the gateway knows it from then on (`ampgate.connectivity.KnownChargers`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import ChargerBooted
from ampgate.ocpp import v16, v201
from ampgate.ocpp.boot_policy import ACCEPTED, NEW, PENDING, BootDecision
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.ocpp.router import BatchTime, OcppRouter, Session
from ampgate.store.chargers import BootReport


class BootRecords(Protocol):
    """Where boots are recorded (the charger repository)."""

    def record_boot(self, boot: BootReport, /) -> None: ...


class BootDecider(Protocol):
    def decide(self, charger_id: str, /) -> BootDecision: ...
    def acceptance_pending(self, charger_id: str, /) -> bool: ...
    async def acceptance_committed(self, charger_id: str, /) -> None: ...


class BootSpreader(Protocol):
    """Boot spreading (`ampgate.ocpp.boot_spread.BootSpread`): None to accept a boot the policy accepts, else the
    interval to answer Pending with."""

    def admit(self, charger_id: str, conn_id: int, /) -> int | None: ...


class BootHandlers:
    """BootNotification and Heartbeat for both versions. Without `spread`, every boot the policy accepts is
    Accepted."""

    def __init__(
        self,
        policy: BootDecider,
        records: BootRecords,
        bus: Publisher,
        clock: Clock,
        time: BatchTime,
        spread: BootSpreader | None = None,
        first_boot: Callable[[str], None] | None = None,
    ) -> None:
        self._policy = policy
        self._first_boot = first_boot
        self._spread = spread
        self._records = records
        self._bus = bus
        self._clock = clock
        self._time = time

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP16, "BootNotification", self._boot16)
        router.register(OCPP201, "BootNotification", self._boot201)
        router.register(OCPP16, "Heartbeat", self._heartbeat)
        router.register(OCPP201, "Heartbeat", self._heartbeat)

    def _heartbeat(self, session: Session, req: Any) -> dict[str, Any]:
        session.presence.last_heartbeat_at = self._time.now
        return {"currentTime": self._time.iso}

    def _boot(
        self,
        session: Session,
        vendor: str | None,
        model: str | None,
        serial: str | None,
        firmware: str | None,
    ) -> dict[str, Any] | Coroutine[Any, Any, dict[str, Any]]:
        at = self._clock.now()
        cid = session.charger_id
        if not session.presence.recorded:
            # Connected as an unknown id: this boot records it.
            if self._first_boot is not None:
                self._first_boot(cid)
            session.presence.recorded = True
        # The boot record is queued before the decision, which may mark the charger accepted: its row exists.
        self._records.record_boot(
            BootReport(
                charger_id=cid,
                vendor=vendor,
                model=model,
                serial=serial,
                firmware=firmware,
                protocol=session.protocol,
                at=at,
            )
        )
        decision = self._policy.decide(cid)
        spread = False
        if decision.status == ACCEPTED and self._spread is not None:
            interval = self._spread.admit(cid, session.conn_id)
            if interval is not None:
                # Accepted by the policy (and remembered so), Pending for now to spread the storm [B02].
                decision, spread = BootDecision(PENDING, interval), True
        session.boot_state = decision.status
        self._bus.publish(
            ChargerBooted(
                at=at,
                charger_id=cid,
                protocol=session.protocol,
                vendor=vendor,
                model=model,
                serial=serial,
                firmware_version=firmware,
                boot_status=decision.status,
                spread=spread,
            )
        )
        reply = {"status": decision.status, "currentTime": self._time.iso, "interval": decision.interval}
        if decision.status == ACCEPTED and self._policy.acceptance_pending(cid):
            return self._after_acceptance(session, reply)
        return reply

    async def _after_acceptance(self, session: Session, reply: dict[str, Any]) -> dict[str, Any]:
        try:
            await self._policy.acceptance_committed(session.charger_id)
        except Exception:
            # Not on disk: the charger is not told Accepted (the router answers InternalError) and boots again.
            session.boot_state = NEW
            raise
        return reply

    def _boot16(self, session: Session, req: v16.BootNotificationRequest) -> Any:
        serial = req.charge_point_serial_number or req.charge_box_serial_number
        return self._boot(
            session, req.charge_point_vendor, req.charge_point_model, serial, req.firmware_version
        )

    def _boot201(self, session: Session, req: v201.BootNotificationRequest) -> Any:
        cs = req.charging_station
        return self._boot(session, cs.vendor_name, cs.model, cs.serial_number, cs.firmware_version)
