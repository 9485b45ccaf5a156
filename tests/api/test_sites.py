"""/api/v1/sites, …/nodes and /api/v1/chargers/{id}/placement over the real service and repository: every route,
the roles (viewers read, only admins change), and every bad input answered with its status and field and nothing
half-applied: a negative limit, a wrong number of phases, an unknown phase wiring, an unknown parent, charger or
node, a parent in another site, a cycle, a duplicate id, deleting what still has something under it. A charger
placed twice moves rather than hanging under two parents."""

from __future__ import annotations

from typing import Any

import pytest

from ampgate.events import (
    CapacityNodeCreated,
    CapacityNodeDeleted,
    ChargerPlaced,
    ChargerUnplaced,
    SiteCreated,
    SiteDeleted,
    SiteUpdated,
)
from ampgate.load.model import gs1_check_digit

from .conftest import Api, Scenario

SITES = "/api/v1/sites"
EAN = "87168712000000000" + str(gs1_check_digit("87168712000000000"))


def nodes(site: str) -> str:
    return f"{SITES}/{site}/nodes"


def placement(charger: str) -> str:
    return f"/api/v1/chargers/{charger}/placement"


def events(a: Api) -> list[Any]:
    out = []
    while (e := a.node.events.receive_nowait()) is not None:
        out.append(e)
    return out


