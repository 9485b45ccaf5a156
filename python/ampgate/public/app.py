"""`create_public_app(...)`: the public listener's app, assembled in one place. No operator token is accepted
here (there is no bearer middleware at all); each route states its own authentication and rate limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Litestar, Router, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIResponse, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Parameter, ParameterKwarg
from litestar.types import ControllerRouterHandler, ExceptionHandlersMap

from ampgate.api.app import API_VERSION
from ampgate.api.deps import HealthReport
from ampgate.api.errors import EXCEPTION_HANDLERS
from ampgate.api.responses import DecimalSchema
from ampgate.api.schemas import ErrorBody
from ampgate.errors import ValidationError
from ampgate.public.transfers import TransferLimiter, TransferLimitMiddleware

# Largest request body on the public surface unless a route (a log upload) says otherwise: the routes here take
# small JSON; a runaway body is refused before it reaches a handler.
MAX_BODY_BYTES = 64 << 10
# The public health check: enough for a load balancer probing every second from a few addresses, too few to
# make it a cheap way to load the node.
HEALTH_RATE_PER_S = 10
# The OpenAPI document of this listener (`…/openapi.json`): it describes the routes and exposes no data, so it
# needs no authentication; it is the same for every request, so a few a second from one address is plenty.
SCHEMA_PATH = "/public/v1/schema"
SCHEMA_RATE_PER_S = 5

# What each error status means on this listener, for the routes' documented responses (`error_responses`).
# The body is always ErrorBody; a route names the statuses it can answer and may say more about one.
_ERROR_MEANINGS = {
    400: "The body is malformed (`code` says how)",
    401: "No credential, or a wrong one",
    404: "Nothing is served here (`field` names the path parameter)",
    409: "The resource's state forbids this now",
    413: "The body is larger than this route accepts",
    416: "The range starts past the end of the file (`Content-Range: bytes */<size>`)",
    422: "An input is invalid; `field` names it",
    429: "Too many requests from this address (`Retry-After`, or `RateLimit-*` headers)",
    503: "Too many file transfers in progress: `too_many_transfers` with `Retry-After`",
}


def rate_limit(name: str, per_second: int) -> DefineMiddleware:
    """A per-client-address rate limit of `per_second` requests for one route, counted apart from every other
    route's (its own store, `rate_limit:<name>`). Past it: 429 with RateLimit-* headers."""
    return RateLimitConfig(rate_limit=("second", per_second), store=f"rate_limit:{name}").middleware


def error_responses(statuses: Mapping[int, str | None]) -> dict[int, ResponseSpec]:
    """The OpenAPI responses of a public route's errors: each status with its ErrorBody and its meaning here
    (`_ERROR_MEANINGS`), or the route's own words when the mapping gives them (None: the common meaning).
    Every public route is rate-limited, so 429 is always among them."""
    wanted = {429: None, **statuses}
    return {
        status: ResponseSpec(ErrorBody, description=text or _ERROR_MEANINGS[status])
        for status, text in sorted(wanted.items())
    }


def number_query(
    description: str,
    low: float,
    high: float,
    *,
    integer: bool = False,
    above: bool = False,
    required: bool = False,
) -> ParameterKwarg:
    """A query parameter the route reads as text and parses itself (`recommendations.query_number`, so that a
    bad value is our 422 naming it), documented as the number it must be: in [low, high] (above: more than
    low), whole when `integer`. `required` says so in the document only: the route answers a missing value with
    422 itself."""
    extra: dict[str, object] = {
        "one_of": None,  # Litestar's (string or null), from the annotation
        "type": OpenAPIType.INTEGER if integer else OpenAPIType.NUMBER,
        "minimum": low,
        "maximum": high,
    }
    if above:
        extra["exclusive_minimum"] = low
        del extra["minimum"]
    return Parameter(description=description, required=True if required else None, schema_extra=extra)


@dataclass
class PublicOperation(Operation):
    """An operation of the public document, as every public route declares it (`operation_class=`). Litestar
    documents a 400 with its own ValidationException body for every route with parameters; this app never
    sends that (a validation failure is 422 ErrorBody, which the routes document), so it is dropped, unless the
    route documents a 400 of its own."""

    def __post_init__(self) -> None:
        responses = self.responses or {}
        auto = responses.get("400")
        if isinstance(auto, OpenAPIResponse) and auto.content:
            schemas = [m.schema for m in auto.content.values()]
            if any(isinstance(s, Schema) and s.properties and "status_code" in s.properties for s in schemas):
                del responses["400"]


