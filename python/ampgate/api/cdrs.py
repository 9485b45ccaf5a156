"""/api/v1/cdrs: charge detail records, one per session (created when the EVSE is free again), never changed;
a credit (POST …/{id}/credit) corrects one. The list answers CSV for finance with `Accept: text/csv`.
/api/v1/sites/{id}/usage: sessions, energy, revenue and occupancy per bucket.

Roles: reading CDRs and usage is for viewers; a credit moves money and is an operator's (send an
Idempotency-Key: a retry returns the first credit).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.costs import CostRead, cost_read
from ampgate.api.deps import CdrService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, instant, int_cursor
from ampgate.api.responses import NumberResponse
from ampgate.api.schemas import ErrorBody
from ampgate.billing import Cdr, csv_text
from ampgate.billing.cdrs import DEFAULT_STEP_S
from ampgate.errors import NotFoundError
from ampgate.pricing import ChargingPeriod, Tariff

CDRS_PATH = "/api/v1/cdrs"
CSV = "text/csv"
# The CSV list's cursor for the next page (a CSV body has no room for it).
NEXT_CURSOR_HEADER = "X-Next-Cursor"


class SignedValueRead(msgspec.Struct, kw_only=True):
    """A meter value as the charger's meter signed it (2.0.1 signedMeterValue, or 1.6 SignedData)."""

    at: datetime
    measurand: str
    phase: str | None
    context: str | None
    format: str
    signed_data: str
    signing_method: str | None
    encoding_method: str | None
    public_key: str | None


class CdrRead(msgspec.Struct, kw_only=True):
    """A charge detail record. `total_cost` incl VAT (null: no tariff applied; negative for a credit),
    `cost` the breakdown; `started_at` / `stopped_at` the transaction's, `ended_at` when the EVSE was free
    again (`end_reason`: evse_free, charger_offline, max_parking)."""

    id: int
    transaction_id: int
    credit_of: int | None
    charger_id: str
    site_id: str | None
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    group_id: str | None
    authorization_reference: str | None
    started_at: datetime
    stopped_at: datetime
    ended_at: datetime
    end_reason: str
    energy_wh: float
    charging_time_s: float
    parking_time_s: float
    parking_after_s: float
    currency: str | None
    tariff_id: str | None
    total_cost: Decimal | None
    cost: CostRead | None
    created_at: datetime


class CdrDetail(CdrRead, kw_only=True):
    """A CDR with the tariff as it was at the session's start, its charging periods (OCPI ChargingPeriods, with
    what priced each), the charger's signed meter values, and the credit that corrects it, if any."""

    credited_by: int | None
    tariff: Tariff | None
    charging_periods: tuple[ChargingPeriod, ...]
    signed_meter_values: list[SignedValueRead]


class CdrPage(msgspec.Struct, kw_only=True):
    items: list[CdrRead]
    next_cursor: str | None


class UsagePointRead(msgspec.Struct, kw_only=True):
    at: datetime
    sessions: int
    energy_kwh: float
    revenue: Decimal
    currency: str | None
    occupancy_pct: float | None


class UsageRead(msgspec.Struct, kw_only=True):
    """A site's usage per bucket: sessions started in it, their energy, revenue incl VAT net of credits (in
    `currency`, the one most of the window's priced CDRs use), occupancy (% of in-service connector time in
    use; null when unknown)."""

    site_id: str
    step_s: int
    currency: str | None
    points: list[UsagePointRead]


def _fields(c: Cdr) -> dict[str, Any]:
    return {
        "id": c.id,
        "transaction_id": c.transaction_id,
        "credit_of": c.credit_of,
        "charger_id": c.charger_id,
        "site_id": c.site_id,
        "evse_id": c.evse_id,
        "connector_id": c.connector_id,
        "id_token": c.id_token,
        "group_id": c.group_id,
        "authorization_reference": c.authorization_reference,
        "started_at": c.started_at,
        "stopped_at": c.stopped_at,
        "ended_at": c.ended_at,
        "end_reason": c.end_reason,
        "energy_wh": c.energy_wh,
        "charging_time_s": c.charging_time_s,
        "parking_time_s": c.parking_time_s,
        "parking_after_s": c.parking_after_s,
        "currency": c.currency,
        "tariff_id": c.tariff_id,
        "total_cost": c.total_cost,
        "cost": cost_read(c.cost),
        "created_at": c.created_at,
    }


def cdr_read(c: Cdr) -> CdrRead:
    return CdrRead(**_fields(c))


def cdr_detail(c: Cdr, credited_by: int | None) -> CdrDetail:
    return CdrDetail(
        **_fields(c),
        credited_by=credited_by,
        tariff=c.tariff,
        charging_periods=() if c.cost is None else c.cost.charging_periods,
        signed_meter_values=[
            SignedValueRead(
                at=datetime.fromisoformat(v.at),
                measurand=v.measurand,
                phase=v.phase or None,
                context=v.context,
                format=v.format,
                signed_data=v.signed_data,
                signing_method=v.signing_method,
                encoding_method=v.encoding_method,
                public_key=v.public_key,
            )
            for v in c.signed_meter_values
        ],
    )


def wants_csv(request: Request[Any, Any, Any]) -> bool:
    """Whether the client asked for CSV (`Accept: text/csv`, before any JSON type it also accepts)."""
    accept = request.headers.get("accept", "").lower()
    if CSV not in accept:
        return False
    json_at = accept.find("json")
    return json_at < 0 or accept.find(CSV) < json_at


