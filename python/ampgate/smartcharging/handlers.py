"""The smart-charging notifications of 2.0.1 chargers: each stored before its reply and published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from ampgate.bus import Publisher
from ampgate.clock import Clock
from ampgate.events import (
    ChargingLimitCleared,
    ChargingLimitSet,
    EvChargingNeedsReported,
    EvChargingScheduleReported,
)
from ampgate.ocpp import v201
from ampgate.ocpp.envelope import OCPP201
from ampgate.ocpp.router import OcppRouter, Session
from ampgate.reports import ReportParts, part_of
from ampgate.smartcharging.repository import EV_NEEDS, EV_SCHEDULE, LIMIT_CLEARED, LIMIT_SET, Note
from ampgate.store import TransactionRow

REPORT_CHARGING_PROFILES = "ReportChargingProfiles"
# A charger that load management manages (placed at a site) gets its EV's share as a TxProfile on the next tick:
# Accepted [K15]. Any other sends no schedule for an EV's needs: Rejected, saying so.
NEEDS_ACCEPTED = {"status": "Accepted"}
NEEDS_ANSWER = {
    "status": "Rejected",
    "statusInfo": {
        "reasonCode": "NotEnabled",
        "additionalInfo": "this charger is not placed at a site under load management: charge by your own limits",
    },
}

_encode = msgspec.json.Encoder().encode


class Notes(Protocol):
    async def add(self, note: Note, limit: tuple[str, bool | None, bytes | None] | None = None, /) -> int: ...


class OngoingTransactions(Protocol):
    def ongoing(self, charger_id: str, evse_id: int, /) -> TransactionRow | None: ...


def _energy_wh(needs: v201.ChargingNeedsType) -> float | None:
    if needs.ac_charging_parameters is not None:
        return float(needs.ac_charging_parameters.energy_amount)
    if needs.dc_charging_parameters is not None and needs.dc_charging_parameters.energy_amount is not None:
        return float(needs.dc_charging_parameters.energy_amount)
    return None


class SmartChargingHandlers:
    def __init__(
        self,
        notes: Notes,
        transactions: OngoingTransactions,
        reports: ReportParts,
        bus: Publisher,
        clock: Clock,
        managed: Callable[[str], bool] = lambda charger_id: False,
    ) -> None:
        self._managed = managed
        self._notes = notes
        self._transactions = transactions
        self._reports = reports
        self._bus = bus
        self._clock = clock

    def register(self, router: OcppRouter) -> None:
        router.register(OCPP201, "NotifyChargingLimit", self._limit)
        router.register(OCPP201, "ClearedChargingLimit", self._cleared)
        router.register(OCPP201, "NotifyEVChargingNeeds", self._needs)
        router.register(OCPP201, "NotifyEVChargingSchedule", self._schedule)
        router.register(OCPP201, REPORT_CHARGING_PROFILES, self._profiles)

    def _note(self, session: Session, kind: str, evse_id: int | None, tx: int | None, req: Any) -> Note:
        return Note(
            charger_id=session.charger_id,
            kind=kind,
            evse_id=evse_id,
            transaction_id=tx,
            received_at=self._clock.now(),
            payload=_encode(req),
        )

    def _limit(self, session: Session, req: v201.NotifyChargingLimitRequest) -> Any:
        note = self._note(session, LIMIT_SET, req.evse_id, None, req)
        source = req.charging_limit.charging_limit_source
        critical = req.charging_limit.is_grid_critical
        schedules = None if req.charging_schedule is None else _encode(req.charging_schedule)

        async def reply() -> dict[str, Any]:
            await self._notes.add(note, (source, critical, schedules))
            self._bus.publish(
                ChargingLimitSet(
                    at=note.received_at,
                    charger_id=note.charger_id,
                    evse_id=req.evse_id,
                    source=source,
                    grid_critical=critical,
                    schedules=len(req.charging_schedule or ()),
                )
            )
            return {}

        return reply()

    def _cleared(self, session: Session, req: v201.ClearedChargingLimitRequest) -> Any:
        note = self._note(session, LIMIT_CLEARED, req.evse_id, None, req)

        async def reply() -> dict[str, Any]:
            await self._notes.add(note, (req.charging_limit_source, None, None))
            self._bus.publish(
                ChargingLimitCleared(
                    at=note.received_at,
                    charger_id=note.charger_id,
                    evse_id=req.evse_id,
                    source=req.charging_limit_source,
                )
            )
            return {}

        return reply()

    def _needs(self, session: Session, req: v201.NotifyEVChargingNeedsRequest) -> Any:
        tx = self._transactions.ongoing(session.charger_id, req.evse_id)
        note = self._note(session, EV_NEEDS, req.evse_id, None if tx is None else tx.id, req)
        needs = req.charging_needs

        async def reply() -> dict[str, Any]:
            await self._notes.add(note)
            self._bus.publish(
                EvChargingNeedsReported(
                    at=note.received_at,
                    charger_id=note.charger_id,
                    evse_id=req.evse_id,
                    transaction_id=note.transaction_id,
                    requested_energy_transfer=needs.requested_energy_transfer,
                    departure_time=needs.departure_time,
                    energy_amount_wh=_energy_wh(needs),
                )
            )
            return NEEDS_ACCEPTED if self._managed(note.charger_id) else NEEDS_ANSWER

        return reply()

    def _schedule(self, session: Session, req: v201.NotifyEVChargingScheduleRequest) -> Any:
        tx = self._transactions.ongoing(session.charger_id, req.evse_id)
        note = self._note(session, EV_SCHEDULE, req.evse_id, None if tx is None else tx.id, req)

        async def reply() -> dict[str, Any]:
            await self._notes.add(note)
            self._bus.publish(
                EvChargingScheduleReported(
                    at=note.received_at,
                    charger_id=note.charger_id,
                    evse_id=req.evse_id,
                    transaction_id=note.transaction_id,
                    periods=len(req.charging_schedule.charging_schedule_period),
                )
            )
            return {"status": "Accepted"}

        return reply()

    def _profiles(self, session: Session, req: v201.ReportChargingProfilesRequest) -> Any:
        part = part_of(session.charger_id, REPORT_CHARGING_PROFILES, req, self._clock.now())

        async def reply() -> dict[str, Any]:
            await self._reports.add(part)
            return {}

        return reply()