def operation_with_body(name: str, body: RequestBody) -> type[PublicOperation]:
    """A PublicOperation documenting `body` as its request body: for routes that read their body themselves
    (streamed to disk, or authenticated before it is parsed), which Litestar therefore cannot describe."""

    def __post_init__(self: PublicOperation) -> None:
        PublicOperation.__post_init__(self)
        if self.request_body is None:
            self.request_body = body

    return type(name, (PublicOperation,), {"__post_init__": __post_init__})


class PublicRoutes:
    """Builds URLs that chargers and outside parties use, from `--public-base-url` (what they can reach,
    never the loopback address the node may listen on). Raises ValidationError for a base URL that is not
    http(s) with a host."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                f"--public-base-url must be an http(s) URL with a host, not {base_url!r}",
                field="public_base_url",
            )
        self.base_url = base_url.rstrip("/")

    def url_for(self, path: str) -> str:
        """The absolute URL of `path` (starting with '/') on the public surface."""
        if not path.startswith("/"):
            raise ValueError("a public path starts with '/'")
        return self.base_url + path


class PublicHealth(msgspec.Struct, kw_only=True):
    """`status`: ok, or degraded (the node runs with something wrong); `version`: the node's."""

    status: str
    version: str


class PublicHealthController(Controller):
    path = "/public/v1/health"
    tags = ("public",)

    @get(
        "/",
        operation_id="public_health",
        operation_class=PublicOperation,
        middleware=[rate_limit("health", HEALTH_RATE_PER_S)],
        summary="Whether the node is up (no authentication; rate-limited per client address)",
        responses=error_responses({}),
    )
    async def health(self, health: NamedDependency[HealthReport]) -> PublicHealth:
        """`status` (ok or degraded) and `version` only: the public surface tells outsiders nothing about the
        node's insides."""
        report = health.report()
        return PublicHealth(status=report["status"], version=report["version"])


def _provider(value: object) -> Provide:
    return Provide(lambda: value, sync_to_thread=False, use_cache=True)


def openapi_config() -> OpenAPIConfig:
    """The listener's OpenAPI document, JSON only, at SCHEMA_PATH/openapi.json (rate-limited per address like
    every public route). OCPI's routes are left out of it (`include_in_schema=False` on its router): OCPI 2.2.1
    is its own specification, with its own envelope, status codes and Token authentication (docs/api.md)."""
    return OpenAPIConfig(
        title="ampgate public surface",
        version=API_VERSION,
        description="What chargers, grid operators and EV owners' apps call: firmware downloads, log uploads, "
        "OpenADR callbacks, public locations and recommendations. No operator token is accepted here; each "
        "route states its own authentication and rate limit. OCPI (under /ocpi) is not described here: it "
        "follows the OCPI 2.2.1 specification.",
        openapi_router=Router(
            SCHEMA_PATH,
            route_handlers=[],
            middleware=[rate_limit("schema", SCHEMA_RATE_PER_S)],
            include_in_schema=False,
        ),
        render_plugins=[JsonRenderPlugin()],
    )


def create_public_app(
    health: HealthReport,
    transfers: TransferLimiter,
    routes: Sequence[ControllerRouterHandler] = (),
    services: Mapping[str, object] | None = None,
    *,
    exception_handlers: ExceptionHandlersMap | None = None,
    state: Mapping[str, object] | None = None,
) -> Litestar:
    """The public app: its health route plus the features' `routes`, which receive `services` as dependencies
    of the same names (e.g. `uploads`). `transfers` caps the routes marked `opt={FILE_TRANSFER: True}`.
    `exception_handlers` replace the common ones by exception type (OCPI answers its errors in its envelope;
    its handlers hand other paths back to the common ones); `state` is the app's state (for such handlers, which
    get no dependencies)."""
    dependencies = {name: _provider(value) for name, value in (services or {}).items()}
    return Litestar(
        route_handlers=[PublicHealthController, *routes],
        dependencies={"health": _provider(health), **dependencies},
        middleware=[TransferLimitMiddleware(transfers)],
        exception_handlers={**EXCEPTION_HANDLERS, **(exception_handlers or {})},
        state=State(dict(state or {})),
        openapi_config=openapi_config(),
        plugins=[DecimalSchema()],
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        debug=False,
    )
