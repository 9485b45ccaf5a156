"""/api/v1/firmware/campaigns over the real runner and tables (in-test images and selection): create (422 naming
the field for every bad body), the verbs (idempotent, audited with the token's label, 409 when the state forbids),
the summary from the counters, the chargers with their state, the progress series."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, Scenario

BASE = "/api/v1/firmware/campaigns"


def body(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "image_id": 1,
        "selector": {"vendor": "V"},
        "canary": {"count": 3},
        "groups": [{"percent": 50}, {"percent": 50}],
        "success_threshold_pct": 90,
        "error_threshold_pct": 10,
        "error_min_finished": 3,
        "max_in_flight": 5,
    }
    b.update(over)
    return b


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"groups": [{"percent": 10, "count": 3}]}, "groups[0]"),
        ({"groups": [{}]}, "groups[0]"),
        ({"groups": []}, "groups"),
        ({"canary": {"count": 2, "percent": 5}}, "canary"),
        ({"success_threshold_pct": 101}, "success_threshold_pct"),
        ({"error_threshold_pct": -5}, "error_threshold_pct"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"image_id": 999}, "image_id"),
        ({"selector": {}}, "selector"),
        ({"success_action": "explode"}, "success_action"),
        ({"error_threshold_count": 2}, "error_threshold_count"),
        ({"dispatch_growth_factor": 2}, "dispatch_growth_factor"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(api: Scenario, over: dict[str, Any], field: str) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(BASE, json=body(**over), headers=a.auth("operator"))
        assert r.status_code == 422, r.text
        assert field in (r.json().get("field") or ""), r.json()

    api(scenario)


def test_create_start_pause_resume_cancel_are_idempotent_and_audited(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        r = await a.client.post(BASE, json=body(name="winter"), headers=a.auth("operator"))
        assert r.status_code == 201, r.text
        c = r.json()
        assert r.headers["location"] == f"{BASE}/{c['id']}"
        assert (c["state"], c["name"], c["groups"]) == ("draft", "winter", [])
        url = f"{BASE}/{c['id']}"

        r = await a.client.post(f"{url}/start", headers=a.auth("operator"))
        assert r.status_code == 200, r.text
        started = r.json()
        assert started["state"] == "running"
        assert [g["kind"] for g in started["groups"]] == ["canary", "group", "group"]
        assert [sum(g["counts"].values()) for g in started["groups"]] == [3, 15, 13]
        assert started["counts"]["pending"] == 30 and started["counts"]["skipped"] == 1

        again = await a.client.post(f"{url}/start", headers=a.auth("operator"))
        assert again.status_code == 200 and again.json()["state"] == "running"

        r = await a.client.post(f"{url}/pause", json={"reason": "rain"}, headers=a.auth("operator"))
        assert (r.status_code, r.json()["state"], r.json()["paused_reason"]) == (
            200,
            "paused",
            "operator: rain",
        )
        r = await a.client.post(f"{url}/pause", headers=a.auth("operator"))
        assert (r.status_code, r.json()["state"]) == (200, "paused")
        r = await a.client.post(f"{url}/resume", headers=a.auth("admin"))
        assert (r.status_code, r.json()["state"], r.json()["paused_reason"]) == (200, "running", None)
        r = await a.client.post(f"{url}/cancel", headers=a.auth("operator"))
        assert r.json()["state"] == "cancelled"
        r = await a.client.post(f"{url}/cancel", headers=a.auth("operator"))
        assert (r.status_code, r.json()["state"]) == (200, "cancelled")
        r = await a.client.post(f"{url}/resume", headers=a.auth("operator"))
        assert (r.status_code, r.json()["code"]) == (409, "campaign_state")

        audit = (await a.client.get(f"{url}/audit", headers=a.auth("viewer"))).json()["items"]
        assert [(e["verb"], e["changed"], e["actor"], e["role"]) for e in audit] == [
            ("start", True, "test operator", "operator"),
            ("start", False, "test operator", "operator"),
            ("pause", True, "test operator", "operator"),
            ("pause", False, "test operator", "operator"),
            ("resume", True, "test admin", "admin"),
            ("cancel", True, "test operator", "operator"),
            ("cancel", False, "test operator", "operator"),
        ]
        assert audit[2]["reason"] == "rain"

    api(scenario)


def test_reads_list_one_chargers_progress(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        ids = []
        for _ in range(3):
            r = await a.client.post(BASE, json=body(), headers=a.auth("operator"))
            ids.append(r.json()["id"])
        await a.client.post(f"{BASE}/{ids[0]}/start", headers=a.auth("operator"))
        page = (await a.client.get(BASE, params={"limit": 2}, headers=a.auth("viewer"))).json()
        assert [c["id"] for c in page["items"]] == [ids[2], ids[1]] and page["next_cursor"] is not None
        rest = (
            await a.client.get(BASE, params={"cursor": page["next_cursor"]}, headers=a.auth("viewer"))
        ).json()
        assert [c["id"] for c in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
        running = (await a.client.get(BASE, params={"state": "running"}, headers=a.auth("viewer"))).json()
        assert [c["id"] for c in running["items"]] == [ids[0]]
        r = await a.client.get(BASE, params={"state": "bogus"}, headers=a.auth("viewer"))
        assert (r.status_code, r.json()["field"]) == (422, "state")

        url = f"{BASE}/{ids[0]}"
        skipped = (
            await a.client.get(f"{url}/chargers", params={"state": "skipped"}, headers=a.auth("viewer"))
        ).json()
        assert [(c["charger_id"], c["reason"]) for c in skipped["items"]] == [("DONE", "already_installed")]
        pending = (
            await a.client.get(
                f"{url}/chargers", params={"state": "pending", "limit": 20}, headers=a.auth("viewer")
            )
        ).json()
        assert len(pending["items"]) == 20 and pending["next_cursor"] is not None
        more = (
            await a.client.get(
                f"{url}/chargers",
                params={"state": "pending", "limit": 20, "cursor": pending["next_cursor"]},
                headers=a.auth("viewer"),
            )
        ).json()
        assert len(more["items"]) == 10 and more["next_cursor"] is None
        assert {c["charger_id"] for c in pending["items"] + more["items"]} == {f"CP{i:03}" for i in range(30)}

        progress = (
            await a.client.get(f"{url}/progress", params={"step": 60}, headers=a.auth("viewer"))
        ).json()
        assert progress["step_s"] == 60 and progress["points"]
        r = await a.client.get(
            f"{url}/progress",
            params={"since": "2026-01-01T00:00:00Z", "until": "2026-12-01T00:00:00Z", "step": 1},
            headers=a.auth("viewer"),
        )
        assert (r.status_code, r.json()["field"]) == (422, "step")
        r = await a.client.get(f"{BASE}/999", headers=a.auth("viewer"))
        assert (r.status_code, r.json()["field"]) == (404, "campaign_id")
        r = await a.client.post(f"{BASE}/999/start", headers=a.auth("operator"))
        assert r.status_code == 404

    api(scenario)


def test_a_charger_in_a_running_campaign_is_skipped_by_a_second(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        first = (await a.client.post(BASE, json=body(), headers=a.auth("operator"))).json()["id"]
        await a.client.post(f"{BASE}/{first}/start", headers=a.auth("operator"))
        second = (await a.client.post(BASE, json=body(), headers=a.auth("operator"))).json()["id"]
        s = (await a.client.post(f"{BASE}/{second}/start", headers=a.auth("operator"))).json()
        assert s["counts"]["skipped"] == 31 and s["counts"]["pending"] == 0
        items = (
            await a.client.get(f"{BASE}/{second}/chargers", params={"limit": 50}, headers=a.auth("viewer"))
        ).json()["items"]
        assert {c["reason"] for c in items} == {f"in_campaign:{first}", "already_installed"}

    api(scenario)
