"""The security-event lists over a real store: newest first, per charger and fleet-wide, the critical filter
(the alert list), cursors, and the errors (unknown charger, bad inputs, no token)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ampgate.security import SecurityEventReport, SecurityEventRepository, is_critical

from .conftest import Api, Scenario

T0 = datetime(2026, 11, 30, 7, tzinfo=UTC)
EVENTS = "/api/v1/security-events"


async def seed(a: Api) -> None:
    await a.node.chargers.register("CP1", None)
    await a.node.chargers.register("CP2", None)
    repo = SecurityEventRepository(a.node.store)
    for i, (charger, kind) in enumerate(
        [("CP1", "StartupOfTheDevice"), ("CP1", "InvalidMessages"), ("CP2", "TamperDetectionActivated")]
    ):
        await repo.record(
            SecurityEventReport(
                charger_id=charger,
                type=kind,
                occurred_at=T0 + timedelta(minutes=i),
                tech_info=None if i else "boot",
                critical=is_critical(kind),
                received_at=T0 + timedelta(minutes=i, seconds=1),
            )
        )


def test_lists_filters_and_pages(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await seed(a)
        viewer = a.auth("viewer")
        every = (await a.client.get(EVENTS, headers=viewer)).json()
        assert [e["type"] for e in every["items"]] == [
            "TamperDetectionActivated",
            "InvalidMessages",
            "StartupOfTheDevice",
        ]
        assert every["next_cursor"] is None
        assert every["items"][2] == {
            "id": 1,
            "charger_id": "CP1",
            "type": "StartupOfTheDevice",
            "occurred_at": "2026-11-30T07:00:00Z",
            "tech_info": "boot",
            "critical": True,
            "received_at": "2026-11-30T07:00:01Z",
        }
        alerts = (await a.client.get(EVENTS, params={"critical": "true"}, headers=viewer)).json()
        assert [e["id"] for e in alerts["items"]] == [3, 1]
        first = (await a.client.get(EVENTS, params={"limit": 2}, headers=viewer)).json()
        assert [e["id"] for e in first["items"]] == [3, 2] and first["next_cursor"] == "2"
        rest = (await a.client.get(EVENTS, params={"limit": 2, "cursor": "2"}, headers=viewer)).json()
        assert [e["id"] for e in rest["items"]] == [1] and rest["next_cursor"] is None
        window = {"since": "2026-11-30T07:01:00Z", "until": "2026-11-30T07:02:00"}  # a zoneless time is UTC
        assert [
            e["id"] for e in (await a.client.get(EVENTS, params=window, headers=viewer)).json()["items"]
        ] == [2]

        mine = (await a.client.get("/api/v1/chargers/CP1/security-events", headers=viewer)).json()
        assert [e["id"] for e in mine["items"]] == [2, 1]
        crit = await a.client.get(
            "/api/v1/chargers/CP1/security-events", params={"critical": "false"}, headers=viewer
        )
        assert [e["id"] for e in crit.json()["items"]] == [2]

    api(scenario)


def test_errors(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await seed(a)
        viewer = a.auth("viewer")
        unknown = await a.client.get("/api/v1/chargers/NOPE/security-events", headers=viewer)
        assert unknown.status_code == 404 and unknown.json()["field"] == "id"
        for params, field in (
            ({"since": "yesterday"}, "since"),
            ({"cursor": "abc"}, "cursor"),
            ({"limit": "0"}, "limit"),
            ({"critical": "maybe"}, "critical"),
        ):
            r = await a.client.get(EVENTS, params=params, headers=viewer)
            assert r.status_code == 422 and r.json()["field"] == field, (params, r.json())
        assert (await a.client.get(EVENTS)).status_code == 401

    api(scenario)
