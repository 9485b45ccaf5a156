"""/api/v1/chargers/{id}/logs in-process: roles (viewer reads, operator requests and downloads), bad input named
by its field before anything is sent or stored, newest-first pages with the timeline and file, the file served
with its SHA-256, and 404s. Requests reaching real chargers are tested end to end in tests/integration."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from ampgate.logs import NewLogRequest
from ampgate.logs.repository import FileInfo
from ampgate.store.hashing import token_digest

from .conftest import Api, Scenario

AT = datetime(2026, 11, 30, 8, 0, 0, tzinfo=UTC)


async def add(a: Api, charger_id: str, token: str | None = None) -> int:
    row = await a.node.log_requests.create(
        NewLogRequest(
            charger_id=charger_id,
            protocol="ocpp2.0.1",
            command="GetLog",
            log_type="DiagnosticsLog",
            request_id=None,
            location="http://public.test/public/v1/uploads/{token}",
            upload_token_hash=None if token is None else token_digest(token),
            upload_expires_at=None if token is None else AT + timedelta(days=1),
            at=AT,
        )
    )
    return row.id


async def register(a: Api, charger_id: str) -> None:
    await a.node.chargers.register(charger_id, None)


def logs(charger_id: str) -> str:
    return f"/api/v1/chargers/{charger_id}/logs"


def test_requesting_needs_an_operator_and_bad_input_names_its_field(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await register(a, "CP")
        r = await a.client.post(logs("CP"), json={}, headers=a.auth("viewer"))
        assert r.status_code == 403
        for body, field in (
            ({"log_type": "KernelLog"}, "log_type"),
            ({"location": "gopher://x.test/"}, "location"),
            ({"location": "x" * 600}, "location"),
            ({"oldest_at": "2026-11-30T08:00:00Z", "latest_at": "2026-11-29T08:00:00Z"}, "latest_at"),
            ({"retries": -1}, "retries"),
            ({"retry_interval_s": "soon"}, "retry_interval_s"),
            ({"color": "red"}, "color"),
        ):
            # A location of the caller's choosing needs admin (ampgate.commands.roles); an admin's is validated.
            role = "admin" if "location" in body else "operator"
            r = await a.client.post(logs("CP"), json=body, headers=a.auth(role))
            assert r.status_code == 422 and r.json()["field"] == field, (body, r.json())
        r = await a.client.post(logs("CP"), json={"location": "ftp://x.test/"}, headers=a.auth("operator"))
        assert r.status_code == 403 and r.json()["field"] == "location"
        # Valid input reaches the charger, which the stand-in finds offline: nothing was stored.
        r = await a.client.post(logs("CP"), json={"log_type": "SecurityLog"}, headers=a.auth("operator"))
        assert r.status_code == 409 and r.json()["code"] == "charger_offline"
        # The generic command goes the same way for GetLog.
        r = await a.client.post(
            "/api/v1/chargers/CP/commands/GetLog",
            json={"logType": "DiagnosticsLog", "requestId": 1},
            headers=a.auth("operator"),
        )
        assert r.status_code == 409
        listed = await a.client.get(logs("CP"), headers=a.auth("viewer"))
        assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}

    api(scenario)


def test_requests_are_listed_newest_first_and_files_served_to_operators(api: Scenario, tmp_path) -> None:
    async def scenario(a: Api) -> None:
        await register(a, "CP")
        await register(a, "OTHER")
        first = await add(a, "CP", token="t1")
        second = await add(a, "CP")
        other = await add(a, "OTHER")
        body = b"log line\n" * 100
        path = tmp_path / "f.log"
        path.write_bytes(body)
        sha = hashlib.sha256(body).hexdigest()
        await a.node.log_requests.record_file(
            first, FileInfo(path=str(path), name="cp.log", size=len(body), sha256=sha, at=AT)
        )

        page = (await a.client.get(f"{logs('CP')}?limit=1", headers=a.auth("viewer"))).json()
        assert [i["id"] for i in page["items"]] == [second] and page["next_cursor"] == str(second)
        rest = await a.client.get(
            f"{logs('CP')}?limit=1&cursor={page['next_cursor']}", headers=a.auth("viewer")
        )
        item = rest.json()["items"][0]
        assert rest.json()["next_cursor"] is None and item["id"] == first
        assert item["timeline"] == [{"status": "Requested", "at": "2026-11-30T08:00:00Z"}]
        assert item["status"] == "Requested" and item["upload_state"] == "received"
        assert item["file"] == {
            "name": "cp.log",
            "size": len(body),
            "sha256": sha,
            "received_at": "2026-11-30T08:00:00Z",
        }
        assert item["location"].endswith("/uploads/{token}")
        one = await a.client.get(f"{logs('CP')}/{first}", headers=a.auth("viewer"))
        assert one.json() == item

        viewer = await a.client.get(f"{logs('CP')}/{first}/file", headers=a.auth("viewer"))
        assert viewer.status_code == 403
        got = await a.client.get(f"{logs('CP')}/{first}/file", headers=a.auth("operator"))
        assert got.status_code == 200 and got.content == body
        assert hashlib.sha256(got.content).hexdigest() == sha and sha in got.headers["etag"]
        assert "cp.log" in got.headers["content-disposition"]

        none_yet = await a.client.get(f"{logs('CP')}/{second}/file", headers=a.auth("operator"))
        assert none_yet.status_code == 404 and none_yet.json()["code"] == "not_uploaded"
        # Another charger's request is not this charger's.
        for path_ in (f"{logs('CP')}/{other}", f"{logs('CP')}/{other}/file", f"{logs('CP')}/9999"):
            r = await a.client.get(path_, headers=a.auth("operator"))
            assert r.status_code == 404 and r.json()["field"] == "log_id"
        unknown = await a.client.get(logs("NOBODY"), headers=a.auth("viewer"))
        assert unknown.status_code == 404 and unknown.json()["field"] == "id"
        bad = await a.client.get(f"{logs('CP')}?cursor=abc", headers=a.auth("viewer"))
        assert bad.status_code == 422 and bad.json()["field"] == "cursor"
        anonymous = await a.client.get(logs("CP"))
        assert anonymous.status_code == 401

    api(scenario)
