"""GET /api/v1/sites/{id}/availability and …/occupancy over the real service and tables: counts from the
connector statuses and presence (an offline charger's connectors count offline), the chargers placed, unknown
headroom as null, 404 for an unknown site, 422 naming since, until or step, and viewers may read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ampgate.store import ConnectorStatusRepository
from ampgate.store.connector_status import StatusReport

from .conftest import Api, FakePresence, Scenario

SITES = "/api/v1/sites"


async def seed(a: Api) -> None:
    admin = a.auth("admin")
    r = await a.client.post(SITES, json={"id": "S1", "phase_limits_a": [63, 63, 63]}, headers=admin)
    assert r.status_code == 201, r.text
    statuses = ConnectorStatusRepository(a.node.store)
    now = datetime.now(UTC)
    for charger, online, connectors in (
        ("CP1", True, [(1, "Available"), (2, "Charging")]),
        ("CP2", True, [(1, "Faulted"), (2, "Unavailable")]),
        ("CP3", False, [(1, "Available")]),
    ):
        await a.node.chargers.register(charger, None)
        r = await a.client.put(
            f"/api/v1/chargers/{charger}/placement",
            json={"node_id": "S1", "phases": "L1", "max_a": 16},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        for connector, status in connectors:
            statuses.record(
                StatusReport(
                    charger_id=charger,
                    evse_id=1,
                    connector_id=connector,
                    protocol="ocpp2.0.1",
                    status=status,
                    error_code=None,
                    at=now,
                )
            )
        a.node.presence[charger] = FakePresence(online, "ocpp2.0.1", now if online else None, now)
    await a.node.store.write(lambda db: None)


def test_a_sites_availability(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await seed(a)
        r = await a.client.get(f"{SITES}/S1/availability", headers=a.auth("viewer"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: v for k, v in body.items() if k.startswith("connectors_")} == {
            "connectors_free": 1,
            "connectors_in_use": 1,
            "connectors_faulted": 1,
            "connectors_unavailable": 1,
            "connectors_offline": 1,
            "connectors_total": 5,
        }
        assert body["headroom_kw"] is None and body["site_id"] == "S1" and body["at"].endswith("Z")
        assert [(c["charger_id"], c["online"]) for c in body["chargers"]] == [
            ("CP1", True),
            ("CP2", True),
            ("CP3", False),
        ]
        assert body["chargers"][2]["connectors"] == [
            {"evse_id": 1, "connector_id": 1, "status": "Available", "state": "offline"}
        ]
        # The charger comes back: the next answer counts it (presence is read at the time of the answer).
        a.node.presence["CP3"] = FakePresence(True, "ocpp2.0.1", datetime.now(UTC), datetime.now(UTC))
        body = (await a.client.get(f"{SITES}/S1/availability", headers=a.auth("viewer"))).json()
        assert (body["connectors_free"], body["connectors_offline"]) == (2, 0)

        r = await a.client.get(f"{SITES}/NOPE/availability", headers=a.auth("viewer"))
        assert (r.status_code, r.json()["field"]) == (404, "site_id")
        assert (await a.client.get(f"{SITES}/S1/availability")).status_code == 401

    api(scenario)


def test_occupancy_series_and_bad_windows(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await seed(a)
        viewer = a.auth("viewer")
        await a.client.get(f"{SITES}/S1/availability", headers=viewer)  # counted from now on
        r = await a.client.get(f"{SITES}/S1/occupancy", headers=viewer)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["step_s"] == 3600
        # The hour in progress as far as it has gone (two hours if one ended between the requests).
        points = body["points"]
        assert 1 <= len(points) <= 2
        point = points[-1]
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        assert datetime.fromisoformat(point["at"]) in (hour, hour - timedelta(hours=1))
        assert set(point) == {
            "at",
            "in_use_s",
            "free_s",
            "faulted_s",
            "unavailable_s",
            "offline_s",
            "occupancy",
        }

        for query, field in (
            ("since=yesterday", "since"),
            ("until=2026-13-01T00:00:00Z", "until"),
            ("since=2026-11-30T10:00:00Z&until=2026-11-30T09:00:00Z", "until"),
            ("since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
            ("step=1800", "step"),
            ("step=hourly", "step"),
        ):
            r = await a.client.get(f"{SITES}/S1/occupancy?{query}", headers=viewer)
            assert (r.status_code, r.json().get("field")) == (422, field), (query, r.text)
        r = await a.client.get(f"{SITES}/NOPE/occupancy", headers=viewer)
        assert (r.status_code, r.json()["field"]) == (404, "site_id")

    api(scenario)