async def ok(a: Api, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    r = await a.client.request(method, path, json=body, headers=a.auth("admin"))
    assert r.status_code == status, r.text
    return r.json() if r.content else None


async def refused(
    a: Api, method: str, path: str, body: Any, status: int, field: str | None, code: str
) -> str:
    r = await a.client.request(method, path, json=body, headers=a.auth("admin"))
    assert r.status_code == status, r.text
    err = r.json()
    assert (err["code"], err.get("field")) == (code, field), err
    return str(err["message"])


async def build(a: Api) -> None:
    """AMS ─┬─ T1 ─ F1        CP1 on F1, CP2 directly under AMS; OTHER is a second, empty site."""
    await ok(a, "POST", SITES, {"id": "AMS", "phase_limits_a": [80, 80, 80]}, 201)
    await ok(a, "POST", SITES, {"id": "OTHER", "phase_limits_a": [25, 25, 25]}, 201)
    await ok(a, "POST", nodes("AMS"), {"id": "T1", "parent_id": "AMS", "phase_limits_a": [63, 63, 63]}, 201)
    await ok(a, "POST", nodes("AMS"), {"id": "F1", "parent_id": "T1", "limit_kw": 22}, 201)
    for cp in ("CP1", "CP2", "CP3"):
        await a.node.chargers.register(cp, None)
    await ok(a, "PUT", placement("CP1"), {"node_id": "F1", "phases": "L1L2L3", "max_a": 16})
    await ok(a, "PUT", placement("CP2"), {"node_id": "AMS", "phases": "L2", "max_a": 32})


async def snapshot(a: Api) -> Any:
    """Everything the API shows of the topology, to compare before and after a refused change."""
    viewer = a.auth("viewer")
    out = {}
    for path in (SITES, nodes("AMS"), nodes("OTHER"), f"{SITES}/AMS/placements", f"{SITES}/OTHER/placements"):
        r = await a.client.get(path, headers=viewer)
        assert r.status_code == 200, r.text
        out[path] = r.json()
    return out


# -- sites --------------------------------------------------------------------------------------------------------


def test_create_read_list_change_and_delete_a_site(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        body = {
            "id": "AMS-01",
            "name": "Amsterdam depot",
            "phase_limits_a": [80, 80, 63.5],
            "limit_kw": 50,
            "time_zone": "Europe/Amsterdam",
            "location": {
                "lat": 52.37,
                "lon": 4.89,
                "address": "Dam 1",
                "city": "Amsterdam",
                "country": "NLD",
            },
            "ean": EAN,
        }
        r = await a.client.post(SITES, json=body, headers=a.auth("admin"))
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{SITES}/AMS-01"
        site = r.json()
        assert site["phase_limits_a"] == [80.0, 80.0, 63.5] and site["voltage_v"] == 230.0
        assert site["location"] == {
            "lat": 52.37,
            "lon": 4.89,
            "address": "Dam 1",
            "city": "Amsterdam",
            "postal_code": None,
            "country": "NLD",
        }
        assert (site["ean"], site["time_zone"], site["limit_kw"]) == (EAN, "Europe/Amsterdam", 50.0)
        assert site["public_recommendations"] is False  # opt-in: off unless asked for
        assert site["ocpi_publish"] is True  # roams unless it is a private site
        got = await a.client.get(f"{SITES}/AMS-01", headers=a.auth("viewer"))
        assert got.status_code == 200 and got.json() == site
        (created,) = events(a)
        assert isinstance(created, SiteCreated) and (created.site_id, created.name) == (
            "AMS-01",
            "Amsterdam depot",
        )

        changed = await ok(a, "PATCH", f"{SITES}/AMS-01", {"phase_limits_a": [80, 80, 80], "location": None})
        assert changed["phase_limits_a"] == [80.0, 80.0, 80.0] and changed["location"] is None
        assert changed["name"] == "Amsterdam depot"
        (updated,) = events(a)
        assert isinstance(updated, SiteUpdated) and updated.changed == ("phase_limits_a", "location")

        opted = await ok(a, "PATCH", f"{SITES}/AMS-01", {"public_recommendations": True})
        assert opted["public_recommendations"] is True and opted["phase_limits_a"] == [80.0, 80.0, 80.0]
        (updated,) = events(a)
        assert isinstance(updated, SiteUpdated) and updated.changed == ("public_recommendations",)
        got = await a.client.get(f"{SITES}/AMS-01", headers=a.auth("viewer"))
        assert got.json()["public_recommendations"] is True

        private = await ok(a, "PATCH", f"{SITES}/AMS-01", {"ocpi_publish": False})
        assert private["ocpi_publish"] is False and private["public_recommendations"] is True
        (updated,) = events(a)
        assert isinstance(updated, SiteUpdated) and updated.changed == ("ocpi_publish",)
        await refused(
            a, "PATCH", f"{SITES}/AMS-01", {"ocpi_publish": "no"}, 422, "ocpi_publish", "invalid_field"
        )
        assert (await a.client.get(f"{SITES}/AMS-01", headers=a.auth("viewer"))).json()[
            "ocpi_publish"
        ] is False

        r = await a.client.delete(f"{SITES}/AMS-01", headers=a.auth("admin"))
        assert r.status_code == 204 and not r.content
        (deleted,) = events(a)
        assert isinstance(deleted, SiteDeleted) and deleted.site_id == "AMS-01"
        await refused(a, "GET", f"{SITES}/AMS-01", None, 404, "site_id", "not_found")
        await refused(a, "DELETE", f"{SITES}/AMS-01", None, 404, "site_id", "not_found")
        await refused(a, "PATCH", f"{SITES}/AMS-01", {"name": "x"}, 404, "site_id", "not_found")

    api(scenario)


def test_sites_are_listed_in_id_order_a_page_at_a_time(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        for sid in ("C", "A", "B"):
            await ok(a, "POST", SITES, {"id": sid, "phase_limits_a": [None, None, None]}, 201)
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await a.client.get(SITES, params=params, headers=a.auth("viewer"))).json()
            seen += [s["id"] for s in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["A", "B", "C"]
        await refused(a, "GET", f"{SITES}?cursor=%%%", None, 422, "cursor", "invalid_field")
        await refused(a, "GET", f"{SITES}?limit=0", None, 422, "limit", "invalid_field")

    api(scenario)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phase_limits_a": [80, -1, 80]}, "phase_limits_a"),
        ({"phase_limits_a": [80, 80]}, "phase_limits_a"),
        ({"phase_limits_a": [80, 80, 80, 80]}, "phase_limits_a"),
        ({"phase_limits_a": [80, "a lot", 80]}, "phase_limits_a[1]"),
        ({"phase_limits_a": None}, "phase_limits_a"),
        ({"limit_kw": -5}, "limit_kw"),
        ({"voltage_v": -230}, "voltage_v"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"ean": "871687120000000001"}, "ean"),
        ({"location": {"lat": 100, "lon": 0}}, "location.lat"),
        ({"location": {"lat": 0}}, "location.lon"),
        ({"location": {"lat": 0, "lon": 0, "country": "NL"}}, "location.country"),
        ({"id": "a/b"}, "id"),
        ({"id": "x" * 37}, "id"),
        ({"colour": "red"}, "colour"),
        ({"public_recommendations": "yes"}, "public_recommendations"),
        ({"public_recommendations": [True]}, "public_recommendations"),
    ],
)
def test_a_bad_site_is_422_naming_the_field_and_nothing_is_created(
    api: Scenario, body: dict[str, Any], field: str
) -> None:
    async def scenario(a: Api) -> None:
        full = {"id": "S1", "phase_limits_a": [80, 80, 80], **body}
        await refused(a, "POST", SITES, full, 422, field, "invalid_field")
        page = (await a.client.get(SITES, headers=a.auth("viewer"))).json()
        assert page["items"] == [] and events(a) == []

    api(scenario)


