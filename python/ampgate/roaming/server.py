"""The OCPI server under /ocpi on the public listener: versions, version details, credentials, and the modules
registered with it (`Module`: locations today; sessions, CDRs, tariffs, tokens and commands plug in the same
way), all answering the envelope `{data, status_code, status_message, timestamp}`.

Shared by every route, here once:
- Authentication (`caller`): `Authorization: Token <base64 of the credentials token>`; a token sent without
  Base64 (what many 2.1.1 and 2.2 implementations do; transport_and_format's note leaves accepting it to us) is
  accepted too: the header's value is tried decoded, then as it is. No header or an unknown token: 401. The
  registration token (and the one we hand a party while we register with it) is good only for versions,
  version details and credentials: anywhere else, 401 (transport_and_format).
- X-Request-ID and X-Correlation-ID: echoed when the request has them, made up when it does not, on every
  answer (errors too).
- Routing headers (OCPI-from / OCPI-to) on the answers of functional modules.
- Errors: `OcpiError`, a malformed object (2001 naming the field), a body that is not JSON (400), and anything
  Litestar raises on an /ocpi path (404, 405, 429 from the rate limit) become envelopes; the public app's other
  routes keep their own error body.
- A per-client-address rate limit over all of /ocpi.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.types import ControllerRouterHandler, ExceptionHandlersMap

from ampgate.api.errors import handle_http_exception, handle_unexpected
from ampgate.clock import Clock
from ampgate.public.app import rate_limit
from ampgate.roaming.credentials import Caller, Identity, Registrar
from ampgate.roaming.errors import OcpiError, invalid, not_allowed, unauthorized
from ampgate.roaming.types import (
    OCPI_VERSION,
    Credentials,
    Endpoint,
    Envelope,
    InterfaceRole,
    MalformedObject,
    ModuleId,
    StatusCode,
    Version,
    VersionDetails,
    decode,
    ocpi_time,
    parse_datetime,
)

log = logging.getLogger(__name__)

OCPI_ROOT = "/ocpi"
VERSION_PATH = f"/{OCPI_VERSION}"
# Requests per second from one address over all of /ocpi: a party pulling every page of Locations, or pushing a
# burst of tokens, passes; a flood does not.
OCPI_RATE_PER_S = 50
# Money (Decimal) as JSON numbers, as OCPI's `number` is (msgspec's default writes strings).
_encode = msgspec.json.Encoder(decimal_format="number").encode
# Where the public app's state holds the OCPI context (for the error handlers, which get no dependencies).
STATE_KEY = "ocpi"


class Module(msgspec.Struct, frozen=True, kw_only=True):
    """An OCPI module this node offers: its identifier and interface role as version details list them, its
    path under /ocpi/2.2.1/, and its Litestar route handlers (paths relative to /ocpi, e.g. /2.2.1/locations).
    The handlers receive the `ocpi` dependency (`OcpiContext`) and call `caller(request, ocpi)` and `answer`."""

    identifier: str
    role: InterfaceRole
    path: str
    handlers: tuple[Any, ...]


@runtime_checkable
class OcpiContext(Protocol):
    """What the routes need: `ampgate.roaming.Roaming`."""

    identity: Identity
    registrar: Registrar
    modules: Sequence[Module]
    clock: Clock


# -- answers ---------------------------------------------------------------------------------------------------------


def request_ids(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The X-Request-ID and X-Correlation-ID to answer with: the request's, or new ones."""
    return {
        "X-Request-ID": request.headers.get("x-request-id") or str(uuid.uuid4()),
        "X-Correlation-ID": request.headers.get("x-correlation-id") or str(uuid.uuid4()),
    }


def answer(
    request: Request[Any, Any, Any],
    data: Any = msgspec.UNSET,
    *,
    status_code: int = StatusCode.SUCCESS,
    message: str | None = None,
    http_status: int = 200,
    headers: dict[str, str] | None = None,
    caller: Caller | None = None,
) -> Response[bytes]:
    """An envelope response. `caller`: add the routing headers (a functional module's answer)."""
    envelope = Envelope(
        status_code=int(status_code),
        timestamp=ocpi_time(_now(request)),
        data=data,
        status_message=msgspec.UNSET if message is None else message,
    )
    out = request_ids(request) | (headers or {})
    if caller is not None:
        ctx = request.app.state.get(STATE_KEY)
        if ctx is not None:
            out |= {
                "OCPI-from-country-code": ctx.identity.country_code,
                "OCPI-from-party-id": ctx.identity.party_id,
                "OCPI-to-country-code": caller.party.country_code,
                "OCPI-to-party-id": caller.party.party_id,
            }
    return Response(_encode(envelope), status_code=http_status, media_type="application/json", headers=out)


