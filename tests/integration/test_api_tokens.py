"""API tokens on a real node: create (secret shown once), list (never a secret), revoke and expiry (401 from the
next request), last-used times, admin only; and the same through `ampgate token create|list|revoke` while the
node runs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.integration.test_api_node import cli_token


def cli(node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", *args, "--db", str(node.db)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_create_list_revoke_through_the_api(node):
    with node.api() as api:
        r = api.post("/tokens", json={"role": "operator", "label": "ci"})
        assert r.status_code == 201, r.text
        created = r.json()
        secret = created["token"]
        assert secret.startswith("agt_") and created["state"] == "active" and created["role"] == "operator"
        assert r.headers["Location"] == f"/api/v1/tokens/{created['id']}"
        assert node.get("/chargers", token=secret).status_code == 200

        listed = api.get("/tokens")
        assert listed.status_code == 200
        body = listed.text
        # Neither the secret nor its digest is ever listed again.
        assert secret not in body and hashlib.sha256(secret.encode()).hexdigest() not in body
        items = {t["id"]: t for t in listed.json()["items"]}
        assert "token" not in items[created["id"]] and items[created["id"]]["label"] == "ci"
        assert api.get(f"/tokens/{created['id']}").json()["state"] == "active"

        r = api.post(f"/tokens/{created['id']}/revoke")
        assert r.status_code == 200 and r.json()["state"] == "revoked" and r.json()["revoked_at"]
        # Refused from the very next request.
        assert node.get("/chargers", token=secret).status_code == 401
        again = api.post(f"/tokens/{created['id']}/revoke")
        assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
        missing = api.post("/tokens/999999/revoke")
        assert missing.status_code == 404 and missing.json()["field"] == "id"
        bad = api.post("/tokens", json={"role": "root"})
        assert bad.status_code == 422 and bad.json()["field"] == "role"
        past = api.post("/tokens", json={"role": "viewer", "expires_at": "2020-01-01T00:00:00Z"})
        assert past.status_code == 422 and past.json()["field"] == "expires_at"


def test_an_expired_token_is_refused_and_last_use_is_recorded(node):
    expires = datetime.now(UTC) + timedelta(seconds=3)
    with node.api() as api:
        r = api.post("/tokens", json={"role": "viewer", "expires_at": expires.isoformat()})
        assert r.status_code == 201, r.text
        token_id, secret = r.json()["id"], r.json()["token"]
        for _ in range(20):
            assert node.get("/chargers", token=secret).status_code == 200
        deadline = time.monotonic() + 5
        while api.get(f"/tokens/{token_id}").json()["last_used_at"] is None:
            assert time.monotonic() < deadline, "last_used_at never written"
            time.sleep(0.1)
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
        assert node.get("/chargers", token=secret).status_code == 401
        assert api.get(f"/tokens/{token_id}").json()["state"] == "expired"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_token_routes_are_admin_only(node, role):
    token = cli_token(node, role)
    with node.api(token) as api:
        for method, path, body in (
            ("GET", "/tokens", None),
            ("GET", "/tokens/1", None),
            ("POST", "/tokens", {"role": "admin"}),
            ("POST", "/tokens/1/revoke", None),
        ):
            r = api.request(method, path, json=body)
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (method, path, r.text)


def test_cli_lists_and_revokes_while_the_node_runs(node):
    out = cli(node, "create", "--role", "operator", "--label", "laptop", "--expires-in", "90d")
    assert out.returncode == 0, out.stderr
    secret = out.stdout.strip()
    assert node.get("/chargers", token=secret).status_code == 200
    listed = cli(node, "list")
    assert listed.returncode == 0 and secret not in listed.stdout
    line = next(ln for ln in listed.stdout.splitlines() if "laptop" in ln)
    token_id = line.split()[0]
    assert "operator" in line and "active" in line and "expires 20" in line
    revoked = cli(node, "revoke", token_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    assert node.get("/chargers", token=secret).status_code == 401
    assert cli(node, "revoke", "999999").returncode == 2
    assert cli(node, "create", "--role", "viewer", "--expires-in", "soon").returncode != 0


def test_an_open_event_stream_ends_once_its_token_is_revoked(node):
    with node.api() as admin:
        created = admin.post("/tokens", json={"role": "viewer", "label": "dashboard"}).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        with (
            httpx.Client(
                base_url=node.api_url, headers=headers, timeout=httpx.Timeout(30, read=12)
            ) as viewer,
            viewer.stream("GET", "/events/stream") as stream,
        ):
            assert stream.status_code == 200
            assert admin.post(f"/tokens/{created['id']}/revoke").status_code == 200
            started = time.monotonic()
            for _ in stream.iter_lines():  # ends when the node closes the stream (a read timeout raises)
                pass
            # Within the stream's recheck interval (ampgate.api.events.TOKEN_RECHECK_S, 5 s), plus slack.
            assert time.monotonic() - started < 9
        assert node.get("/events/stream", token=created["token"]).status_code == 401
