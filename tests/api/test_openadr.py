"""GET /api/v1/openadr: admins see whether a VEN runs and its state; lower roles get 403 (and test_roles covers
every route's role)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx

from ampgate.api import create_app

from .conftest import BASE_URL, Api, Scenario

PATH = "/api/v1/openadr"


class VenState:
    def status(self) -> dict[str, Any]:
        return {
            "configured": True,
            "vtn_url": "https://vtn.example/openadr3/3.0.1",
            "ven_name": "NL-AMP",
            "ven_id": "ven-1",
            "vtn_reachable": False,
            "last_poll_at": datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
            "last_contact_at": datetime(2026, 11, 30, 8, 50, tzinfo=UTC),
            "last_error": "VTN unreachable: ConnectError",
            "poll_interval_s": 60.0,
            "safe_mode_active": True,
            "safe_mode_since": datetime(2026, 11, 30, 8, 55, tzinfo=UTC),
            "programs": 1,
            "resources": 2,
            "subscriptions": 1,
            "events_mapped": 3,
            "limits_applied": 4,
            "rejects": 2,
            "reports_sent": 5,
            "tokens_fetched": 1,
        }


def test_without_a_ven_the_status_says_not_configured(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(PATH, headers=a.auth("admin"))
        assert r.status_code == 200, r.text
        assert r.json()["configured"] is False
        r = await a.client.get(PATH, headers=a.auth("operator"))
        assert r.status_code == 403

    api(scenario)


def test_an_admin_sees_the_vens_state(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        services = dataclasses.replace(a.node.services(), openadr=VenState())
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            r = await client.get(PATH, headers=a.auth("admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["configured"] is True and body["safe_mode_active"] is True
        assert body["last_poll_at"] == "2026-11-30T09:00:00Z"
        assert (body["events_mapped"], body["rejects"], body["vtn_reachable"]) == (3, 2, False)

    api(scenario)
