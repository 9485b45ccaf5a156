"""/api/v1/sites/{id}/maintenance-windows and /api/v1/chargers/{id}/tags over the stand-in: PUT replaces, GET
reads (viewers), only admins write, every refusal names its field and changes nothing, the events follow real
changes only, windows go with their site, and the charger read shows its tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ampgate.events import ChargerTagsChanged, SiteMaintenanceWindowsChanged

from .conftest import Api, Scenario

SITES = "/api/v1/sites"


def windows(site: str) -> str:
    return f"{SITES}/{site}/maintenance-windows"


def tags(charger: str) -> str:
    return f"/api/v1/chargers/{charger}/tags"


def events(a: Api) -> list[Any]:
    out = []
    while (e := a.node.events.receive_nowait()) is not None:
        out.append(e)
    return out


def test_maintenance_windows(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        admin, viewer = a.auth("admin"), a.auth("viewer")
        r = await a.client.post(
            SITES,
            json={"id": "AMS", "phase_limits_a": [80, 80, 80], "time_zone": "Europe/Amsterdam"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        r = await a.client.get(windows("AMS"), headers=viewer)
        assert r.status_code == 200, r.text
        empty = r.json()
        assert (empty["windows"], empty["open_now"], empty["next"], empty["updated_at"]) == (
            [],
            None,
            None,
            None,
        )
        events(a)

        # Every minute for a week: open now whatever the time, and the next starts within a minute.
        body = {
            "windows": [
                {"cron": "30 1 * * sun", "duration_s": 7200},
                {"cron": "* * * * *", "duration_s": 604800},
            ]
        }
        r = await a.client.put(windows("AMS"), json=body, headers=admin)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["windows"] == body["windows"] and got["time_zone"] == "Europe/Amsterdam"
        now = datetime.now(UTC)
        assert got["open_now"] is not None
        opened = datetime.fromisoformat(got["open_now"]["start_at"])
        assert opened <= now < datetime.fromisoformat(got["open_now"]["end_at"])
        assert 0 <= (datetime.fromisoformat(got["next"]["start_at"]) - now).total_seconds() <= 61
        assert [(type(e), e.site_id, e.windows) for e in events(a)] == [
            (SiteMaintenanceWindowsChanged, "AMS", 2)
        ]
        r = await a.client.put(windows("AMS"), json=body, headers=admin)
        assert r.status_code == 200 and events(a) == []  # the same list: no event
        assert (await a.client.get(windows("AMS"), headers=viewer)).json()["windows"] == body["windows"]

        for bad, field in (
            ({"windows": [{"cron": "0 2 * * * *", "duration_s": 60}]}, "windows[0].cron"),
            (
                {
                    "windows": [
                        {"cron": "0 2 * * *", "duration_s": 60},
                        {"cron": "0 0 31 2 *", "duration_s": 60},
                    ]
                },
                "windows[1].cron",
            ),
            ({"windows": [{"cron": "0 2 * * *", "duration_s": 30}]}, "windows[0].duration_s"),
            ({"windows": [{"cron": "0 2 * * *", "duration_s": 60}] * 33}, "windows"),
            ({"windows": [{"cron": "0 2 * * *"}]}, "windows[0].duration_s"),
            ({"windows": [{"cron": "0 2 * * *", "duration_s": 60, "extra": 1}]}, "windows[0].extra"),
        ):
            r = await a.client.put(windows("AMS"), json=bad, headers=admin)
            assert r.status_code == 422, r.text
            assert r.json()["field"] == field, (bad, r.json())
        assert (await a.client.get(windows("AMS"), headers=viewer)).json()["windows"] == body["windows"]
        assert events(a) == []

        for role in ("viewer", "operator"):
            r = await a.client.put(windows("AMS"), json={"windows": []}, headers=a.auth(role))
            assert r.status_code == 403
        r = await a.client.put(windows("NOPE"), json={"windows": []}, headers=admin)
        assert (r.status_code, r.json()["field"]) == (404, "site_id")
        r = await a.client.get(windows("NOPE"), headers=viewer)
        assert (r.status_code, r.json()["field"]) == (404, "site_id")

        r = await a.client.put(windows("AMS"), json={"windows": []}, headers=admin)
        assert r.json()["windows"] == [] and r.json()["next"] is None
        assert [e.windows for e in events(a)] == [0]
        # Windows go with their site: a new site of the same id starts without.
        await a.client.put(windows("AMS"), json=body, headers=admin)
        assert (await a.client.delete(f"{SITES}/AMS", headers=admin)).status_code == 204
        await a.client.post(SITES, json={"id": "AMS", "phase_limits_a": [80, 80, 80]}, headers=admin)
        assert (await a.client.get(windows("AMS"), headers=viewer)).json()["windows"] == []

    api(scenario)


def test_charger_tags(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        admin, viewer = a.auth("admin"), a.auth("viewer")
        await a.node.chargers.register("CP1", None)
        assert (await a.client.get(tags("CP1"), headers=viewer)).json() == {"tags": []}
        r = await a.client.put(
            tags("CP1"), json={"tags": ["region:nl", "pilot", "pilot", "batch/7"]}, headers=admin
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"tags": ["batch/7", "pilot", "region:nl"]}
        assert [(type(e), e.charger_id, e.tags) for e in events(a)] == [
            (ChargerTagsChanged, "CP1", ("batch/7", "pilot", "region:nl"))
        ]
        r = await a.client.get("/api/v1/chargers/CP1", headers=viewer)
        assert r.json()["tags"] == ["batch/7", "pilot", "region:nl"]
        page = (await a.client.get("/api/v1/chargers", headers=viewer)).json()
        assert "tags" not in page["items"][0]  # lists stay one query per page

        for bad, field in (
            ({"tags": ["ok", "no spaces"]}, "tags[1]"),
            ({"tags": [""]}, "tags[0]"),
            ({"tags": ["x" * 65]}, "tags[0]"),
            ({"tags": [f"t{i}" for i in range(33)]}, "tags"),
            ({"tags": "pilot"}, "tags"),
            ({}, "tags"),
        ):
            r = await a.client.put(tags("CP1"), json=bad, headers=admin)
            assert r.status_code == 422, r.text
            assert r.json()["field"] == field, (bad, r.json())
        assert (await a.client.get(tags("CP1"), headers=viewer)).json()["tags"] == [
            "batch/7",
            "pilot",
            "region:nl",
        ]
        r = await a.client.put(tags("CP1"), json={"tags": ["x" * 64]}, headers=admin)
        assert r.json() == {"tags": ["x" * 64]}

        for role in ("viewer", "operator"):
            assert (
                await a.client.put(tags("CP1"), json={"tags": []}, headers=a.auth(role))
            ).status_code == 403
        r = await a.client.put(tags("NOPE"), json={"tags": []}, headers=admin)
        assert (r.status_code, r.json()["field"]) == (404, "id")
        r = await a.client.get(tags("NOPE"), headers=viewer)
        assert (r.status_code, r.json()["field"]) == (404, "id")
        assert (await a.client.put(tags("CP1"), json={"tags": []}, headers=admin)).json() == {"tags": []}

    api(scenario)
