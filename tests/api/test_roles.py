"""Every route of the operator API states its role, and the role below it gets 403 (API-CONVENTIONS: "Every
route states its role in its OpenAPI description and has a test that the role below it gets 403"). Derived from
the app itself, so a route added later is covered without a test of its own."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from ampgate.api.auth import requires_admin, requires_operator, requires_viewer
from ampgate.api.commands import requires_command_role

from .conftest import Api, Scenario

# The command route's guard lets operators through and the handler checks the action's own role
# (ampgate.commands.roles; tests/integration/test_command_roles.py covers it per action).
BELOW = {requires_operator: "viewer", requires_admin: "operator", requires_command_role: "viewer"}
ROLE_OF = {
    requires_viewer: "viewer",
    requires_operator: "operator",
    requires_admin: "admin",
    requires_command_role: "operator",
}


def guarded(app: Litestar) -> list[tuple[str, str, object]]:
    """(method, a concrete path, its role guard) of every guarded route."""
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            guards = [g for g in (handler.guards or []) if g in ROLE_OF]
            for method in handler.http_methods:
                if method in ("HEAD", "OPTIONS"):
                    continue
                # Path parameters get a value of their type that names nothing real.
                path = re.sub(r"\{[^}:]+:int\}", "1", route.path)
                path = re.sub(r"\{[^}]+\}", "X", path)
                for g in guards:
                    out.append((method, path, g))
    return out


def test_every_route_states_its_role_and_the_role_below_gets_403(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        from ampgate.api import create_app

        app = create_app(a.node.services())
        routes = guarded(app)
        assert len(routes) > 20
        schema = app.openapi_schema.to_schema()
        for method, path, guard in routes:
            role = ROLE_OF[guard]  # type: ignore[index]
            template = next(
                p for p in schema["paths"] if re.sub(r"\{[^}]+\}", "X", p) == re.sub(r"/1(?=/|$)", "/X", path)
            )
            op = schema["paths"][template][method.lower()]
            stated = f"{op.get('summary', '')} {op.get('description', '')}"
            assert f"role: {role}" in stated.lower(), f"{method} {template} does not state its role ({role})"
            below = BELOW.get(guard)  # type: ignore[call-overload]
            if below is None:
                continue
            r = await a.client.request(method, path, headers=a.auth(below), json={})
            assert r.status_code == 403, f"{method} {path} as {below}: {r.status_code}"
            assert r.json()["code"] == "forbidden"

    api(scenario)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_no_token_is_401_on_every_guarded_route(api: Scenario, role: str) -> None:
    async def scenario(a: Api) -> None:
        from ampgate.api import create_app

        for method, path, guard in guarded(create_app(a.node.services())):
            if ROLE_OF[guard] != role:  # type: ignore[index]
                continue
            r = await a.client.request(method, path, json={})
            assert r.status_code == 401, f"{method} {path}: {r.status_code}"

    api(scenario)
