"""Who is calling: bearer tokens checked on every request, and guards per minimum role.

Authentication is a middleware, so a route is protected unless it opts out (health, the OpenAPI schema):
forgetting a guard on a new route cannot make it public. The token is looked up in the store on every request
(an indexed read), so a token created by `ampgate token create` works at once.

Roles (see `ampgate.store.ROLES`): viewer reads, operator sends commands to chargers, admin manages chargers
and tokens. Guards are plain functions; each raises PermissionDeniedException (403) for a role too low.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from ampgate.store import role_at_least

# Handlers with this key set in `opt` are served without a token (health checks from load balancers).
EXCLUDE_FROM_AUTH = "exclude_from_auth"


def bearer_token(authorization: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` header value (scheme case-insensitive), else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Sets `scope["user"]` to the caller's role. Raises NotAuthorizedException (401) without a bearer token
    or with one the store does not know."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise NotAuthorizedException("this endpoint needs 'Authorization: Bearer <token>'")
        role = connection.app.state.api_tokens.role_for(token)
        if role is None:
            raise NotAuthorizedException("unknown API token")
        return AuthenticationResult(user=role, auth=None)


def role_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The caller's role as the middleware set it (None: no authenticated caller)."""
    role = connection.scope.get("user")
    return role if isinstance(role, str) else None


def _require(connection: ASGIConnection[Any, Any, Any, Any], minimum: str) -> None:
    role = connection.scope.get("user")
    if not isinstance(role, str) or not role_at_least(role, minimum):
        raise PermissionDeniedException(f"this needs the {minimum} role (your token is {role or 'no role'})")


def requires_viewer(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Let any valid token through (every role can read). Raises PermissionDeniedException otherwise."""
    _require(connection, "viewer")


def requires_operator(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Let operator and admin tokens through. Raises PermissionDeniedException for a viewer."""
    _require(connection, "operator")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Let admin tokens through. Raises PermissionDeniedException for viewer and operator."""
    _require(connection, "admin")