def _now(request: Request[Any, Any, Any]) -> datetime:
    ctx = request.app.state.get(STATE_KEY)
    return ctx.clock.now() if ctx is not None else datetime.now(UTC)


# -- who is calling ----------------------------------------------------------------------------------------------


def _candidates(header: str | None) -> list[str]:
    """The tokens an Authorization header may carry: Base64-decoded first (2.2.1), then as sent (2.1.1, 2.2)."""
    if not header:
        return []
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    out = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
        if decoded and all("!" <= ch <= "~" for ch in decoded):
            out.append(decoded)
    except (binascii.Error, UnicodeDecodeError):
        pass
    out.append(value)
    return out


def presented_token(request: Request[Any, Any, Any], ocpi: OcpiContext) -> tuple[str, Caller] | None:
    for token in _candidates(request.headers.get("authorization")):
        found = ocpi.registrar.authenticate(token)
        if found is not None:
            return token, found
    return None


def caller(request: Request[Any, Any, Any], ocpi: OcpiContext, *, registering_ok: bool = False) -> Caller:
    """The party calling. Raises OcpiError 401 without a known token, or with a registration token where only a
    registered party may call (`registering_ok` False: every functional module)."""
    found = presented_token(request, ocpi)
    if found is None:
        if not request.headers.get("authorization"):
            raise unauthorized("this endpoint needs 'Authorization: Token <credentials token>'")
        raise unauthorized("unknown credentials token")
    who = found[1]
    if who.registering and not registering_ok:
        raise unauthorized("the registration token is good only for versions and credentials: register first")
    return who


async def body_of(request: Request[Any, Any, Any], type_: type[Any]) -> Any:
    """The request body as `type_`. Raises OcpiError: 400 when it is not JSON, 2001 naming the field."""
    raw = await request.body()
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise OcpiError(
            "the body is not JSON", status_code=StatusCode.INVALID_PARAMETERS, http_status=400
        ) from None
    try:
        return decode(raw, type_)
    except MalformedObject as e:
        raise invalid(e.message, e.field) from None


# -- versions and credentials -------------------------------------------------------------------------------------


class Paged(Protocol):
    """A module's paginated read: (total, page) for the date window, offset and limit."""

    def __call__(
        self, date_from: datetime | None, date_to: datetime | None, offset: int, limit: int, /
    ) -> tuple[int, Sequence[Any]]: ...


def paged(
    request: Request[Any, Any, Any],
    ocpi: OcpiContext,
    path: str,
    source: Paged,
    *,
    max_limit: int,
    max_offset: int,
) -> tuple[list[Any], dict[str, str]]:
    """The page a GET of a module's list asks for (`date_from`, `date_to`, `offset`, `limit`, each checked:
    2001 naming it), and the pagination headers (transport_and_format): X-Total-Count, X-Limit and a Link to the
    next page with the same window when there is one."""
    q = request.query_params
    date_from = _when(q.get("date_from"), "date_from")
    date_to = _when(q.get("date_to"), "date_to")
    offset = _int(q.get("offset"), "offset", 0, max_offset, 0)
    limit = min(_int(q.get("limit"), "limit", 1, max_offset, max_limit), max_limit)
    total, page = source(date_from, date_to, offset, limit)
    headers = {"X-Total-Count": str(total), "X-Limit": str(max_limit)}
    if offset + len(page) < total:
        params: dict[str, str] = {"offset": str(offset + len(page)), "limit": str(limit)}
        for name in ("date_from", "date_to"):
            if (v := q.get(name)) is not None:
                params[name] = v
        headers["Link"] = f'<{ocpi.identity.module_url(path)}?{urlencode(params)}>; rel="next"'
    return list(page), headers


