"""/api/v1/demand-response/events over the real service and repository, and /api/v1/sites/{id}/load over the
real (not running) ticker: every route, the roles (operators change, viewers read), bad input named and nothing
half-applied, cancel idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ampgate.events import DemandResponseCreated, DemandResponseEnded

from .conftest import Api

EVENTS = "/api/v1/demand-response/events"
SITES = "/api/v1/sites"


def at(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def drained(a: Api) -> list[Any]:
    out = []
    while (e := a.node.events.receive_nowait()) is not None:
        out.append(e)
    return out


async def site(a: Api) -> None:
    r = await a.client.post(
        SITES, json={"id": "AMS", "phase_limits_a": [200, 200, 200]}, headers=a.auth("admin")
    )
    assert r.status_code == 201, r.text
    r = await a.client.post(
        f"{SITES}/AMS/nodes", json={"id": "F1", "parent_id": "AMS", "limit_kw": 50}, headers=a.auth("admin")
    )
    assert r.status_code == 201, r.text


def test_operators_schedule_list_read_and_cancel_events(api: Any) -> None:
    async def scenario(a: Api) -> None:
        await site(a)
        drained(a)
        body = {"node_id": "AMS", "limit_kw": 40, "starts_at": at(10), "ends_at": at(70)}
        r = await a.client.post(EVENTS, json=body, headers=a.auth("operator"))
        assert r.status_code == 201, r.text
        ev = r.json()
        assert r.headers["location"] == f"{EVENTS}/{ev['id']}"
        assert (ev["node_id"], ev["limit_kw"], ev["state"], ev["source"]) == ("AMS", 40.0, "scheduled", "api")
        created = [e for e in drained(a) if isinstance(e, DemandResponseCreated)]
        assert [(e.event_id, e.node_id, e.limit_kw) for e in created] == [(ev["id"], "AMS", 40.0)]

        # A network-wide reduction running now.
        r = await a.client.post(
            EVENTS,
            json={"node_id": None, "reduce_pct": 20, "starts_at": at(-1), "ends_at": at(30)},
            headers=a.auth("operator"),
        )
        assert r.status_code == 201, r.text
        second = r.json()
        assert second["state"] == "active"

        r = await a.client.get(EVENTS, headers=a.auth("viewer"))
        assert [e["id"] for e in r.json()["items"]] == [second["id"], ev["id"]]
        r = await a.client.get(EVENTS, params={"state": "scheduled"}, headers=a.auth("viewer"))
        assert [e["id"] for e in r.json()["items"]] == [ev["id"]]
        r = await a.client.get(EVENTS, params={"limit": 1}, headers=a.auth("viewer"))
        page = r.json()
        assert [e["id"] for e in page["items"]] == [second["id"]] and page["next_cursor"]
        r = await a.client.get(
            EVENTS, params={"limit": 1, "cursor": page["next_cursor"]}, headers=a.auth("viewer")
        )
        assert [e["id"] for e in r.json()["items"]] == [ev["id"]] and r.json()["next_cursor"] is None

        r = await a.client.post(f"{EVENTS}/{ev['id']}/cancel", headers=a.auth("operator"))
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled"
        ended = [e for e in drained(a) if isinstance(e, DemandResponseEnded)]
        assert [(e.event_id, e.cancelled) for e in ended] == [(ev["id"], True)]
        again = await a.client.post(f"{EVENTS}/{ev['id']}/cancel", headers=a.auth("operator"))
        assert again.status_code == 200 and again.json() == r.json()
        assert drained(a) == []
        r = await a.client.get(f"{EVENTS}/{ev['id']}", headers=a.auth("viewer"))
        assert r.json()["state"] == "cancelled"

    api(scenario)


def test_bad_events_are_refused_naming_the_field_and_nothing_is_created(api: Any) -> None:
    async def scenario(a: Api) -> None:
        await site(a)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"node_id": "AMS", "starts_at": at(1), "ends_at": at(2)}, "limit_kw"),
            (
                {"node_id": "AMS", "limit_kw": 5, "reduce_kw": 3, "starts_at": at(1), "ends_at": at(2)},
                "reduce_kw",
            ),
            ({"node_id": "AMS", "limit_kw": -5, "starts_at": at(1), "ends_at": at(2)}, "limit_kw"),
            ({"node_id": "AMS", "reduce_pct": 150, "starts_at": at(1), "ends_at": at(2)}, "reduce_pct"),
            ({"node_id": "AMS", "limit_kw": 5, "starts_at": at(10), "ends_at": at(5)}, "ends_at"),
            ({"node_id": "AMS", "limit_kw": 5, "starts_at": at(-10), "ends_at": at(-5)}, "ends_at"),
            ({"node_id": "NOPE", "limit_kw": 5, "starts_at": at(1), "ends_at": at(2)}, "node_id"),
        ]
        for body, field in cases:
            r = await a.client.post(EVENTS, json=body, headers=a.auth("operator"))
            assert r.status_code == 422, (body, r.text)
            assert r.json().get("field") == field, (body, r.json())
        r = await a.client.post(EVENTS, json={"node_id": "AMS", "limit_kw": 5}, headers=a.auth("operator"))
        assert r.status_code == 400 or r.status_code == 422, r.text
        r = await a.client.get(EVENTS, headers=a.auth("viewer"))
        assert r.json()["items"] == []
        r = await a.client.get(EVENTS, params={"state": "soon"}, headers=a.auth("viewer"))
        assert r.status_code == 422 and r.json()["field"] == "state"
        r = await a.client.post(f"{EVENTS}/999/cancel", headers=a.auth("operator"))
        assert r.status_code == 404 and r.json()["field"] == "event_id"
        r = await a.client.get(f"{EVENTS}/999/achievement", headers=a.auth("viewer"))
        assert r.status_code == 404

    api(scenario)


def test_roles_viewers_read_operators_change(api: Any) -> None:
    async def scenario(a: Api) -> None:
        await site(a)
        body = {"node_id": "AMS", "limit_kw": 40, "starts_at": at(10), "ends_at": at(70)}
        r = await a.client.post(EVENTS, json=body, headers=a.auth("viewer"))
        assert r.status_code == 403
        r = await a.client.post(EVENTS, json=body, headers=a.auth("admin"))
        assert r.status_code == 201
        r = await a.client.post(f"{EVENTS}/{r.json()['id']}/cancel", headers=a.auth("viewer"))
        assert r.status_code == 403
        for path in (EVENTS, f"{SITES}/AMS/load", f"{SITES}/AMS/load/history"):
            r = await a.client.get(path)
            assert r.status_code == 401, path
            r = await a.client.get(path, headers=a.auth("viewer"))
            assert r.status_code == 200, (path, r.text)

    api(scenario)


def test_site_load_shows_nodes_and_limits_after_a_tick_and_history_checks_its_window(api: Any) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.get(f"{SITES}/NOPE/load", headers=a.auth("viewer"))
        assert r.status_code == 404 and r.json()["field"] == "site_id"
        await site(a)
        r = await a.client.get(f"{SITES}/AMS/load", headers=a.auth("viewer"))
        assert r.json()["nodes"] == [] and r.json()["allocations"] == []
        await a.node.load.tick()
        r = await a.client.get(f"{SITES}/AMS/load", headers=a.auth("viewer"))
        view = r.json()
        assert [(n["id"], n["parent_id"], n["limit_a"], n["limit_kw"]) for n in view["nodes"]] == [
            ("AMS", None, [200.0, 200.0, 200.0], None),
            ("F1", "AMS", [None, None, None], 50.0),
        ]
        # A demand-response limit on F1 running now shows on the next tick.
        r = await a.client.post(
            EVENTS,
            json={"node_id": "F1", "limit_kw": 20, "starts_at": at(-1), "ends_at": at(10)},
            headers=a.auth("operator"),
        )
        assert r.status_code == 201
        await a.node.load.tick()
        view = (await a.client.get(f"{SITES}/AMS/load", headers=a.auth("viewer"))).json()
        f1 = next(n for n in view["nodes"] if n["id"] == "F1")
        assert (f1["limit_kw"], f1["demand_response_kw"]) == (20.0, 20.0)
        event = (await a.client.get(f"{EVENTS}/{r.json()['id']}", headers=a.auth("viewer"))).json()
        assert event["baseline_kw"] == {"F1": 0.0} and event["target_kw"] == {"F1": 20.0}

        hist = f"{SITES}/AMS/load/history"
        for params, field in (
            ({"step": 90}, "step"),
            ({"since": at(0), "until": at(-10)}, "until"),
            ({"since": at(-100000), "until": at(0), "step": 60}, "step"),
        ):
            r = await a.client.get(hist, params=params, headers=a.auth("viewer"))
            assert r.status_code == 422 and r.json()["field"] == field, (params, r.text)
        r = await a.client.get(hist, headers=a.auth("viewer"))
        assert r.json() == {"step_s": 60, "points": []}

    api(scenario)
