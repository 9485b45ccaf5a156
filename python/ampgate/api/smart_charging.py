"""Smart-charging reports of a charger: the limits other sources set (`charging-limits`), what it reported
(`charging-reports`: EV charging needs and schedules with their transaction, limits set and cleared, composite
schedules), and the charging profiles it holds (`charging-profiles`, refreshed with GetChargingProfiles)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import ChargerReads, SmartChargingService
from ampgate.api.paging import (
    CHARGER_ERRORS,
    DEFAULT_LIMIT,
    REFRESH_ERRORS,
    Cursor,
    Limit,
    int_cursor,
    require_charger,
)
from ampgate.smartcharging import ChargingLimitRow

ReportKind = Literal[
    "ev_charging_needs",
    "ev_charging_schedule",
    "composite_schedule",
    "charging_limit.set",
    "charging_limit.cleared",
]


class ChargingLimitList(msgspec.Struct, kw_only=True):
    items: list[ChargingLimitRow]


class ChargingReportRead(msgspec.Struct, kw_only=True):
    """One report as the charger sent it (`payload`, camelCase); `transaction_id` the node's transaction on that
    EVSE when there was one."""

    id: int
    kind: str
    evse_id: int | None
    transaction_id: int | None
    received_at: datetime
    payload: dict[str, Any]


class ChargingReportPage(msgspec.Struct, kw_only=True):
    items: list[ChargingReportRead]
    next_cursor: str | None


class ChargingProfileRead(msgspec.Struct, kw_only=True):
    evse_id: int
    charging_limit_source: str
    charging_profile: dict[str, Any]  # ChargingProfileType as the charger reported it


class ChargingProfileList(msgspec.Struct, kw_only=True):
    """The profiles of the charger's latest complete report (`reported_at` null: none yet)."""

    reported_at: datetime | None
    items: list[ChargingProfileRead]


class ProfileRefresh(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """GetChargingProfiles: `criterion` is the spec's ChargingProfileCriterionType (camelCase:
    chargingProfilePurpose, stackLevel, chargingProfileId, chargingLimitSource); empty asks for all."""

    evse_id: Annotated[int, msgspec.Meta(ge=0)] | None = None
    criterion: dict[str, Any] = {}


class ProfileRefreshResult(msgspec.Struct, kw_only=True):
    profiles: int


ChargerId = Annotated[str, Parameter(description="The charge point id")]


class SmartChargingController(Controller):
    path = "/api/v1/chargers/{charger_id:str}"
    tags = ("smart charging",)

    @get(
        "/charging-limits",
        operation_id="list_charging_limits",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="Limits other sources set on the charger (role: viewer)",
    )
    async def list_charging_limits(
        self,
        smart_charging: NamedDependency[SmartChargingService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
    ) -> ChargingLimitList:
        """The limits in force (NotifyChargingLimit, until ClearedChargingLimit). Role: viewer."""
        require_charger(chargers, charger_id)
        return ChargingLimitList(items=smart_charging.limits(charger_id))

    @get(
        "/charging-reports",
        operation_id="list_charging_reports",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="What the charger reported about limits and schedules (role: viewer)",
    )
    async def list_charging_reports(
        self,
        smart_charging: NamedDependency[SmartChargingService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
        kind: Annotated[ReportKind | None, Parameter(description="Only this kind")] = None,
        transaction_id: Annotated[int | None, Parameter(description="Only those of this transaction")] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ChargingReportPage:
        """Newest first: EV charging needs and schedules (with the transaction), limits set and cleared, composite
        schedules. Role: viewer. Raises 404 (field id), 422 naming kind, limit or cursor."""
        require_charger(chargers, charger_id)
        rows = smart_charging.notes(
            charger_id, limit + 1, kind=kind, transaction_id=transaction_id, before=int_cursor(cursor)
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return ChargingReportPage(
            items=[
                ChargingReportRead(
                    id=r.id,
                    kind=r.kind,
                    evse_id=r.evse_id,
                    transaction_id=r.transaction_id,
                    received_at=r.received_at,
                    payload=r.payload,
                )
                for r in rows
            ],
            next_cursor=str(rows[-1].id) if more else None,
        )

    @get(
        "/charging-profiles",
        operation_id="list_charging_profiles",
        guards=[requires_viewer],
        responses=CHARGER_ERRORS,
        summary="The charging profiles the charger last reported (role: viewer)",
    )
    async def list_charging_profiles(
        self,
        smart_charging: NamedDependency[SmartChargingService],
        chargers: NamedDependency[ChargerReads],
        charger_id: ChargerId,
    ) -> ChargingProfileList:
        """The profiles of its latest complete ReportChargingProfiles report. Role: viewer."""
        require_charger(chargers, charger_id)
        at, items = smart_charging.profiles(charger_id)
        return ChargingProfileList(reported_at=at, items=[ChargingProfileRead(**i) for i in items])

    @post(
        "/charging-profiles/refresh",
        operation_id="refresh_charging_profiles",
        guards=[requires_operator],
        status_code=200,
        responses=REFRESH_ERRORS,
        summary="Ask a 2.0.1 charger for its charging profiles and wait for the report (role: operator)",
    )
    async def refresh_charging_profiles(
        self,
        smart_charging: NamedDependency[SmartChargingService],
        charger_id: ChargerId,
        data: JSONBody[ProfileRefresh],
    ) -> ProfileRefreshResult:
        """GetChargingProfiles with a new request id; answered once every ReportChargingProfiles part is in.
        Role: operator. Raises 404, 409, 422 (a 1.6 charger: field charger_id; a bad criterion), 502, 504."""
        return ProfileRefreshResult(
            profiles=await smart_charging.refresh_profiles(charger_id, data.criterion, data.evse_id)
        )
