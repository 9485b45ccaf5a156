"""Logs and diagnostics end to end against a real node, with charge points written with the `ocpp` package
(schema validation on): the operator asks through the API, the charger gets GetLog (2.0.1, 1.6 security
extension) or GetDiagnostics (1.6 without GetLog: the node falls back), answers, reports Uploading / Uploaded,
and uploads the file over HTTP to the one-time URL it was given (a raw PUT, a multipart POST); the operator then
reads the timeline and downloads the file with its SHA-256. A used token, an oversize upload and a viewer's
request are refused."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.ocpp_clients import ocpp_charge_point

# Chargers are told URLs under this base (--public-base-url); the test reaches the same listener on loopback.
BASE = "http://uploads.example.test"
MAX_UPLOAD = 64 * 1024


class Charger201(ChargePoint201):
    """Accepts a DiagnosticsLog, rejects a SecurityLog; remembers each request."""

    requests: list[dict[str, Any]]

    @on(Action201.get_log)
    async def on_get_log(self, log, log_type, request_id, **_):
        self.requests.append({"log": log, "log_type": log_type, "request_id": request_id})
        if log_type == "SecurityLog":
            return result201.GetLog(status="Rejected")
        return result201.GetLog(status="Accepted", filename="station.log")


class Charger16Plain(ChargePoint16):
    """A 1.6 charger without the security extension: it has GetDiagnostics, and no GetLog handler (the
    `ocpp` package answers GetLog with a CALLERROR)."""

    requests: list[dict[str, Any]]

    @on(Action16.get_diagnostics)
    async def on_get_diagnostics(self, location, **kwargs):
        self.requests.append({"location": location, **kwargs})
        return result16.GetDiagnostics(file_name="diag.zip")


class Charger16Secure(ChargePoint16):
    """A 1.6 charger with the security extension's GetLog."""

    requests: list[dict[str, Any]]

    @on(Action16.get_log)
    async def on_get_log(self, log, log_type, request_id, **_):
        self.requests.append({"log": log, "log_type": log_type, "request_id": request_id})
        return result16.GetLog(status="Accepted", filename="secure.log")


def running(cp_class, node, charger_id: str, protocol: str):
    cp_class.requests = []
    return ocpp_charge_point(cp_class, node.ocpp_url, charger_id, protocol, boot=True)


def api(node, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token or node.admin_token}"}
    return httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30)


def reachable(node, url: str) -> str:
    """The upload URL the charger was told, on the loopback address the test can reach."""
    assert url.startswith(f"{BASE}/public/v1/uploads/"), url
    return url.replace(BASE, f"http://127.0.0.1:{node.public_port}", 1)


