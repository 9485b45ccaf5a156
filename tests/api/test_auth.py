"""Bearer tokens and roles: 401 without or with a bad token, 403 for a role too low, public health and schema."""

from __future__ import annotations

import pytest

from .conftest import Api, Scenario

CHARGERS = "/api/v1/chargers"
NEW = {"id": "CP-NEW", "password": "0123456789abcdef"}


def test_no_token_is_401_with_a_bearer_challenge(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        body = r.json()
        assert body["code"] == "unauthorized" and body["message"]
        assert "field" not in body

    api(scenario)


@pytest.mark.parametrize(
    "header",
    ["Bearer agt_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "agt_token-without-scheme"],
)
def test_bad_token_is_401(api: Scenario, header: str) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS, headers={"Authorization": header})
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"

    api(scenario)


def test_scheme_is_case_insensitive(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS, headers={"Authorization": f"bearer {a.tokens['viewer']}"})
        assert r.status_code == 200

    api(scenario)


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_below_admin_cannot_register_a_charger(api: Scenario, role: str) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(CHARGERS, json=NEW, headers=a.auth(role))
        assert r.status_code == 403
        assert r.json()["code"] == "forbidden"
        assert a.node.registered == []
        assert a.node.chargers.get("CP-NEW") is None

    api(scenario)


def test_admin_registers_a_charger(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(CHARGERS, json=NEW, headers=a.auth("admin"))
        assert r.status_code == 201, r.text
        assert r.json()["id"] == "CP-NEW"

    api(scenario)


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_every_role_reads(api: Scenario, role: str) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(CHARGERS, headers=a.auth(role))
        assert r.status_code == 200

    api(scenario)


def test_a_token_created_while_serving_works_at_once(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        from ampgate.store import ApiTokenRepository, Store

        cli = Store(a.node.store.path)
        try:
            token = ApiTokenRepository(cli).create("viewer")
        finally:
            cli.close()
        r = await a.client.get(CHARGERS, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200

    api(scenario)


def test_health_needs_no_token(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get("/api/v1/health")
        assert r.status_code == 200
        assert r.json() == a.node.health.report()

    api(scenario)


def test_openapi_needs_no_token_and_lists_the_routes(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get("/api/v1/schema/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        assert doc["openapi"].startswith("3.")
        assert {"/api/v1/health", "/api/v1/chargers", "/api/v1/chargers/{id}"} <= set(doc["paths"])
        ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
        assert {"health", "list_chargers", "get_charger", "register_charger"} <= ops
        # The root of the schema path serves it too.
        root = await a.client.get("/api/v1/schema")
        assert root.status_code == 200

    api(scenario)


def test_unknown_paths_are_404_in_our_shape(api: Scenario) -> None:
    """Routing happens before auth (the route list is public anyway, in the schema)."""

    async def scenario(a: Api) -> None:
        for headers in ({}, a.auth("viewer")):
            r = await a.client.get("/api/v1/nope", headers=headers)
            assert r.status_code == 404
            assert r.json()["code"] == "not_found"

    api(scenario)


def test_wrong_method_is_405_in_our_shape(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.delete("/api/v1/chargers", headers=a.auth("admin"))
        assert r.status_code == 405
        assert r.json()["code"] == "method_not_allowed"

    api(scenario)
