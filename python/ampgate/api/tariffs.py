"""/api/v1/tariffs and where they apply: a charger's, a site's, an id-token group's and the default tariff,
and each site's dynamic energy prices (price signals).

A tariff is OCPI 2.2.1's (`ampgate.pricing`: elements of price components with restrictions, currency, min and
max price); POST creates it, PUT replaces it (sessions already running keep the version they started with),
DELETE removes it unless an assignment names it or a session not yet ended is priced by it (409
`tariff_in_use`). Assignments are PUT `{"tariff_id"}` (null removes) on the charger, the site, the id-token group
or the node's settings; a session gets, most specific first, its id token's group's, its charger's, its site's,
or the default tariff, decided when it starts.

Roles: tariffs, their assignment and price signals are changed by operators (day-to-day operations in
shared/API-CONVENTIONS.md), read by viewers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter
from msgspec import Meta

from ampgate.api.auth import requires_operator, requires_viewer
from ampgate.api.deps import PriceSignalService, TariffService
from ampgate.api.paging import COMMON_ERRORS, DEFAULT_LIMIT, Cursor, Limit, decode_cursor, encode_cursor
from ampgate.api.responses import NumberResponse
from ampgate.api.schemas import ErrorBody
from ampgate.billing import Assignment, Scope, SignalWindow, SiteSignals, TariffRow
from ampgate.errors import NotFoundError, ValidationError, read_msgspec_error
from ampgate.pricing import DisplayText, Price, Tariff, TariffElement, summary

TARIFFS_PATH = "/api/v1/tariffs"

# -- bodies (unknown fields refused: a misspelt restriction must not silently price everything) ---------------


class PriceComponentBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: Literal["ENERGY", "TIME", "PARKING_TIME", "FLAT"]
    price: Annotated[
        Decimal,
        Meta(description="Per kWh (ENERGY), per hour (TIME, PARKING_TIME) or the fee (FLAT), excl VAT"),
    ]
    step_size: Annotated[int, Meta(description="Billing block: Wh for ENERGY, seconds for the times")] = 1
    vat: Annotated[Decimal | None, Meta(description="Percent; null: no VAT applies")] = None


class RestrictionsBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """OCPI TariffRestrictions: every field set must match. Times and dates are the site's local time."""

    start_time: str | None = None
    end_time: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: list[str] = []
    reservation: str | None = None


class ElementBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    price_components: list[PriceComponentBody]
    restrictions: RestrictionsBody | None = None


class PriceBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    excl_vat: Decimal
    incl_vat: Decimal | None = None


class DisplayTextBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    language: str
    text: str


class TariffFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    currency: Annotated[str, Meta(description="ISO 4217", examples=["EUR"])]
    elements: list[ElementBody]
    min_price: PriceBody | None = None
    max_price: PriceBody | None = None
    tariff_alt_text: list[DisplayTextBody] = []
    tariff_alt_url: str | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None


class TariffCreate(TariffFields, kw_only=True):
    """A tariff (OCPI 2.2.1 names). Prices have at most 4 decimals; amounts are JSON numbers."""

    id: Annotated[str, Meta(description="1 to 36 characters", examples=["STANDARD"])]


class TariffPut(TariffFields, kw_only=True):
    """The tariff replacing the one at this path (`id`, if given, must be the path's)."""

    id: str | None = None


class TariffRead(msgspec.Struct, kw_only=True):
    """A tariff as stored, with `summary`: the one-line text a charger's display gets (prices incl VAT)."""

    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    min_price: Price | None
    max_price: Price | None
    tariff_alt_text: tuple[DisplayText, ...]
    tariff_alt_url: str | None
    start_date_time: datetime | None
    end_date_time: datetime | None
    summary: str
    created_at: datetime
    updated_at: datetime


class TariffPage(msgspec.Struct, kw_only=True):
    items: list[TariffRead]
    next_cursor: str | None


