"""The Sessions, CDRs and Tariffs modules, Sender interface: `GET /ocpi/2.2.1/{sessions,cdrs,tariffs}` paginated
(`date_from`, `date_to`, `offset`, `limit`; `X-Total-Count`, `X-Limit` and a `Link` to the next page, as the
Locations list), and `PUT /ocpi/2.2.1/sessions/{session_id}/charging_preferences`. Registered parties only.

- Sessions and CDRs: only the caller's (those of its tokens), oldest change first; a Session as last built, a CDR
  as built once (what was pushed).
- Tariffs: every tariff, in id order.
- Charging preferences: our EVSEs never list CHARGING_PREFERENCES_CAPABLE, and mod_sessions says a PUT for such
  an EVSE is answered HTTP 404 with status 2001; a session that is not the caller's (or not ours) is HTTP 404
  with 2003, like any unknown object. The body is checked first (2001 naming the field).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from litestar import Request, Response, get, put
from litestar.di import NamedDependency

from ampgate.roaming import cdr_types as o
from ampgate.roaming.billing_rows import SessionRecord
from ampgate.roaming.errors import OcpiError, unknown_object
from ampgate.roaming.mapping import transaction_of
from ampgate.roaming.server import VERSION_PATH, Module, OcpiContext, answer, body_of, caller, paged
from ampgate.roaming.types import InterfaceRole, ModuleId, StatusCode

# The most objects per page (X-Limit), and the page when none is asked for: a Session or CDR with its periods
# is a few KB, so 100 keep a page under a megabyte.
MAX_LIMIT = 100
# An offset beyond any history: a larger one is a client bug, answered 2001 rather than an empty page.
MAX_OFFSET = 100_000_000

SESSIONS = "sessions"
CDRS = "cdrs"
TARIFFS = "tariffs"


class CdrsSource(Protocol):
    """`ampgate.roaming.billing_rows.CdrRows`."""

    def page(
        self, party_ref: int, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int, /
    ) -> tuple[int, Sequence[Any]]: ...


class SessionsSource(CdrsSource, Protocol):
    """`ampgate.roaming.billing_rows.SessionRows`."""

    def get(self, tx_id: int, /) -> SessionRecord | None: ...


class TariffsSource(Protocol):
    """`ampgate.roaming.tariff_push.TariffPusher`."""

    def page(
        self, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int, /
    ) -> tuple[int, Sequence[Any]]: ...


class BillingContext(OcpiContext, Protocol):
    """What these routes need of `ampgate.roaming.Roaming`."""

    session_rows: SessionsSource
    cdr_rows: CdrsSource
    tariff_push: TariffsSource


@get(f"{VERSION_PATH}/{SESSIONS}", operation_id="ocpi_sessions", summary="The caller's Sessions, paginated")
async def list_sessions(
    request: Request[Any, Any, Any], ocpi: NamedDependency[BillingContext]
) -> Response[bytes]:
    who = caller(request, ocpi)
    ref = who.party.id

    def source(f: datetime | None, t: datetime | None, offset: int, limit: int) -> tuple[int, Sequence[Any]]:
        return ocpi.session_rows.page(ref, f, t, offset, limit)

    page, headers = paged(request, ocpi, SESSIONS, source, max_limit=MAX_LIMIT, max_offset=MAX_OFFSET)
    return answer(request, page, headers=headers, caller=who)


@put(
    f"{VERSION_PATH}/{SESSIONS}/{{session_id:str}}/charging_preferences",
    operation_id="ocpi_charging_preferences",
    summary="Charging preferences (not taken: no EVSE is CHARGING_PREFERENCES_CAPABLE)",
)
async def put_charging_preferences(
    request: Request[Any, Any, Any], ocpi: NamedDependency[BillingContext], session_id: str
) -> Response[bytes]:
    who = caller(request, ocpi)
    await body_of(request, o.ChargingPreferences)
    tx = transaction_of(session_id)
    found = None if tx is None else ocpi.session_rows.get(tx)
    if found is None or found.party_ref != who.party.id:
        raise unknown_object(f"no session {session_id!r} of yours")
    raise OcpiError(
        "this EVSE does not take charging preferences (it is not CHARGING_PREFERENCES_CAPABLE)",
        status_code=StatusCode.INVALID_PARAMETERS,
        http_status=404,
    )


@get(f"{VERSION_PATH}/{CDRS}", operation_id="ocpi_cdrs", summary="The caller's CDRs, paginated")
async def list_cdrs(
    request: Request[Any, Any, Any], ocpi: NamedDependency[BillingContext]
) -> Response[bytes]:
    who = caller(request, ocpi)
    ref = who.party.id

    def source(f: datetime | None, t: datetime | None, offset: int, limit: int) -> tuple[int, Sequence[Any]]:
        return ocpi.cdr_rows.page(ref, f, t, offset, limit)

    page, headers = paged(request, ocpi, CDRS, source, max_limit=MAX_LIMIT, max_offset=MAX_OFFSET)
    return answer(request, page, headers=headers, caller=who)


@get(f"{VERSION_PATH}/{TARIFFS}", operation_id="ocpi_tariffs", summary="Our Tariffs, paginated")
async def list_tariffs(
    request: Request[Any, Any, Any], ocpi: NamedDependency[BillingContext]
) -> Response[bytes]:
    who = caller(request, ocpi)
    page, headers = paged(
        request, ocpi, TARIFFS, ocpi.tariff_push.page, max_limit=MAX_LIMIT, max_offset=MAX_OFFSET
    )
    return answer(request, page, headers=headers, caller=who)


SESSIONS_MODULE = Module(
    identifier=ModuleId.SESSIONS,
    role=InterfaceRole.SENDER,
    path=SESSIONS,
    handlers=(list_sessions, put_charging_preferences),
)
CDRS_MODULE = Module(identifier=ModuleId.CDRS, role=InterfaceRole.SENDER, path=CDRS, handlers=(list_cdrs,))
TARIFFS_MODULE = Module(
    identifier=ModuleId.TARIFFS, role=InterfaceRole.SENDER, path=TARIFFS, handlers=(list_tariffs,)
)
