"""`create_public_app(...)`: the public listener's app, assembled in one place. No operator token is accepted
here (there is no bearer middleware at all); each route states its own authentication and rate limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, Litestar, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.types import ControllerRouterHandler, ExceptionHandlersMap

from ampgate.api.deps import HealthReport
from ampgate.api.errors import EXCEPTION_HANDLERS
from ampgate.errors import ValidationError
from ampgate.public.transfers import TransferLimiter, TransferLimitMiddleware

# Largest request body on the public surface unless a route (a log upload) says otherwise: the routes here take
# small JSON; a runaway body is refused before it reaches a handler.
MAX_BODY_BYTES = 64 << 10
# The public health check: enough for a load balancer probing every second from a few addresses, too few to
# make it a cheap way to load the node.
HEALTH_RATE_PER_S = 10


def rate_limit(name: str, per_second: int) -> DefineMiddleware:
    """A per-client-address rate limit of `per_second` requests for one route, counted apart from every other
    route's (its own store, `rate_limit:<name>`). Past it: 429 with RateLimit-* headers."""
    return RateLimitConfig(rate_limit=("second", per_second), store=f"rate_limit:{name}").middleware


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


class PublicHealthController(Controller):
    path = "/public/v1/health"
    tags = ("public",)

    @get(
        "/",
        operation_id="public_health",
        middleware=[rate_limit("health", HEALTH_RATE_PER_S)],
        summary="Whether the node is up (no authentication; rate-limited per client address)",
    )
    async def health(self, health: NamedDependency[HealthReport]) -> dict[str, Any]:
        """`status` (ok or degraded) and `version` only: the public surface tells outsiders nothing about the
        node's insides."""
        report = health.report()
        return {"status": report["status"], "version": report["version"]}


def _provider(value: object) -> Provide:
    return Provide(lambda: value, sync_to_thread=False, use_cache=True)


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
        openapi_config=None,
        request_max_body_size=MAX_BODY_BYTES,
        logging_config=None,
        debug=False,
    )