def test_missing_phase_limits_is_422(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await refused(a, "POST", SITES, {"id": "S1"}, 422, "phase_limits_a", "invalid_field")

    api(scenario)


def test_a_patch_with_one_bad_field_changes_nothing(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        events(a)
        for body, field in (
            ({"name": "New", "phase_limits_a": [80, 80, -80]}, "phase_limits_a"),
            ({"name": "New", "time_zone": "Nowhere"}, "time_zone"),
            ({"name": "New", "id": "AMS2"}, "id"),
            ({"phase_limits_a": None}, "phase_limits_a"),
            ({"name": "New", "public_recommendations": None}, "public_recommendations"),
        ):
            await refused(a, "PATCH", f"{SITES}/AMS", body, 422, field, "invalid_field")
        assert await snapshot(a) == before and events(a) == []

    api(scenario)


def test_ids_are_unique_across_sites_and_nodes(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        await refused(a, "POST", SITES, {"id": "AMS", "phase_limits_a": [1, 1, 1]}, 409, "id", "site_exists")
        await refused(a, "POST", SITES, {"id": "T1", "phase_limits_a": [1, 1, 1]}, 409, "id", "node_exists")
        await refused(a, "POST", nodes("AMS"), {"id": "F1", "parent_id": "AMS"}, 409, "id", "node_exists")
        await refused(a, "POST", nodes("AMS"), {"id": "OTHER", "parent_id": "AMS"}, 409, "id", "site_exists")
        assert await snapshot(a) == before

    api(scenario)


def test_a_site_with_nodes_or_chargers_is_not_deleted(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        message = await refused(a, "DELETE", f"{SITES}/AMS", None, 409, None, "site_not_empty")
        assert "2 capacity node(s) and 2 charger(s)" in message
        assert await snapshot(a) == before

    api(scenario)


# -- capacity nodes -----------------------------------------------------------------------------------------------


def test_nodes_are_created_read_listed_changed_and_deleted(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        events(a)
        r = await a.client.post(
            nodes("AMS"),
            json={"id": "P1", "parent_id": "F1", "name": "Panel 1", "phase_limits_a": [32, None, 32]},
            headers=a.auth("admin"),
        )
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{SITES}/AMS/nodes/P1"
        p1 = r.json()
        assert (p1["site_id"], p1["parent_id"], p1["name"]) == ("AMS", "F1", "Panel 1")
        assert p1["phase_limits_a"] == [32.0, None, 32.0] and p1["limit_kw"] is None
        (created,) = events(a)
        assert isinstance(created, CapacityNodeCreated) and (created.node_id, created.parent_id) == (
            "P1",
            "F1",
        )
        got = await a.client.get(f"{nodes('AMS')}/P1", headers=a.auth("viewer"))
        assert got.status_code == 200 and got.json() == p1
        t1 = (await a.client.get(f"{nodes('AMS')}/T1", headers=a.auth("viewer"))).json()
        assert t1["parent_id"] == "AMS"  # directly under the site

        listed = (await a.client.get(nodes("AMS"), headers=a.auth("viewer"))).json()
        assert [n["id"] for n in listed["items"]] == ["F1", "P1", "T1"] and listed["next_cursor"] is None
        under_site = (
            await a.client.get(nodes("AMS"), params={"parent_id": "AMS"}, headers=a.auth("viewer"))
        ).json()
        assert [n["id"] for n in under_site["items"]] == ["T1"]
        under_f1 = (
            await a.client.get(nodes("AMS"), params={"parent_id": "F1"}, headers=a.auth("viewer"))
        ).json()
        assert [n["id"] for n in under_f1["items"]] == ["P1"]
        first = (await a.client.get(nodes("AMS"), params={"limit": 2}, headers=a.auth("viewer"))).json()
        rest = (
            await a.client.get(
                nodes("AMS"), params={"cursor": first["next_cursor"]}, headers=a.auth("viewer")
            )
        ).json()
        assert [n["id"] for n in first["items"] + rest["items"]] == ["F1", "P1", "T1"]

        moved = await ok(a, "PATCH", f"{nodes('AMS')}/P1", {"parent_id": "AMS", "phase_limits_a": None})
        assert moved["parent_id"] == "AMS" and moved["phase_limits_a"] == [None, None, None]
        r = await a.client.delete(f"{nodes('AMS')}/P1", headers=a.auth("admin"))
        assert r.status_code == 204
        assert [type(e) for e in events(a)][-1] is CapacityNodeDeleted
        await refused(a, "GET", f"{nodes('AMS')}/P1", None, 404, "node_id", "not_found")

    api(scenario)


def test_a_node_is_only_found_in_its_own_site(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        await refused(a, "GET", f"{nodes('OTHER')}/T1", None, 404, "node_id", "not_found")
        await refused(a, "PATCH", f"{nodes('OTHER')}/T1", {"name": "x"}, 404, "node_id", "not_found")
        await refused(a, "DELETE", f"{nodes('OTHER')}/F1", None, 404, "node_id", "not_found")
        await refused(a, "GET", nodes("NOPE"), None, 404, "site_id", "not_found")
        await refused(a, "GET", f"{nodes('NOPE')}/T1", None, 404, "site_id", "not_found")
        await refused(a, "POST", nodes("NOPE"), {"id": "N", "parent_id": "NOPE"}, 404, "site_id", "not_found")

    api(scenario)


@pytest.mark.parametrize(
    ("body", "status", "field", "code"),
    [
        ({"parent_id": "GHOST"}, 404, "parent_id", "not_found"),
        ({"parent_id": "OTHER"}, 422, "parent_id", "invalid_field"),  # another site
        ({"phase_limits_a": [16, -16, 16]}, 422, "phase_limits_a", "invalid_field"),
        ({"phase_limits_a": [16, 16]}, 422, "phase_limits_a", "invalid_field"),
        ({"limit_kw": -1}, 422, "limit_kw", "invalid_field"),
        ({"parent_id": "N1"}, 422, "parent_id", "invalid_field"),  # itself
        ({"parent": "AMS"}, 422, "parent", "invalid_field"),  # the name: the API says parent_id
    ],
)
def test_a_bad_node_is_refused_naming_the_field_and_nothing_is_created(
    api: Scenario, body: dict[str, Any], status: int, field: str, code: str
) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        events(a)
        full = {"id": "N1", "parent_id": "AMS", **body}
        await refused(a, "POST", nodes("AMS"), full, status, field, code)
        assert await snapshot(a) == before and events(a) == []

    api(scenario)


def test_a_node_of_another_site_is_not_a_parent(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        message = await refused(
            a, "POST", nodes("OTHER"), {"id": "X", "parent_id": "T1"}, 422, "parent_id", "invalid_field"
        )
        assert "site 'AMS'" in message

    api(scenario)


def test_a_move_that_makes_a_cycle_is_422_and_changes_nothing(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        await ok(a, "POST", nodes("AMS"), {"id": "P1", "parent_id": "F1"}, 201)
        before = await snapshot(a)
        events(a)
        # T1 under its grandchild P1, with a valid name change in the same PATCH.
        message = await refused(
            a,
            "PATCH",
            f"{nodes('AMS')}/T1",
            {"name": "T", "parent_id": "P1"},
            422,
            "parent_id",
            "invalid_field",
        )
        assert "cycle" in message
        await refused(
            a, "PATCH", f"{nodes('AMS')}/T1", {"parent_id": "T1"}, 422, "parent_id", "invalid_field"
        )
        await refused(a, "PATCH", f"{nodes('AMS')}/T1", {"parent_id": "GHOST"}, 404, "parent_id", "not_found")
        await refused(a, "PATCH", f"{nodes('AMS')}/T1", {"site_id": "OTHER"}, 422, "site_id", "invalid_field")
        assert await snapshot(a) == before and events(a) == []
        # Up the tree is fine: P1 moves to the site, its subtree (none) with it.
        assert (await ok(a, "PATCH", f"{nodes('AMS')}/P1", {"parent_id": "AMS"}))["parent_id"] == "AMS"

    api(scenario)


def test_a_node_with_children_or_chargers_is_not_deleted(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        m = await refused(a, "DELETE", f"{nodes('AMS')}/T1", None, 409, None, "node_not_empty")
        assert "1 node(s) and 0 charger(s)" in m
        m = await refused(a, "DELETE", f"{nodes('AMS')}/F1", None, 409, None, "node_not_empty")
        assert "0 node(s) and 1 charger(s)" in m
        assert await snapshot(a) == before

    api(scenario)


# -- placements ---------------------------------------------------------------------------------------------------


def test_place_read_move_and_unplace_a_charger(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        events(a)
        body = {"node_id": "T1", "phases": "STR", "max_a": 32, "priority": 3, "weight": 2.5}
        placed = await ok(a, "PUT", placement("CP3"), body)
        assert (placed["charger_id"], placed["site_id"], placed["node_id"]) == ("CP3", "AMS", "T1")
        assert (placed["phases"], placed["max_a"], placed["priority"], placed["weight"]) == (
            "STR",
            32.0,
            3,
            2.5,
        )
        got = await a.client.get(placement("CP3"), headers=a.auth("viewer"))
        assert got.status_code == 200 and got.json() == placed
        (ev,) = events(a)
        assert isinstance(ev, ChargerPlaced) and (ev.charger_id, ev.node_id, ev.previous_node_id) == (
            "CP3",
            "T1",
            None,
        )

        # Placing it again moves it, here to another site: one placement, never two parents.
        moved = await ok(a, "PUT", placement("CP3"), {"node_id": "OTHER", "phases": "L1", "max_a": 16})
        assert (moved["site_id"], moved["node_id"], moved["priority"], moved["weight"]) == (
            "OTHER",
            "OTHER",
            0,
            1.0,
        )
        (ev,) = events(a)
        assert isinstance(ev, ChargerPlaced) and (ev.site_id, ev.node_id, ev.previous_node_id) == (
            "OTHER",
            "OTHER",
            "T1",
        )
        ams = (await a.client.get(f"{SITES}/AMS/placements", headers=a.auth("viewer"))).json()
        assert [p["charger_id"] for p in ams["items"]] == ["CP1", "CP2"]
        other = (await a.client.get(f"{SITES}/OTHER/placements", headers=a.auth("viewer"))).json()
        assert [p["charger_id"] for p in other["items"]] == ["CP3"]
        # Moving within the site, then the filter by node.
        await ok(a, "PUT", placement("CP2"), {"node_id": "F1", "phases": "L2", "max_a": 32})
        on_f1 = (
            await a.client.get(f"{SITES}/AMS/placements", params={"node_id": "F1"}, headers=a.auth("viewer"))
        ).json()
        assert [p["charger_id"] for p in on_f1["items"]] == ["CP1", "CP2"]
        on_site = (
            await a.client.get(f"{SITES}/AMS/placements", params={"node_id": "AMS"}, headers=a.auth("viewer"))
        ).json()
        assert on_site["items"] == []
        page = (
            await a.client.get(f"{SITES}/AMS/placements", params={"limit": 1}, headers=a.auth("viewer"))
        ).json()
        assert [p["charger_id"] for p in page["items"]] == ["CP1"] and page["next_cursor"]
        events(a)

        r = await a.client.delete(placement("CP3"), headers=a.auth("admin"))
        assert r.status_code == 204
        (ev,) = events(a)
        assert isinstance(ev, ChargerUnplaced) and (ev.charger_id, ev.site_id) == ("CP3", "OTHER")
        await refused(a, "GET", placement("CP3"), None, 404, None, "not_placed")
        await refused(a, "DELETE", placement("CP3"), None, 404, None, "not_placed")

    api(scenario)


@pytest.mark.parametrize(
    ("body", "status", "field", "code"),
    [
        ({"phases": "L4"}, 422, "phases", "invalid_field"),
        ({"phases": "L1L2"}, 422, "phases", "invalid_field"),
        ({"phases": "RRT"}, 422, "phases", "invalid_field"),
        ({"max_a": 0}, 422, "max_a", "invalid_field"),
        ({"max_a": -16}, 422, "max_a", "invalid_field"),
        ({"weight": 0}, 422, "weight", "invalid_field"),
        ({"priority": 2**40}, 422, "priority", "invalid_field"),
        ({"priority": "high"}, 422, "priority", "invalid_field"),
        ({"node_id": "GHOST"}, 404, "node_id", "not_found"),
        ({"node": "F1"}, 422, "node", "invalid_field"),  # the name: the API says node_id
    ],
)
def test_a_bad_placement_is_refused_and_the_charger_stays_where_it_was(
    api: Scenario, body: dict[str, Any], status: int, field: str, code: str
) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        events(a)
        full = {"node_id": "T1", "phases": "L1", "max_a": 16, **body}
        await refused(a, "PUT", placement("CP1"), full, status, field, code)
        await refused(a, "PUT", placement("CP3"), full, status, field, code)
        assert await snapshot(a) == before and events(a) == []
        await refused(a, "GET", placement("CP3"), None, 404, None, "not_placed")

    api(scenario)


def test_an_unknown_charger_is_404(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        body = {"node_id": "T1", "phases": "L1", "max_a": 16}
        await refused(a, "PUT", placement("GHOST"), body, 404, "id", "not_found")
        await refused(a, "GET", placement("GHOST"), None, 404, "id", "not_found")
        await refused(a, "DELETE", placement("GHOST"), None, 404, "id", "not_found")
        assert await snapshot(a) == before

    api(scenario)


def test_the_allocators_view_follows_the_api(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        t = a.node.sites.topology("AMS")
        assert t.node_ids == ("AMS", "T1", "F1") and t.parent == (-1, 0, 1)
        assert t.charger_ids == ("CP2", "CP1") and t.charger_node == (0, 2)
        assert t.charger_phases == ((1,), (0, 1, 2)) and t.limit_w[2] == 22_000.0

    api(scenario)


# -- roles --------------------------------------------------------------------------------------------------------


def test_viewers_read_and_only_admins_change_the_topology(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        await build(a)
        before = await snapshot(a)
        for role in ("viewer", "operator"):
            for method, path, body in (
                ("POST", SITES, {"id": "NEW", "phase_limits_a": [1, 1, 1]}),
                ("PATCH", f"{SITES}/AMS", {"name": "x"}),
                ("DELETE", f"{SITES}/OTHER", None),
                ("POST", nodes("AMS"), {"id": "N", "parent_id": "AMS"}),
                ("PATCH", f"{nodes('AMS')}/F1", {"parent_id": "AMS"}),
                ("DELETE", f"{nodes('AMS')}/F1", None),
                ("PUT", placement("CP3"), {"node_id": "T1", "phases": "L1", "max_a": 16}),
                ("DELETE", placement("CP1"), None),
            ):
                r = await a.client.request(method, path, json=body, headers=a.auth(role))
                assert r.status_code == 403, f"{method} {path} as {role}: {r.status_code}"
                assert r.json()["code"] == "forbidden"
        assert await snapshot(a) == before
        for path in (
            SITES,
            f"{SITES}/AMS",
            nodes("AMS"),
            f"{nodes('AMS')}/T1",
            f"{SITES}/AMS/placements",
            placement("CP1"),
        ):
            r = await a.client.get(path, headers=a.auth("viewer"))
            assert r.status_code == 200, f"GET {path}: {r.status_code}"
        r = await a.client.get(SITES)
        assert r.status_code == 401

    api(scenario)
