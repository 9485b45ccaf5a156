"""`SmartCharging`: the charging profiles a charger reports (GetChargingProfiles, answered by
ReportChargingProfiles parts), composite schedules learned from GetCompositeSchedule answers, and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

from ampgate.clock import Clock
from ampgate.errors import ChargerTimeoutError, ConflictError, ValidationError
from ampgate.ocpp.commander import Commands
from ampgate.reports import Asker, ReportRow
from ampgate.smartcharging.handlers import REPORT_CHARGING_PROFILES
from ampgate.smartcharging.repository import COMPOSITE, ChargingLimitRow, ChargingNoteRow, Note

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class ReportReads(Protocol):
    def get(self, charger_id: str, kind: str, request_id: int, /) -> tuple[ReportRow, list[bytes]] | None: ...
    def page(
        self, charger_id: str, kind: str, limit: int, before: int | None = None, /
    ) -> list[ReportRow]: ...


class NoteStore(Protocol):
    async def add(self, note: Note, limit: tuple[str, bool | None, bytes | None] | None = None, /) -> int: ...
    def limits(self, charger_id: str, /) -> list[ChargingLimitRow]: ...
    def notes(
        self,
        charger_id: str,
        limit: int,
        /,
        *,
        kind: str | None = None,
        transaction_id: int | None = None,
        before: int | None = None,
    ) -> list[ChargingNoteRow]: ...


class SmartCharging:
    def __init__(
        self,
        commander: Commands,
        notes: NoteStore,
        reports: Asker,
        report_reads: ReportReads,
        clock: Clock,
        *,
        report_timeout: float,
    ) -> None:
        self._commander = commander
        self._notes = notes
        self._reports = reports
        self._report_reads = report_reads
        self._clock = clock
        self.report_timeout = report_timeout

    # -- reads --------------------------------------------------------------------------------------------------

    def limits(self, charger_id: str) -> list[ChargingLimitRow]:
        return self._notes.limits(charger_id)

    def notes(
        self, charger_id: str, limit: int, *, kind: str | None, transaction_id: int | None, before: int | None
    ) -> list[ChargingNoteRow]:
        return self._notes.notes(charger_id, limit, kind=kind, transaction_id=transaction_id, before=before)

    def profiles(self, charger_id: str) -> tuple[datetime | None, list[dict[str, Any]]]:
        """The charging profiles of the charger's latest complete ReportChargingProfiles report: (when it
        completed, [{"evse_id", "charging_limit_source", "charging_profile"}]); (None, []) when none."""
        for row in self._report_reads.page(charger_id, REPORT_CHARGING_PROFILES, 20):
            if row.completed_at is None:
                continue
            found = self._report_reads.get(charger_id, REPORT_CHARGING_PROFILES, row.request_id)
            if found is None:
                continue
            out = []
            for raw in found[1]:
                part = _decode(raw)
                for profile in part["chargingProfile"]:
                    out.append(
                        {
                            "evse_id": part["evseId"],
                            "charging_limit_source": part["chargingLimitSource"],
                            "charging_profile": profile,
                        }
                    )
            return row.completed_at, out
        return None, []

    # -- requests -----------------------------------------------------------------------------------------------

    async def refresh_profiles(self, charger_id: str, criterion: dict[str, Any], evse_id: int | None) -> int:
        """Ask a 2.0.1 charger for its charging profiles matching `criterion` (the spec's
        ChargingProfileCriterionType, camelCase) and wait until its report is complete; returns how many
        profiles it reported (0 when it answered NoProfiles). Raises the Commander's errors, ValidationError
        for a 1.6 charger (which has no GetChargingProfiles), ChargerTimeoutError."""
        protocol = self._commander.ready(charger_id, "GetChargingProfiles")
        if protocol != "ocpp2.0.1":
            raise ValidationError(
                "a 1.6 charger has no GetChargingProfiles: ask it for its composite schedule",
                field="charger_id",
            )
        payload: dict[str, Any] = {"chargingProfile": criterion}
        if evse_id is not None:
            payload["evseId"] = evse_id
        request_id, status, complete = await self._reports.ask(
            self._commander,
            charger_id,
            "GetChargingProfiles",
            payload,
            REPORT_CHARGING_PROFILES,
            self.report_timeout,
        )
        if status == "NoProfiles":
            return 0
        if status != "Accepted":
            raise ConflictError(f"charger answered GetChargingProfiles with {status}", code="report_refused")
        if not complete:
            raise ChargerTimeoutError(
                f"{charger_id} did not complete its charging-profile report within {self.report_timeout:g} s"
            )
        found = self._report_reads.get(charger_id, REPORT_CHARGING_PROFILES, request_id)
        return 0 if found is None else sum(len(_decode(p)["chargingProfile"]) for p in found[1])

    async def learn_composite(self, charger_id: str, payload: Any, reply: Any) -> None:
        """A GetCompositeSchedule answer (either version), kept when the charger gave a schedule."""
        if not isinstance(reply, dict) or reply.get("status") != "Accepted":
            return
        evse = (reply.get("schedule") or {}).get("evseId")  # 2.0.1
        if evse is None:
            evse = reply.get("connectorId", payload.get("connectorId") if isinstance(payload, dict) else None)
        await self._notes.add(
            Note(
                charger_id=charger_id,
                kind=COMPOSITE,
                evse_id=evse,
                transaction_id=None,
                received_at=self._clock.now(),
                payload=_encode({"request": payload, "reply": reply}),
            )
        )