def _int(text: str | None, field: str, low: int, high: int, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise invalid(f"{field} is a whole number from {low} to {high}", field)
    return int(text)


def _when(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_datetime(text, field)
    except MalformedObject as e:
        raise invalid(e.message, field) from None


@get("/versions", operation_id="ocpi_versions", summary="OCPI versions (credentials token)")
async def versions(request: Request[Any, Any, Any], ocpi: NamedDependency[OcpiContext]) -> Response[bytes]:
    caller(request, ocpi, registering_ok=True)
    return answer(request, [Version(version=OCPI_VERSION, url=ocpi.identity.details_url)])


def version_details(ocpi: OcpiContext) -> VersionDetails:
    """Our 2.2.1 endpoints: credentials (role SENDER, as version_information advises), then every module."""
    endpoints = [
        Endpoint(
            identifier=ModuleId.CREDENTIALS,
            role=InterfaceRole.SENDER,
            url=ocpi.identity.module_url("credentials"),
        )
    ]
    endpoints += [
        Endpoint(identifier=m.identifier, role=m.role, url=ocpi.identity.module_url(m.path))
        for m in ocpi.modules
    ]
    return VersionDetails(version=OCPI_VERSION, endpoints=endpoints)


@get(VERSION_PATH, operation_id="ocpi_version_details", summary="OCPI 2.2.1 endpoints (credentials token)")
async def details(request: Request[Any, Any, Any], ocpi: NamedDependency[OcpiContext]) -> Response[bytes]:
    caller(request, ocpi, registering_ok=True)
    return answer(request, version_details(ocpi))


CREDENTIALS_PATH = f"{VERSION_PATH}/credentials"


@get(CREDENTIALS_PATH, operation_id="ocpi_credentials_get", summary="Our credentials for the caller")
async def get_credentials(
    request: Request[Any, Any, Any], ocpi: NamedDependency[OcpiContext]
) -> Response[bytes]:
    found = presented_token(request, ocpi)
    caller(request, ocpi, registering_ok=True)
    assert found is not None
    return answer(request, ocpi.identity.credentials(found[0]))


@post(CREDENTIALS_PATH, operation_id="ocpi_credentials_post", summary="Register (registration token)")
async def post_credentials(
    request: Request[Any, Any, Any], ocpi: NamedDependency[OcpiContext]
) -> Response[bytes]:
    who = caller(request, ocpi, registering_ok=True)
    theirs = await body_of(request, Credentials)
    return answer(request, await ocpi.registrar.register_them(who, theirs))


@put(CREDENTIALS_PATH, operation_id="ocpi_credentials_put", summary="Update credentials (registered)")
async def put_credentials(
    request: Request[Any, Any, Any], ocpi: NamedDependency[OcpiContext]
) -> Response[bytes]:
    who = caller(request, ocpi, registering_ok=True)
    if who.registering:
        raise not_allowed("not registered yet: use POST to register")
    theirs = await body_of(request, Credentials)
    return answer(request, await ocpi.registrar.update_them(who, theirs))


@delete(
    CREDENTIALS_PATH,
    operation_id="ocpi_credentials_delete",
    status_code=200,
    summary="Unregister (registered)",
)
async def delete_credentials(
    request: Request[Any, Any, Any], ocpi: NamedDependency[OcpiContext]
) -> Response[bytes]:
    who = caller(request, ocpi, registering_ok=True)
    await ocpi.registrar.unregister_them(who)
    return answer(request)


def router(modules: Sequence[Module], rate_per_s: int = OCPI_RATE_PER_S) -> Router:
    """Everything under /ocpi, rate-limited per client address (`rate_per_s` requests a second)."""
    handlers: list[ControllerRouterHandler] = [
        versions,
        details,
        get_credentials,
        post_credentials,
        put_credentials,
        delete_credentials,
    ]
    for m in modules:
        handlers.extend(m.handlers)
    return Router(
        path=OCPI_ROOT,
        route_handlers=handlers,
        middleware=[rate_limit("ocpi", rate_per_s)],
        tags=["ocpi"],
        include_in_schema=False,
    )


# -- errors as envelopes -----------------------------------------------------------------------------------------


def _is_ocpi(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return path == OCPI_ROOT or path.startswith(OCPI_ROOT + "/")


def handle_ocpi_error(request: Request[Any, Any, Any], exc: OcpiError) -> Response[Any]:
    data = exc.data if exc.data is not None else msgspec.UNSET
    return answer(
        request,
        data,
        status_code=exc.status_code,
        message=exc.message,
        http_status=exc.http_status,
        headers=exc.headers,
    )


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals: an envelope on /ocpi paths (404 of an unknown path, 405, 429 with its
    RateLimit headers), the public app's usual error body elsewhere."""
    if not _is_ocpi(request):
        return handle_http_exception(request, exc)
    status = exc.status_code
    return answer(
        request,
        status_code=StatusCode.SERVER_ERROR if status >= 500 else StatusCode.CLIENT_ERROR,
        message=exc.detail,
        http_status=status,
        headers=dict(exc.headers or {}),
    )


def handle_any(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if not _is_ocpi(request):
        return handle_unexpected(request, exc)
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return answer(
        request, status_code=StatusCode.SERVER_ERROR, message="internal server error", http_status=500
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    OcpiError: handle_ocpi_error,
    HTTPException: handle_http,
    Exception: handle_any,
}