async def timeline_when(http: httpx.AsyncClient, path: str, last: str, seconds: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        body = (await http.get(path)).json()
        if body["status"] == last or asyncio.get_running_loop().time() > deadline:
            return body
        await asyncio.sleep(0.05)


def viewer_token(node) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ampgate.cli", "token", "create", "--role", "viewer", "--db", str(node.db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_201_charger_uploads_its_log_with_a_put_and_the_operator_downloads_it(node_factory):
    node = node_factory("--public-base-url", BASE, "--max-upload-bytes", str(MAX_UPLOAD))
    data = os.urandom(40_000)

    async def scenario():
        async with api(node) as http, running(Charger201, node, "LOG201", "ocpp2.0.1") as cp:
            r = await http.post(
                "/chargers/LOG201/logs",
                json={"log_type": "DiagnosticsLog", "oldest_at": "2026-11-29T00:00:00+01:00", "retries": 2},
            )
            assert r.status_code == 201, r.text
            created = r.json()
            assert r.headers["location"] == f"/api/v1/chargers/LOG201/logs/{created['id']}"
            assert created["command"] == "GetLog" and created["status"] == "Accepted"
            assert created["charger_filename"] == "station.log" and created["upload_state"] == "open"
            sent = cp.requests[0]
            assert sent["request_id"] == created["request_id"] and sent["log_type"] == "DiagnosticsLog"
            assert sent["log"]["oldest_timestamp"] == "2026-11-28T23:00:00.000Z"
            url = reachable(node, sent["log"]["remote_location"])
            token = url.rsplit("/", 1)[-1]
            assert token not in created["location"]

            rid = created["request_id"]
            await cp.call(call201.LogStatusNotification(status="Uploading", request_id=rid), suppress=False)
            async with httpx.AsyncClient(timeout=30) as charger_http:
                put = await charger_http.put(url, content=data)
                assert put.status_code == 200, put.text
                assert put.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                again = await charger_http.put(url, content=b"second try")
                assert again.status_code == 409 and again.json()["code"] == "upload_used"
            await cp.call(call201.LogStatusNotification(status="Uploaded", request_id=rid), suppress=False)

            path = f"/chargers/LOG201/logs/{created['id']}"
            done = await timeline_when(http, path, "Uploaded")
            assert [e["status"] for e in done["timeline"]] == [
                "Requested",
                "Accepted",
                "Uploading",
                "Uploaded",
            ]
            assert done["file"]["sha256"] == hashlib.sha256(data).hexdigest()
            assert done["file"]["size"] == len(data) and done["upload_state"] == "received"
            f = await http.get(f"{path}/file")
            assert f.status_code == 200 and hashlib.sha256(f.content).hexdigest() == done["file"]["sha256"]

            # A SecurityLog the charger rejects: the request says so and its URL takes nothing.
            r = await http.post("/chargers/LOG201/logs", json={"log_type": "SecurityLog"})
            assert r.status_code == 201 and r.json()["status"] == "Rejected"
            assert r.json()["upload_state"] == "void"
            void_url = reachable(node, cp.requests[1]["log"]["remote_location"])
            async with httpx.AsyncClient(timeout=30) as charger_http:
                refused = await charger_http.put(void_url, content=b"nope")
            assert refused.status_code == 404

            listed = (await http.get("/chargers/LOG201/logs")).json()
            assert [i["status"] for i in listed["items"]] == ["Rejected", "Uploaded"]
            assert listed["next_cursor"] is None

    asyncio.run(scenario())


def test_a_16_charger_without_getlog_gets_getdiagnostics_and_uploads_multipart(node_factory):
    node = node_factory("--public-base-url", BASE, "--max-upload-bytes", str(MAX_UPLOAD))
    data = os.urandom(30_000)

    async def scenario():
        async with api(node) as http, running(Charger16Plain, node, "DIAG16", "ocpp1.6") as cp:
            r = await http.post("/chargers/DIAG16/logs", json={})
            assert r.status_code == 201, r.text
            created = r.json()
            assert created["command"] == "GetDiagnostics" and created["status"] == "Accepted"
            assert created["charger_filename"] == "diag.zip"
            url = reachable(node, cp.requests[0]["location"])

            await cp.call(call16.DiagnosticsStatusNotification(status="Uploading"), suppress=False)
            async with httpx.AsyncClient(timeout=30) as charger_http:
                posted = await charger_http.post(url, files={"file": ("diag.zip", data, "application/zip")})
                assert posted.status_code == 200, posted.text
                assert posted.json()["sha256"] == hashlib.sha256(data).hexdigest()
            await cp.call(call16.DiagnosticsStatusNotification(status="Uploaded"), suppress=False)

            path = f"/chargers/DIAG16/logs/{created['id']}"
            done = await timeline_when(http, path, "Uploaded")
            assert [e["status"] for e in done["timeline"]] == [
                "Requested",
                "Accepted",
                "Uploading",
                "Uploaded",
            ]
            assert done["file"]["name"] == "diag.zip"
            f = await http.get(f"{path}/file")
            assert f.content == data

            # Through the generic command API, without a location: the node fills in its own.
            r = await http.post("/chargers/DIAG16/commands/GetDiagnostics", json={"retries": 1})
            assert r.status_code == 200 and r.json() == {"fileName": "diag.zip"}
            assert cp.requests[1]["retries"] == 1
            oversize_url = reachable(node, cp.requests[1]["location"])
            async with httpx.AsyncClient(timeout=30) as charger_http:
                big = await charger_http.put(oversize_url, content=os.urandom(MAX_UPLOAD + 1))
                assert big.status_code == 413 and big.json()["code"] == "upload_too_large"
            # An operator's FTP location goes to the charger unchanged (the node serves no FTP).
            ftp = "ftp://diag:secret@ftp.example.test/incoming/"
            r = await http.post("/chargers/DIAG16/logs", json={"location": ftp})
            assert r.status_code == 201 and r.json()["upload_state"] is None
            assert r.json()["location"] == "ftp://diag:***@ftp.example.test/incoming/"
            assert cp.requests[2]["location"] == ftp

            listed = (await http.get("/chargers/DIAG16/logs")).json()["items"]
            assert [i["command"] for i in listed] == ["GetDiagnostics"] * 3
            assert listed[1]["file"] is None  # the oversize upload left nothing

    asyncio.run(scenario())


def test_a_16_security_charger_gets_getlog_and_its_log_status_notifications_are_tracked(node_factory):
    node = node_factory("--public-base-url", BASE)

    async def scenario():
        async with api(node) as http, running(Charger16Secure, node, "SEC16", "ocpp1.6") as cp:
            r = await http.post("/chargers/SEC16/logs", json={"log_type": "SecurityLog"})
            assert r.status_code == 201, r.text
            created = r.json()
            assert created["command"] == "GetLog" and created["protocol"] == "ocpp1.6"
            rid = created["request_id"]
            assert cp.requests[0]["request_id"] == rid and cp.requests[0]["log_type"] == "SecurityLog"
            for status in ("Uploading", "UploadFailure"):
                await cp.call(call16.LogStatusNotification(status=status, request_id=rid), suppress=False)
            done = await timeline_when(http, f"/chargers/SEC16/logs/{created['id']}", "UploadFailure")
            assert [e["status"] for e in done["timeline"]][-2:] == ["Uploading", "UploadFailure"]

    asyncio.run(scenario())


def test_requesting_logs_needs_an_operator(node):
    viewer = viewer_token(node)

    async def scenario():
        async with api(node, viewer) as http:
            posted = await http.post("/chargers/ANY/logs", json={})
            listed = await http.get("/chargers/ANY/logs")
            return posted, listed

    posted, listed = asyncio.run(scenario())
    assert posted.status_code == 403
    assert listed.status_code == 404 and listed.json()["field"] == "id"  # a viewer may read; ANY is unknown
