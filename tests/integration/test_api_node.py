"""The HTTP API of a real node: tokens made by the CLI while the node runs, roles, OpenAPI."""

from __future__ import annotations

import subprocess
import sys

import httpx


def cli_token(node, role: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", role, "--db", str(node.db)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()


def test_first_start_prints_an_admin_token_in_the_banner(node):
    assert node.admin_token and node.admin_token.startswith("agt_")
    assert node.admin_token in node.log()
    assert f"ws://127.0.0.1:{node.ocpp_port}/ocpp/{{chargePointId}}" in node.log()


def test_cli_token_works_at_once_on_a_running_node_and_roles_apply(node):
    viewer = cli_token(node, "viewer")
    assert node.get("/chargers", token=viewer).status_code == 200
    with node.api(viewer) as api:
        r = api.post("/chargers", json={"id": "NOPE"})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    admin = cli_token(node, "admin")
    with node.api(admin) as api:
        assert api.post("/chargers", json={"id": "YES"}).status_code == 201
        assert api.post("/chargers", json={"id": "YES"}).status_code == 200


def test_missing_or_bad_token_is_401(node):
    r = httpx.get(f"{node.api_url}/chargers", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert node.get("/chargers", token="agt_not-a-real-token").status_code == 401


def test_cli_rejects_a_bad_role(node):
    out = subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", "root", "--db", str(node.db)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0 and "role" in out.stderr


def test_validation_errors_name_the_field(node):
    with node.api() as api:
        r = api.post("/chargers", json={"id": "bad:id"})
        assert r.status_code == 422 and r.json()["field"] == "id"
        r = api.post("/chargers", json={"id": "CPX", "password": "short"})
        assert r.status_code == 422 and r.json()["field"] == "password"
        r = api.get("/chargers?limit=0")
        assert r.status_code == 422 and r.json()["field"] == "limit"
        assert api.get("/chargers/NOBODY").status_code == 404


def test_openapi_is_served_without_a_token(node):
    r = httpx.get(f"{node.api_url}/schema/openapi.json", timeout=10)
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/chargers" in paths and "/api/v1/health" in paths


def test_ready_file_is_readable_by_its_owner_only(node, tmp_path):
    # It holds the first admin token. Created with 0600 (not chmod-ed after), so no umask widens it.
    (ready,) = tmp_path.glob("ready-*.json")
    assert ready.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("ready-*.json.tmp"))
