"""/api/v1/tariffs, the tariff assignments and price signals over the stand-in: money in and out as JSON numbers
(exact), bad tariffs refused with the field named and nothing stored, roles, events, 409 while in use; CDRs,
their CSV export and credit, and a transaction's cost, over the real billing services."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ampgate.events import CdrCreated, SitePriceSignalsChanged, TariffAssigned, TariffChanged
from ampgate.store import TransactionRepository
from ampgate.store.transactions import TransactionStart, TransactionStop

from .conftest import Api, Scenario

TARIFFS = "/api/v1/tariffs"
STANDARD = {
    "id": "STANDARD",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.2975, "vat": 19},
                {"type": "PARKING_TIME", "price": 2.0, "step_size": 300, "vat": 19},
                {"type": "FLAT", "price": 0.5, "vat": 19},
            ]
        }
    ],
    "max_price": {"excl_vat": 80, "incl_vat": 95.2},
}


async def site(a: Api, site_id: str, zone: str = "UTC") -> None:
    r = await a.client.post(
        "/api/v1/sites",
        json={"id": site_id, "phase_limits_a": [63, 63, 63], "time_zone": zone},
        headers=a.auth("admin"),
    )
    assert r.status_code == 201, r.text


def events(a: Api) -> list[Any]:
    out = []
    while (e := a.node.events.receive_nowait()) is not None:
        out.append(e)
    return out


def test_tariffs_crud_money_as_numbers_and_roles(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        operator, viewer = a.auth("operator"), a.auth("viewer")
        r = await a.client.post(TARIFFS, json=STANDARD, headers=viewer)
        assert r.status_code == 403
        r = await a.client.post(TARIFFS, json=STANDARD, headers=operator)
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"{TARIFFS}/STANDARD"
        body = r.json()
        # Numbers on the wire, exact: 0.2975 stays 0.2975.
        assert b'"price":0.2975' in r.content and b'"incl_vat":95.2' in r.content
        component = body["elements"][0]["price_components"][0]
        assert component == {"type": "ENERGY", "price": 0.2975, "step_size": 1, "vat": 19}
        assert body["summary"].startswith("0.60 EUR") and "0.354 EUR/kWh" in body["summary"]
        assert [e.change for e in events(a) if isinstance(e, TariffChanged)] == ["created"]
        r = await a.client.post(TARIFFS, json=STANDARD, headers=operator)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "tariff_exists", "id")

        r = await a.client.get(f"{TARIFFS}/STANDARD", headers=viewer)
        assert r.status_code == 200 and r.json()["max_price"] == {"excl_vat": 80, "incl_vat": 95.2}
        r = await a.client.get(TARIFFS, headers=viewer, params={"limit": 1})
        assert [t["id"] for t in r.json()["items"]] == ["STANDARD"] and r.json()["next_cursor"] is None
        await a.client.post(TARIFFS, json={**STANDARD, "id": "A-FIRST"}, headers=operator)
        page = (await a.client.get(TARIFFS, headers=viewer, params={"limit": 1})).json()
        assert [t["id"] for t in page["items"]] == ["A-FIRST"] and page["next_cursor"]
        page = (
            await a.client.get(TARIFFS, headers=viewer, params={"limit": 1, "cursor": page["next_cursor"]})
        ).json()
        assert [t["id"] for t in page["items"]] == ["STANDARD"] and page["next_cursor"] is None

        changed = {**STANDARD, "elements": [{"price_components": [{"type": "ENERGY", "price": 0.31}]}]}
        changed.pop("max_price")
        r = await a.client.put(
            f"{TARIFFS}/STANDARD", json={k: v for k, v in changed.items() if k != "id"}, headers=operator
        )
        assert r.status_code == 200, r.text
        assert r.json()["elements"] == [
            {
                "price_components": [{"type": "ENERGY", "price": 0.31, "step_size": 1, "vat": None}],
                "restrictions": None,
            }
        ]
        r = await a.client.put(f"{TARIFFS}/OTHER", json=changed, headers=operator)
        assert (r.status_code, r.json()["field"]) == (422, "id")
        r = await a.client.put(f"{TARIFFS}/NOPE", json={**changed, "id": "NOPE"}, headers=operator)
        assert r.status_code == 404
        r = await a.client.delete(f"{TARIFFS}/A-FIRST", headers=viewer)
        assert r.status_code == 403
        r = await a.client.delete(f"{TARIFFS}/A-FIRST", headers=operator)
        assert r.status_code == 204
        assert (await a.client.get(f"{TARIFFS}/A-FIRST", headers=viewer)).status_code == 404

    api(scenario)


def _bad(path: str, value: Any) -> dict[str, Any]:
    """STANDARD with `value` set at `path` (dots and [i])."""
    import copy
    import re

    body = copy.deepcopy(STANDARD)
    node: Any = body
    parts = [p for p in re.split(r"\.|\[|\]", path) if p]
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node.setdefault(p, {})
    node[parts[-1]] = value
    return body


def test_bad_tariffs_are_refused_naming_the_field_and_nothing_is_stored(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        operator = a.auth("operator")
        cases = [
            ("elements[0].price_components[0].price", 0.29751, "elements[0].price_components[0].price"),
            ("elements[0].restrictions", {"min_kwh": 20, "max_kwh": 10}, "elements[0].restrictions.min_kwh"),
            (
                "elements[0].restrictions",
                {"start_time": "10:00", "end_time": "10:00"},
                "elements[0].restrictions.start_time",
            ),
            (
                "elements[0].restrictions",
                {"start_date": "2026-05-01", "end_date": "2026-04-01"},
                "elements[0].restrictions.start_date",
            ),
            (
                "elements[0].restrictions",
                {"min_power": 50, "max_power": 11},
                "elements[0].restrictions.min_power",
            ),
            (
                "elements[0].restrictions",
                {"day_of_week": ["FUNDAY"]},
                "elements[0].restrictions.day_of_week[0]",
            ),
            ("elements[0].restrictions", {"start_time": "25:00"}, "elements[0].restrictions.start_time"),
            ("elements[0].price_components[0].type", "KWH", "elements[0].price_components[0].type"),
            ("elements[0].price_components[0].step_size", 0, "elements[0].price_components[0].step_size"),
            ("elements[0].price_components[0].colour", "red", "elements[0].price_components[0].colour"),
            ("currency", "XXX", "currency"),
            ("max_price.excl_vat", -1, "max_price.excl_vat"),
            ("elements", [], "elements"),
        ]
        for path, value, field in cases:
            r = await a.client.post(TARIFFS, json=_bad(path, value), headers=operator)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["field"] == field, (path, r.json())
        r = await a.client.post(
            TARIFFS, json={**STANDARD, "start_date_time": "2026-05-01T00:00:00"}, headers=operator
        )
        assert (r.status_code, r.json()["field"]) == (422, "start_date_time")
        assert (await a.client.get(TARIFFS, headers=operator)).json()["items"] == []
        assert not [e for e in events(a) if isinstance(e, TariffChanged)]
        # A replacement that fails leaves the stored tariff as it was.
        assert (await a.client.post(TARIFFS, json=STANDARD, headers=operator)).status_code == 201
        r = await a.client.put(
            f"{TARIFFS}/STANDARD", json=_bad("elements[0].price_components[0].price", 1e-5), headers=operator
        )
        assert (r.status_code, r.json()["field"]) == (422, "elements[0].price_components[0].price")
        stored = (await a.client.get(f"{TARIFFS}/STANDARD", headers=operator)).json()
        assert stored["elements"][0]["price_components"][0]["price"] == 0.2975

    api(scenario)


def test_assignments_at_every_scope_and_delete_refused_while_assigned(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        operator, viewer, admin = a.auth("operator"), a.auth("viewer"), a.auth("admin")
        assert (await a.client.post(TARIFFS, json=STANDARD, headers=operator)).status_code == 201
        await a.client.post("/api/v1/chargers", json={"id": "CP1"}, headers=admin)
        await site(a, "S1", "Europe/Berlin")
        events(a)
        routes = {
            "charger": "/api/v1/chargers/CP1/tariff",
            "site": "/api/v1/sites/S1/tariff",
            "id_token_group": "/api/v1/id-token-groups/FLEET/tariff",
            "default": "/api/v1/settings/default-tariff",
        }
        for scope, path in routes.items():
            r = await a.client.get(path, headers=viewer)
            assert r.status_code == 200 and r.json()["tariff_id"] is None
            r = await a.client.put(path, json={"tariff_id": "STANDARD"}, headers=viewer)
            assert r.status_code == 403
            r = await a.client.put(path, json={"tariff_id": "NOPE"}, headers=operator)
            assert (r.status_code, r.json()["field"]) == (422, "tariff_id")
            r = await a.client.put(path, json={"tariff_id": "STANDARD"}, headers=operator)
            assert r.status_code == 200, r.text
            assert r.json()["scope"] == scope and r.json()["tariff_id"] == "STANDARD"
            assert (await a.client.get(path, headers=viewer)).json()["tariff_id"] == "STANDARD"
        assigned = [e for e in events(a) if isinstance(e, TariffAssigned)]
        assert [(e.scope, e.subject, e.tariff_id) for e in assigned] == [
            ("charger", "CP1", "STANDARD"),
            ("site", "S1", "STANDARD"),
            ("id_token_group", "FLEET", "STANDARD"),
            ("default", None, "STANDARD"),
        ]
        assert assigned[0].charger_id == "CP1"
        assert (await a.client.get("/api/v1/chargers/NOPE/tariff", headers=viewer)).json()["field"] == "id"
        assert (await a.client.get("/api/v1/sites/NOPE/tariff", headers=viewer)).json()["field"] == "site_id"
        r = await a.client.delete(f"{TARIFFS}/STANDARD", headers=operator)
        assert (r.status_code, r.json()["code"]) == (409, "tariff_in_use")
        for path in routes.values():
            r = await a.client.put(path, json={"tariff_id": None}, headers=operator)
            assert r.status_code == 200 and r.json()["tariff_id"] is None
        assert (await a.client.delete(f"{TARIFFS}/STANDARD", headers=operator)).status_code == 204

    api(scenario)


def test_price_signals(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        operator, viewer = a.auth("operator"), a.auth("viewer")
        await site(a, "S1")
        path = "/api/v1/sites/S1/price-signals"
        w = {
            "start_at": "2026-03-02T10:00:00Z",
            "end_at": "2026-03-02T12:00:00+01:00",
            "energy_price": 0.1234,
            "currency": "EUR",
        }
        r = await a.client.put(path, json={"windows": [w]}, headers=viewer)
        assert r.status_code == 403
        bad = [
            ({**w, "end_at": "2026-03-02T09:00:00Z"}, "windows[0].end_at"),
            ({**w, "energy_price": 0.12345}, "windows[0].energy_price"),
            ({**w, "currency": "ABC"}, "windows[0].currency"),
            ({**w, "start_at": "2026-03-02T10:00:00"}, "windows[0].start_at"),
        ]
        for window, field in bad:
            r = await a.client.put(path, json={"windows": [window]}, headers=operator)
            assert (r.status_code, r.json()["field"]) == (422, field), r.text
        overlap = {**w, "start_at": "2026-03-02T09:30:00Z", "end_at": "2026-03-02T10:30:00Z"}
        r = await a.client.put(path, json={"windows": [w, overlap]}, headers=operator)
        assert (r.status_code, r.json()["field"]) == (422, "windows[0].start_at")
        other = {**overlap, "currency": "CHF"}
        r = await a.client.put(path, json={"windows": [w, other]}, headers=operator)
        assert r.status_code == 200, r.text
        got = (await a.client.get(path, headers=viewer)).json()
        assert [x["currency"] for x in got["windows"]] == ["CHF", "EUR"]
        assert got["windows"][1] == {**w, "end_at": "2026-03-02T11:00:00Z"}
        assert [e.windows for e in events(a) if isinstance(e, SitePriceSignalsChanged)] == [2]
        assert (await a.client.get("/api/v1/sites/NOPE/price-signals", headers=viewer)).status_code == 404

    api(scenario)


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


async def _session(a: Api, charger: str, start: datetime, minutes: int, wh: float) -> int:
    rows = TransactionRepository(a.node.store)
    tx_id, _ = await rows.start(
        TransactionStart(
            charger_id=charger, connector_id=1, id_token="TAG", started_at=start, meter_start_wh=0
        )
    )
    await rows.stop(
        TransactionStop(
            charger_id=charger,
            tx_id=tx_id,
            stopped_at=start + timedelta(minutes=minutes),
            meter_stop_wh=wh,
            reason="Local",
            samples=[],
        )
    )
    return tx_id


def test_cdrs_csv_credit_transaction_cost_and_usage(api: Scenario) -> None:
    async def scenario(a: Api) -> None:
        operator, viewer, admin = a.auth("operator"), a.auth("viewer"), a.auth("admin")
        await a.client.post(TARIFFS, json=STANDARD, headers=operator)
        await a.client.put(
            "/api/v1/settings/default-tariff", json={"tariff_id": "STANDARD"}, headers=operator
        )
        await site(a, "S1")
        await a.client.post("/api/v1/chargers", json={"id": "CP1"}, headers=admin)
        r = await a.client.put(
            "/api/v1/chargers/CP1/placement",
            json={"node_id": "S1", "phases": "L1L2L3", "max_a": 32},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        billing = a.node.billing
        ids = []
        for day in range(2):
            tx_id = await _session(a, "CP1", T0 + timedelta(days=day), 60, 10_000 * (day + 1))
            r = await a.client.get(f"/api/v1/transactions/{tx_id}", headers=viewer)
            cost = r.json()["cost"]
            assert cost["currency"] == "EUR" and cost["tariff_id"] == "STANDARD" and cost["final"] is False
            # Until now: the session has not ended, its parking after the stop runs (up to the longest wait, an
            # hour). Day 0: 10 kWh at 0.2975 + 0.50 + 1 h at 2.00 = 5.475 excl, 6.515 incl VAT (19 %).
            if day == 0:
                assert (cost["excl_vat"]["total_cost"], cost["total_cost"]) == (5.48, 6.52)
            s = billing._session(tx_id)
            assert s is not None
            await billing._end(s, s.tx.stopped_at + timedelta(minutes=10), "evse_free")  # type: ignore[operator]
            ids.append(tx_id)
        cdr_created = [e for e in events(a) if isinstance(e, CdrCreated)]
        assert [e.transaction_id for e in cdr_created] == ids
        r = await a.client.get("/api/v1/cdrs", headers=viewer)
        page = r.json()
        assert [c["transaction_id"] for c in page["items"]] == ids[::-1]
        first = page["items"][1]
        # 10 kWh at 0.2975 + 0.50, 19 % VAT: 4.13525 told to the charger (4.14); + 10 min parking at 2.00:
        # 4.532 in all (4.53), the parking after shown separately as the difference.
        assert first["total_cost"] == 4.53 and first["cost"]["transaction_cost"] == 4.14
        assert first["cost"]["parking_after_cost"] == 0.39 and first["site_id"] == "S1"
        r = await a.client.get(f"/api/v1/transactions/{ids[0]}", headers=viewer)
        assert r.json()["cost"] == {**first["cost"]}
        detail = (await a.client.get(f"/api/v1/cdrs/{first['id']}", headers=viewer)).json()
        assert detail["tariff"]["id"] == "STANDARD" and detail["credited_by"] is None
        assert [p["phase"] for p in detail["charging_periods"]] == ["transaction", "after_transaction"]
        assert (await a.client.get("/api/v1/cdrs/999", headers=viewer)).status_code == 404

        r = await a.client.get("/api/v1/cdrs", headers={**viewer, "Accept": "text/csv"}, params={"limit": 1})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["x-next-cursor"] == str(page["items"][0]["id"])
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == 1 and rows[0]["transaction_id"] == str(ids[1])
        assert Decimal(rows[0]["total_cost"]) == Decimal(str(page["items"][0]["total_cost"]))
        assert rows[0]["credit_of"] == "" and rows[0]["energy_wh"] == "20000"
        assert list(rows[0])[:3] == ["id", "credit_of", "transaction_id"]
        r = await a.client.get(
            "/api/v1/cdrs",
            headers={**viewer, "Accept": "text/csv"},
            params={"cursor": r.headers["x-next-cursor"]},
        )
        assert r.headers["x-next-cursor"] == ""
        assert [row["transaction_id"] for row in csv.DictReader(io.StringIO(r.text))] == [str(ids[0])]

        key = {"Idempotency-Key": "credit-1"}
        r = await a.client.post(f"/api/v1/cdrs/{first['id']}/credit", headers={**viewer, **key})
        assert r.status_code == 403
        r = await a.client.post(f"/api/v1/cdrs/{first['id']}/credit", headers={**operator, **key})
        assert r.status_code == 201, r.text
        credit = r.json()
        assert credit["credit_of"] == first["id"] and credit["total_cost"] == -4.53
        assert credit["cost"]["excl_vat"]["total_cost"] == -first["cost"]["excl_vat"]["total_cost"]
        again = await a.client.post(f"/api/v1/cdrs/{first['id']}/credit", headers={**operator, **key})
        assert again.status_code == 201 and again.json()["id"] == credit["id"]
        r = await a.client.post(f"/api/v1/cdrs/{first['id']}/credit", headers=operator)
        assert (r.status_code, r.json()["code"]) == (409, "already_credited")
        detail = (await a.client.get(f"/api/v1/cdrs/{first['id']}", headers=viewer)).json()
        assert detail["credited_by"] == credit["id"]

        r = await a.client.get(
            "/api/v1/sites/S1/usage",
            headers=viewer,
            params={"since": "2026-03-02T00:00:00Z", "until": "2026-03-05T00:00:00Z", "step": 86400},
        )
        assert r.status_code == 200, r.text
        usage = r.json()
        assert usage["step_s"] == 86400 and usage["currency"] == "EUR"
        points = usage["points"]
        assert [p["at"] for p in points] == [
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            "2026-03-04T00:00:00Z",
        ]
        assert [p["sessions"] for p in points] == [1, 1, 0]
        assert [p["energy_kwh"] for p in points] == [10.0, 20.0, 0.0]
        second = page["items"][0]["total_cost"]
        assert [p["revenue"] for p in points] == [0, second, 0]  # the first day's CDR was credited
        r = await a.client.get("/api/v1/sites/S1/usage", headers=viewer, params={"step": 100})
        assert (r.status_code, r.json()["field"]) == (422, "step")
        assert (await a.client.get("/api/v1/sites/NOPE/usage", headers=viewer)).status_code == 404

    api(scenario)
