"""A transaction's meter samples are paged (`GET /api/v1/transactions/{id}/samples`) on a real node: pages
joined are every sample in time order, cursors survive samples arriving, and the detail carries only the last
meter values."""

from __future__ import annotations

import asyncio

import httpx
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16

from tests.integration.ocpp_clients import ocpp_charge_point

ENERGY = "Energy.Active.Import.Register"
READINGS = 120  # MeterValues messages, each 4 samples: 480 samples, several pages of 50


def at(i: int) -> str:
    return f"2026-03-04T05:{i // 60:02d}:{i % 60:02d}Z"


def reading(i: int) -> dict:
    return {
        "timestamp": at(i),
        "sampled_value": [
            {"value": str(1000 + 10 * i), "measurand": ENERGY, "unit": "Wh"},
            {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
            {"value": "16", "measurand": "Current.Import", "unit": "A", "phase": "L2"},
            {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
        ],
    }


async def pages(http: httpx.AsyncClient, path: str, **params: object) -> tuple[list[dict], list[str]]:
    items: list[dict] = []
    cursors: list[str] = []
    cursor = None
    while True:
        r = await http.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items, cursors
        cursors.append(cursor)


def test_samples_are_paged_in_time_order_and_the_detail_carries_the_last_only(node) -> None:
    async def scenario() -> None:
        headers = {"Authorization": f"Bearer {node.admin_token}"}
        async with (
            httpx.AsyncClient(base_url=node.api_url, headers=headers, timeout=30) as http,
            ocpp_charge_point(ChargePoint16, node.ocpp_url, "PAGED", "ocpp1.6") as cp,
        ):
            await cp.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            tx = (
                await cp.call(
                    call16.StartTransaction(connector_id=1, id_tag="T", meter_start=1000, timestamp=at(0))
                )
            ).transaction_id
            for i in range(0, READINGS, 10):
                meter = [reading(j) for j in range(i, i + 10)]
                await cp.call(call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=meter))
            path = f"/transactions/{tx}/samples"

            whole = (await http.get(path, params={"limit": 1000})).json()
            assert len(whole["items"]) == 4 * READINGS and whole["next_cursor"] is None
            keys = [(s["at"], s["measurand"], s["phase"] or "") for s in whole["items"]]
            assert keys == sorted(keys)

            paged, cursors = await pages(http, path, limit=50)
            assert paged == whole["items"] and len(cursors) == len(whole["items"]) // 50

            # A cursor keeps its place while samples arrive: the page after it is the same, and the samples
            # added later are at the end.
            second = (await http.get(path, params={"limit": 50, "cursor": cursors[0]})).json()
            await cp.call(
                call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=[reading(READINGS)])
            )
            again = (await http.get(path, params={"limit": 50, "cursor": cursors[0]})).json()
            assert again == second
            after, _ = await pages(http, path, limit=50)
            assert after[: len(paged)] == paged and len(after) == len(paged) + 4

            energy, _ = await pages(http, path, limit=7, measurand=ENERGY)
            assert [s["value"] for s in energy] == [1000.0 + 10 * i for i in range(READINGS + 1)]

            detail = (await http.get(f"/transactions/{tx}")).json()
            assert "samples" not in detail and detail["samples_url"] == f"/api/v1/transactions/{tx}/samples"
            assert {(s["measurand"], s["phase"]) for s in detail["last_meter_values"]} == {
                (ENERGY, None),
                ("Current.Import", "L1"),
                ("Current.Import", "L2"),
                ("Power.Active.Import", None),
            }
            assert detail["energy_wh"] == 10.0 * READINGS

            for bad in ({"cursor": "not-ours"}, {"cursor": "eyJ4Ijox"}, {"limit": 0}, {"limit": 1001}):
                r = await http.get(path, params=bad)
                assert r.status_code == 422 and r.json()["field"] == next(iter(bad)), (bad, r.text)
            r = await http.get("/transactions/999999/samples")
            assert r.status_code == 404 and r.json()["field"] == "id"

    asyncio.run(scenario())


def test_samples_need_the_viewer_role(node) -> None:
    with node.api() as api:
        r = api.get("/transactions/1/samples", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