class AssignmentPut(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    tariff_id: Annotated[str | None, Meta(description="The tariff; null removes the assignment")]


class AssignmentRead(msgspec.Struct, kw_only=True):
    """What is assigned at `scope` (charger, site, id_token_group, default) to `subject` (null for default);
    `tariff_id` null: nothing."""

    scope: str
    subject: str | None
    tariff_id: str | None
    updated_at: datetime | None


class WindowBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    start_at: datetime
    end_at: datetime
    energy_price: Annotated[
        Decimal, Meta(description="Per kWh excl VAT, at most 4 decimals (below 0 counts as 0)")
    ]
    currency: Annotated[str, Meta(description="ISO 4217: applies to sessions whose tariff is in it")]


class PriceSignalsPut(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    windows: Annotated[
        list[WindowBody], Meta(description="At most 1000, not overlapping per currency; [] removes")
    ]


class PriceSignalsRead(msgspec.Struct, kw_only=True):
    site_id: str
    windows: list[WindowBody]
    updated_at: datetime | None


# -- conversions --------------------------------------------------------------------------------------------------


def to_tariff(tariff_id: str, body: TariffFields) -> Tariff:
    """The body as the engine's Tariff. Raises ValidationError naming the field for what the model refuses
    (pattern, length, enumeration) or a naive time; the engine's own rules are checked by the service."""
    for name in ("start_date_time", "end_date_time"):
        t = getattr(body, name)
        if t is not None and t.utcoffset() is None:
            raise ValidationError(f"{name} needs a time zone (e.g. a trailing Z)", field=name)
    raw = msgspec.to_builtins(body)
    raw["id"] = tariff_id
    try:
        return msgspec.convert(raw, Tariff)
    except msgspec.ValidationError as e:
        problem = read_msgspec_error(e)
        raise ValidationError(problem.message, field=problem.path or None) from None


def tariff_read(row: TariffRow) -> TariffRead:
    t = row.tariff
    return TariffRead(
        id=t.id,
        currency=t.currency,
        elements=t.elements,
        min_price=t.min_price,
        max_price=t.max_price,
        tariff_alt_text=t.tariff_alt_text,
        tariff_alt_url=t.tariff_alt_url,
        start_date_time=t.start_date_time,
        end_date_time=t.end_date_time,
        summary=summary(t),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def assignment_read(a: Assignment) -> AssignmentRead:
    return AssignmentRead(scope=a.scope, subject=a.subject, tariff_id=a.tariff_id, updated_at=a.updated_at)


def _signals_read(s: SiteSignals) -> PriceSignalsRead:
    return PriceSignalsRead(
        site_id=s.site_id,
        windows=[
            WindowBody(start_at=w.start_at, end_at=w.end_at, energy_price=w.energy_price, currency=w.currency)
            for w in s.windows
        ],
        updated_at=s.updated_at,
    )


_TARIFF_404 = {404: ResponseSpec(ErrorBody, description="No such tariff (`field`: id)")}
TariffId = Annotated[str, Parameter(description="The tariff's id")]


class TariffController(Controller):
    path = TARIFFS_PATH
    tags = ("tariffs",)

    @post(
        "/",
        operation_id="create_tariff",
        guards=[requires_operator],
        status_code=201,
        responses={**COMMON_ERRORS, 409: ResponseSpec(ErrorBody, description="tariff_exists")},
        summary="Create a tariff",
        description="Role: operator. An OCPI 2.2.1 tariff. 201 with it and its Location. 422 naming the field: "
        "contradictory restrictions (a minimum not below its maximum, an empty time window, dates in the wrong "
        "order), a unit price with more than 4 decimals, an unknown currency; nothing is stored then.",
    )
    async def create_tariff(
        self, tariffs: NamedDependency[TariffService], data: JSONBody[TariffCreate]
    ) -> NumberResponse[TariffRead]:
        """Role: operator. 201, 409 tariff_exists, 422 naming the field."""
        row = await tariffs.create(to_tariff(data.id, data))
        return NumberResponse(
            tariff_read(row), status_code=201, headers={"Location": f"{TARIFFS_PATH}/{row.id}"}
        )

    @get(
        "/",
        operation_id="list_tariffs",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="List tariffs",
        description="Role: viewer. Tariffs in id order.",
    )
    async def list_tariffs(
        self, tariffs: NamedDependency[TariffService], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> TariffPage:
        """Role: viewer. 422 naming limit or cursor."""
        after = None if cursor is None else decode_cursor(cursor, lambda key: key)
        rows = tariffs.page(limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return TariffPage(
            items=[tariff_read(r) for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None
        )

    @get(
        "/{tariff_id:str}",
        operation_id="get_tariff",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_TARIFF_404},
        summary="One tariff",
        description="Role: viewer.",
    )
    async def get_tariff(self, tariffs: NamedDependency[TariffService], tariff_id: TariffId) -> TariffRead:
        """Role: viewer. 404 (field id)."""
        row = tariffs.get(tariff_id)
        if row is None:
            raise NotFoundError(f"tariff {tariff_id!r} does not exist", field="id")
        return tariff_read(row)

    @put(
        "/{tariff_id:str}",
        operation_id="replace_tariff",
        guards=[requires_operator],
        responses={**COMMON_ERRORS, **_TARIFF_404},
        summary="Replace a tariff",
        description="Role: operator. Sessions already running keep the version they started with; sessions "
        "starting from now get this one. 422 as for create (and `id` other than the path's).",
    )
    async def replace_tariff(
        self, tariffs: NamedDependency[TariffService], tariff_id: TariffId, data: JSONBody[TariffPut]
    ) -> TariffRead:
        """Role: operator. 404 (field id), 422 naming the field."""
        if data.id is not None and data.id != tariff_id:
            raise ValidationError("id must be the path's tariff id", field="id")
        return tariff_read(await tariffs.replace(to_tariff(tariff_id, data)))

    @delete(
        "/{tariff_id:str}",
        operation_id="delete_tariff",
        guards=[requires_operator],
        responses={
            **COMMON_ERRORS,
            **_TARIFF_404,
            409: ResponseSpec(
                ErrorBody, description="tariff_in_use: assigned, or pricing a session not ended"
            ),
        },
        summary="Delete a tariff",
        description="Role: operator. 204. 409 tariff_in_use while a charger, site, id-token group or the default "
        "names it, or a session not yet ended (its EVSE still occupied) is priced by it.",
    )
    async def delete_tariff(self, tariffs: NamedDependency[TariffService], tariff_id: TariffId) -> None:
        """Role: operator. 204, 404 (field id), 409 tariff_in_use."""
        await tariffs.delete(tariff_id)


# -- assignments --------------------------------------------------------------------------------------------------

_ASSIGN_DESC = (
    "A session gets, most specific first, its id token's group's tariff, its charger's, its site's, or the "
    "default, decided when it starts (a later change never reprices it). 422 (field tariff_id) for an unknown "
    "tariff."
)


class ChargerTariffController(Controller):
    path = "/api/v1/chargers/{charger_id:str}/tariff"
    tags = ("tariffs",)

    @put(
        "/",
        operation_id="put_charger_tariff",
        guards=[requires_operator],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such charger (`field`: id)"),
        },
        summary="Assign a charger's tariff",
        description=f"Role: operator. {_ASSIGN_DESC}",
    )
    async def put_charger_tariff(
        self,
        tariffs: NamedDependency[TariffService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
        data: JSONBody[AssignmentPut],
    ) -> AssignmentRead:
        """Role: operator. 404 (field id), 422 (field tariff_id)."""
        return assignment_read(await tariffs.assign("charger", charger_id, data.tariff_id))

    @get(
        "/",
        operation_id="get_charger_tariff",
        guards=[requires_viewer],
        responses={
            **COMMON_ERRORS,
            404: ResponseSpec(ErrorBody, description="No such charger (`field`: id)"),
        },
        summary="A charger's tariff assignment",
        description="Role: viewer.",
    )
    async def get_charger_tariff(
        self,
        tariffs: NamedDependency[TariffService],
        charger_id: Annotated[str, Parameter(description="The charge point id")],
    ) -> AssignmentRead:
        """Role: viewer. 404 (field id)."""
        return assignment_read(tariffs.assignment("charger", charger_id))


_SITE_404 = {404: ResponseSpec(ErrorBody, description="No such site (`field`: site_id)")}
SiteId = Annotated[str, Parameter(description="The site's id")]


class SiteTariffController(Controller):
    path = "/api/v1/sites/{site_id:str}"
    tags = ("tariffs",)

    @put(
        "/tariff",
        operation_id="put_site_tariff",
        guards=[requires_operator],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="Assign a site's tariff",
        description=f"Role: operator. {_ASSIGN_DESC}",
    )
    async def put_site_tariff(
        self, tariffs: NamedDependency[TariffService], site_id: SiteId, data: JSONBody[AssignmentPut]
    ) -> AssignmentRead:
        """Role: operator. 404 (field site_id), 422 (field tariff_id)."""
        return assignment_read(await tariffs.assign("site", site_id, data.tariff_id))

    @get(
        "/tariff",
        operation_id="get_site_tariff",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="A site's tariff assignment",
        description="Role: viewer.",
    )
    async def get_site_tariff(
        self, tariffs: NamedDependency[TariffService], site_id: SiteId
    ) -> AssignmentRead:
        """Role: viewer. 404 (field site_id)."""
        return assignment_read(tariffs.assignment("site", site_id))

    @put(
        "/price-signals",
        operation_id="put_site_price_signals",
        guards=[requires_operator],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="Replace a site's dynamic energy prices",
        description="Role: operator. Windows of an energy price per kWh (excl VAT) that replaces the ENERGY "
        "component's price for sessions at the site whose tariff is in the window's currency (OpenADR PRICE "
        "events apply the same way; these come first). 422 naming `windows[i].<field>`: an empty or naive "
        "interval, an unknown currency, more than 4 decimals, an overlap within a currency.",
    )
    async def put_price_signals(
        self,
        price_signals: NamedDependency[PriceSignalService],
        site_id: SiteId,
        data: JSONBody[PriceSignalsPut],
    ) -> PriceSignalsRead:
        """Role: operator. 404 (field site_id), 422 naming the field."""
        windows = [
            SignalWindow(
                start_at=w.start_at, end_at=w.end_at, energy_price=w.energy_price, currency=w.currency
            )
            for w in data.windows
        ]
        return _signals_read(await price_signals.replace(site_id, windows))

    @get(
        "/price-signals",
        operation_id="get_site_price_signals",
        guards=[requires_viewer],
        responses={**COMMON_ERRORS, **_SITE_404},
        summary="A site's dynamic energy prices",
        description="Role: viewer. The windows set over the API (OpenADR's are in the OpenADR part).",
    )
    async def get_price_signals(
        self, price_signals: NamedDependency[PriceSignalService], site_id: SiteId
    ) -> PriceSignalsRead:
        """Role: viewer. 404 (field site_id)."""
        return _signals_read(price_signals.get(site_id))


class GroupTariffController(Controller):
    path = "/api/v1/id-token-groups/{group:str}/tariff"
    tags = ("tariffs",)

    @put(
        "/",
        operation_id="put_id_token_group_tariff",
        guards=[requires_operator],
        responses=COMMON_ERRORS,
        summary="Assign an id-token group's tariff",
        description="Role: operator. The group is an id token's `group` (1.6 parentIdTag, 2.0.1 groupIdToken): "
        f"it wins over the charger's and the site's tariff. {_ASSIGN_DESC}",
    )
    async def put_group_tariff(
        self,
        tariffs: NamedDependency[TariffService],
        group: Annotated[str, Parameter(description="The id-token group")],
        data: JSONBody[AssignmentPut],
    ) -> AssignmentRead:
        """Role: operator. 422 (field tariff_id, group)."""
        return assignment_read(await tariffs.assign("id_token_group", group, data.tariff_id))

    @get(
        "/",
        operation_id="get_id_token_group_tariff",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="An id-token group's tariff assignment",
        description="Role: viewer.",
    )
    async def get_group_tariff(
        self,
        tariffs: NamedDependency[TariffService],
        group: Annotated[str, Parameter(description="The id-token group")],
    ) -> AssignmentRead:
        """Role: viewer. 422 (field group)."""
        return assignment_read(tariffs.assignment("id_token_group", group))


class DefaultTariffController(Controller):
    path = "/api/v1/settings/default-tariff"
    tags = ("tariffs",)

    @put(
        "/",
        operation_id="put_default_tariff",
        guards=[requires_operator],
        responses=COMMON_ERRORS,
        summary="Set the default tariff",
        description=f"Role: operator. For sessions no group, charger or site assignment decides. {_ASSIGN_DESC}",
    )
    async def put_default_tariff(
        self, tariffs: NamedDependency[TariffService], data: JSONBody[AssignmentPut]
    ) -> AssignmentRead:
        """Role: operator. 422 (field tariff_id)."""
        return assignment_read(await tariffs.assign("default", None, data.tariff_id))

    @get(
        "/",
        operation_id="get_default_tariff",
        guards=[requires_viewer],
        responses=COMMON_ERRORS,
        summary="The default tariff",
        description="Role: viewer.",
    )
    async def get_default_tariff(self, tariffs: NamedDependency[TariffService]) -> AssignmentRead:
        """Role: viewer."""
        return assignment_read(tariffs.assignment("default", None))


__all__ = [
    "ChargerTariffController",
    "DefaultTariffController",
    "GroupTariffController",
    "Scope",
    "SiteTariffController",
    "TariffController",
]