CdrId = Annotated[int, Parameter(description="The CDR's id")]
_CDR_404 = {404: ResponseSpec(ErrorBody, description="No such CDR (`field`: id)")}


class CdrController(Controller):
    path = CDRS_PATH
    tags = ("cdrs",)

    @get(
        "/",
        operation_id="list_cdrs",
        guards=[requires_viewer],
        responses={
            **COMMON_ERRORS,
            200: ResponseSpec(
                CdrPage,
                description="The page; with `Accept: text/csv` the same page as CSV (one row per CDR, columns in a "
                f"fixed order, decimals as plain numbers) and the next cursor in `{NEXT_CURSOR_HEADER}`",
            ),
        },
        summary="List CDRs (JSON or CSV)",
        description="Role: viewer. Newest first; since / until filter on when the CDR was created (a credit "
        "appears when it was issued); charger_id, site_id. `Accept: text/csv` for finance: CSV of the page, next "
        f"cursor in the {NEXT_CURSOR_HEADER} header (empty on the last page).",
    )
    async def list_cdrs(
        self,
        request: Request[Any, Any, Any],
        cdrs: NamedDependency[CdrService],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        since: Annotated[str | None, Parameter(description="Created at or after (ISO 8601)")] = None,
        until: Annotated[str | None, Parameter(description="Created before (ISO 8601)")] = None,
        charger_id: Annotated[str | None, Parameter(description="Of this charger")] = None,
        site_id: Annotated[str | None, Parameter(description="At this site")] = None,
    ) -> Response[CdrPage]:
        """Role: viewer. 422 naming limit, cursor, since or until."""
        rows = cdrs.page(
            limit + 1,
            before=int_cursor(cursor),
            since=instant(since, "since"),
            until=instant(until, "until"),
            charger_id=charger_id,
            site_id=site_id,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = str(rows[-1].id) if more else None
        if wants_csv(request):
            csv_response: Response[Any] = Response(
                csv_text(rows),
                media_type=f"{CSV}; charset=utf-8",
                headers={NEXT_CURSOR_HEADER: next_cursor or ""},
            )
            return csv_response
        return NumberResponse(CdrPage(items=[cdr_read(c) for c in rows], next_cursor=next_cursor))

    @get(
        "/{cdr_id:int}",
        operation_id="get_cdr",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_CDR_404},
        summary="One CDR",
        description="Role: viewer. With the tariff as it was, the charging periods, the signed meter values.",
    )
    async def get_cdr(self, cdrs: NamedDependency[CdrService], cdr_id: CdrId) -> CdrDetail:
        """Role: viewer. 404 (field id)."""
        c = cdrs.get(cdr_id)
        if c is None:
            raise NotFoundError(f"CDR {cdr_id} does not exist", field="id")
        credit = cdrs.credit_of(cdr_id)
        return cdr_detail(c, None if credit is None else credit.id)

    @post(
        "/{cdr_id:int}/credit",
        operation_id="credit_cdr",
        guards=[requires_operator],
        status_code=201,
        responses={
            **COMMON_ERRORS,
            **_CDR_404,
            409: ResponseSpec(ErrorBody, description="already_credited, or cdr_is_credit"),
        },
        summary="Credit a CDR",
        description="Role: operator. A credit CDR for the same session, every amount negated, `credit_of` the "
        "original. A CDR is credited at most once (409 already_credited); a credit is not credited (409 "
        "cdr_is_credit). Send an Idempotency-Key: a retry returns the first answer. 201 with the credit.",
    )
    async def credit_cdr(self, cdrs: NamedDependency[CdrService], cdr_id: CdrId) -> NumberResponse[CdrDetail]:
        """Role: operator. 201, 404 (field id), 409."""
        credit = await cdrs.credit(cdr_id)
        return NumberResponse(
            cdr_detail(credit, None), status_code=201, headers={"Location": f"{CDRS_PATH}/{credit.id}"}
        )


class SiteUsageController(Controller):
    path = "/api/v1/sites/{site_id:str}/usage"
    tags = ("cdrs",)

    @get(
        "/",
        operation_id="get_site_usage",
        guards=[requires_viewer],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such site (`field`: site_id)"),
        },
        summary="A site's usage report",
        description="Role: viewer. Per bucket of `step` seconds (whole hours, up to 31 days; buckets start on "
        "multiples of it since the epoch, UTC), every bucket from since to until: sessions started (from the "
        "CDRs: sessions that ended), their energy, revenue incl VAT net of credits, occupancy %. Defaults: until "
        "now, since 30 days earlier, step a day.",
    )
    async def get_site_usage(
        self,
        cdrs: NamedDependency[CdrService],
        site_id: Annotated[str, Parameter(description="The site's id")],
        since: Annotated[str | None, Parameter(description="ISO 8601; default: 30 days before until")] = None,
        until: Annotated[str | None, Parameter(description="ISO 8601, exclusive; default: now")] = None,
        step: Annotated[int, Parameter(description="Bucket in seconds: whole hours, at most 31 days")] = (
            DEFAULT_STEP_S
        ),
    ) -> UsageRead:
        """Role: viewer. 404 (field site_id); 422 naming since, until or step."""
        report = cdrs.usage(site_id, instant(since, "since"), instant(until, "until"), step)
        return UsageRead(
            site_id=report.site_id,
            step_s=report.step_s,
            currency=report.currency,
            points=[
                UsagePointRead(
                    at=p.at,
                    sessions=p.sessions,
                    energy_kwh=p.energy_kwh,
                    revenue=p.revenue,
                    currency=p.currency,
                    occupancy_pct=p.occupancy_pct,
                )
                for p in report.points
            ],
        )
