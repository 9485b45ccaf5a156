"""Tariffs, session costs and CDRs end to end: a real node (`ampgate serve`), the HTTP API, and charge points
written with the `ocpp` package (asyncio on `websockets`, every message validated against the OCPP schemas) for
1.6 and 2.0.1. A tariff created and assigned over the API prices a transaction whose running cost in
GET /transactions/{id} grows and never decreases; after the stop and the unplug there is exactly one CDR whose
total is price() over the same data, the parking after the stop shown separately; the CSV export parses, a credit
negates, the usage report sums; a node restarted between the stop and the unplug still makes exactly one CDR."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import msgspec
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201

from ampgate.pricing import ChargingChange, Cost, MeterSample, SessionUsage, Tariff, price
from tests.integration.ocpp_clients import ocpp_charge_point

ENERGY = "Energy.Active.Import.Register"
# Prices that move within seconds: 36.00/h charging is a cent a second, 72.00/h parking two.
TARIFF = {
    "id": "FAST",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": 0.5, "vat": 20},
                {"type": "ENERGY", "price": 0.3, "vat": 20},
                {"type": "TIME", "price": 36, "vat": 20},
                {"type": "PARKING_TIME", "price": 72, "vat": 20},
            ]
        }
    ],
}
SITE_TARIFF = {**TARIFF, "id": "SITE", "elements": [{"price_components": [{"type": "ENERGY", "price": 9}]}]}


def now() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)  # as the node stores it: milliseconds


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def api(node, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=node.api_url, headers={"Authorization": f"Bearer {token or node.admin_token}"}, timeout=30
    )


def engine_tariff(body: dict) -> Tariff:
    return msgspec.json.decode(json.dumps(body), type=Tariff)


async def poll(fetch, ready, seconds: float = 15.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = await fetch()
        if ready(result) or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


def amount(d: Decimal | None) -> float | None:
    return None if d is None else float(d)


def check_cost(got: dict, expected: Cost) -> None:
    for name in ("total_cost", "energy_cost", "time_cost", "parking_cost", "flat_cost", "transaction_cost"):
        assert got[name] == amount(getattr(expected, name).incl_vat), name
    assert got["parking_after_cost"] == amount(expected.parking_after_cost.incl_vat)
    assert got["excl_vat"]["total_cost"] == amount(expected.total_cost.excl_vat)
    assert got["tariff_id"] == expected.tariff_id and got["currency"] == expected.currency


async def cost_of(http: httpx.AsyncClient, tx_id: int) -> dict:
    r = await http.get(f"/transactions/{tx_id}")
    assert r.status_code == 200, r.text
    return r.json()["cost"]


def test_16_tariff_running_cost_cdr_csv_credit_and_usage(node) -> None:
    async def scenario() -> None:
        async with api(node) as http:
            # Bad input first: nothing half-applied.
            bad = {
                **TARIFF,
                "elements": [
                    {
                        "price_components": [{"type": "ENERGY", "price": 0.3}],
                        "restrictions": {"min_kwh": 5, "max_kwh": 2},
                    }
                ],
            }
            r = await http.post("/tariffs", json=bad)
            assert (r.status_code, r.json()["field"]) == (422, "elements[0].restrictions.min_kwh")
            assert (await http.get("/tariffs")).json()["items"] == []

            for body in (TARIFF, SITE_TARIFF):
                assert (await http.post("/tariffs", json=body)).status_code == 201
            r = await http.post(
                "/sites", json={"id": "S1", "phase_limits_a": [63, 63, 63], "time_zone": "Europe/Berlin"}
            )
            assert r.status_code == 201, r.text
            assert (await http.post("/chargers", json={"id": "BILL16"})).status_code in (200, 201)
            r = await http.put(
                "/chargers/BILL16/placement", json={"node_id": "S1", "phases": "L1L2L3", "max_a": 32}
            )
            assert r.status_code == 200, r.text
            assert (await http.put("/sites/S1/tariff", json={"tariff_id": "SITE"})).status_code == 200
            # The charger's tariff wins over its site's.
            assert (await http.put("/chargers/BILL16/tariff", json={"tariff_id": "FAST"})).status_code == 200

            async with ocpp_charge_point(ChargePoint16, node.ocpp_url, "BILL16", "ocpp1.6", boot=True) as cp:

                async def status(value: str) -> datetime:
                    t = now()
                    await cp.call(
                        call16.StatusNotification(
                            connector_id=1, error_code="NoError", status=value, timestamp=iso(t)
                        ),
                        suppress=False,
                    )
                    return t

                await status("Preparing")
                t0 = now()
                started = await cp.call(
                    call16.StartTransaction(
                        connector_id=1, id_tag="ALICE", meter_start=1000, timestamp=iso(t0)
                    ),
                    suppress=False,
                )
                tx_id = started.transaction_id
                await status("Charging")
                running: list[float] = []
                readings: list[tuple[datetime, float]] = []
                suspended = None
                for i in range(1, 6):
                    await asyncio.sleep(0.4)
                    t = now()
                    wh = 1000 + 500 * i
                    await cp.call(
                        call16.MeterValues(
                            connector_id=1,
                            transaction_id=tx_id,
                            meter_value=[
                                {
                                    "timestamp": iso(t),
                                    "sampled_value": [
                                        {"value": str(wh), "measurand": ENERGY, "unit": "Wh"},
                                        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                                    ],
                                }
                            ],
                        ),
                        suppress=False,
                    )
                    readings.append((t, wh - 1000))
                    if i == 3:
                        suspended = await status("SuspendedEV")
                    cost = await cost_of(http, tx_id)
                    assert cost is not None and cost["tariff_id"] == "FAST" and cost["final"] is False
                    running.append(cost["total_cost"])
                assert running == sorted(running) and running[-1] > running[0], running
                await asyncio.sleep(0.3)
                t_stop = now()
                await cp.call(
                    call16.StopTransaction(
                        meter_stop=3600,
                        timestamp=iso(t_stop),
                        transaction_id=tx_id,
                        reason="EVDisconnected",
                        transaction_data=[
                            {
                                "timestamp": iso(t_stop),
                                "sampled_value": [
                                    {
                                        "value": 'OCMF|{"RD":[{"RV":3.6}]}|{"SD":"30"}',
                                        "format": "SignedData",
                                        "context": "Transaction.End",
                                    }
                                ],
                            }
                        ],
                    ),
                    suppress=False,
                )
                await status("Finishing")
                await asyncio.sleep(1.0)
                parked = await cost_of(http, tx_id)
                assert parked["total_cost"] >= running[-1] and parked["parking_after_cost"] > 0
                assert (await http.get("/cdrs")).json()["items"] == []
                t_free = await status("Available")
                listing = await poll(lambda: http.get("/cdrs"), lambda r: len(r.json()["items"]) > 0)
                # Another report of the free connector makes no second CDR.
                await status("Preparing")
                await status("Available")
                await asyncio.sleep(1.0)

            cdrs = (await http.get("/cdrs")).json()["items"]
            assert len(cdrs) == 1 and cdrs == listing.json()["items"]
            cdr = cdrs[0]
            assert (cdr["transaction_id"], cdr["charger_id"], cdr["site_id"], cdr["id_token"]) == (
                tx_id,
                "BILL16",
                "S1",
                "ALICE",
            )
            assert parse(cdr["ended_at"]) == t_free and cdr["end_reason"] == "evse_free"
            # Not an eMSP's token (no OCPI here): OCPP itself gives no authorization reference.
            assert cdr["authorization_reference"] is None
            assert parse(cdr["stopped_at"]) == t_stop and parse(cdr["started_at"]) == t0
            usage = SessionUsage(
                started_at=t0,
                samples=(*(MeterSample(t, wh, 11000.0) for t, wh in readings), MeterSample(t_stop, 2600.0)),
                charging=(ChargingChange(suspended, False),),
                stopped_at=t_stop,
                ended_at=t_free,
            )
            berlin = ZoneInfo("Europe/Berlin")
            expected = price(engine_tariff(TARIFF), usage, until=t_free, tz=berlin)
            check_cost(cdr["cost"], expected)
            assert cdr["total_cost"] == amount(expected.total_cost.incl_vat) and cdr["energy_wh"] == 2600
            assert expected.parking_after_cost.incl_vat > 0 and expected.final
            told = price(engine_tariff(TARIFF), usage, until=t_stop, tz=berlin)
            assert cdr["cost"]["transaction_cost"] == amount(told.total_cost.incl_vat)
            assert cdr["cost"]["total_cost"] >= parked["total_cost"]
            # The transaction's cost is now its CDR's.
            assert await cost_of(http, tx_id) == cdr["cost"]
            detail = (await http.get(f"/cdrs/{cdr['id']}")).json()
            assert [v["format"] for v in detail["signed_meter_values"]] == ["SignedData"]
            assert detail["signed_meter_values"][0]["signed_data"].startswith("OCMF|")
            assert detail["tariff"]["id"] == "FAST"
            assert {p["phase"] for p in detail["charging_periods"]} == {"transaction", "after_transaction"}
            events = (await http.get("/events", params={"type": "cdr.created"})).json()["items"]
            assert [e["cdr_id"] for e in events] == [cdr["id"]] and events[0]["total_cost"] == cdr[
                "total_cost"
            ]

            # Finance: CSV of the same page.
            r = await http.get("/cdrs", headers={"Accept": "text/csv"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert len(rows) == 1 and rows[0]["id"] == str(cdr["id"])
            assert Decimal(rows[0]["total_cost"]) == expected.total_cost.incl_vat
            assert Decimal(rows[0]["parking_after_cost"]) == expected.parking_after_cost.incl_vat
            assert rows[0]["authorization_reference"] == ""

            day = t0.replace(hour=0, minute=0, second=0, microsecond=0)
            window = {"since": iso(day), "until": iso(day + timedelta(days=1)), "step": 86400}
            points = (await http.get("/sites/S1/usage", params=window)).json()["points"]
            assert [(p["sessions"], p["energy_kwh"], p["revenue"], p["currency"]) for p in points] == [
                (1, 2.6, cdr["total_cost"], "EUR")
            ]

            r = await http.post(f"/cdrs/{cdr['id']}/credit", headers={"Idempotency-Key": "fix-1"})
            assert r.status_code == 201, r.text
            credit = r.json()
            assert credit["credit_of"] == cdr["id"] and credit["total_cost"] == -cdr["total_cost"]
            r = await http.post(f"/cdrs/{cdr['id']}/credit")
            assert (r.status_code, r.json()["code"]) == (409, "already_credited")
            points = (await http.get("/sites/S1/usage", params=window)).json()["points"]
            assert [(p["sessions"], p["revenue"]) for p in points] == [(1, 0)]
            assert len((await http.get("/cdrs")).json()["items"]) == 2

    asyncio.run(scenario())


def test_201_a_restart_between_the_stop_and_the_unplug_makes_exactly_one_cdr(node_factory) -> None:
    first = node_factory()
    box: dict = {}

    def started(
        tx: str, t: datetime, wh: float, state: str, seq: int, kind: str = "Started"
    ) -> call201.TransactionEvent:
        return call201.TransactionEvent(
            event_type=kind,
            timestamp=iso(t),
            trigger_reason="Authorized" if kind == "Started" else "MeterValuePeriodic",
            seq_no=seq,
            transaction_info={"transaction_id": tx, "charging_state": state},
            evse={"id": 1, "connector_id": 1},
            id_token={"id_token": "BOB", "type": "ISO14443"} if kind == "Started" else None,
            meter_value=[
                {
                    "timestamp": iso(t),
                    "sampled_value": [{"value": wh, "measurand": ENERGY, "unit_of_measure": {"unit": "Wh"}}],
                }
            ],
        )

    async def before() -> None:
        async with api(first) as http:
            assert (await http.post("/tariffs", json=TARIFF)).status_code == 201
            assert (await http.put("/settings/default-tariff", json={"tariff_id": "FAST"})).status_code == 200
            async with ocpp_charge_point(
                ChargePoint201, first.ocpp_url, "BILL201", "ocpp2.0.1", boot=True
            ) as cp:
                times = [now()]
                await cp.call(started("t-1", times[0], 5000, "EVConnected", 0), suppress=False)
                tx_id = (await http.get("/transactions")).json()["items"][0]["id"]
                seen = [(await cost_of(http, tx_id))["total_cost"]]
                for seq, (wh, state) in enumerate(((5400, "Charging"), (5800, "Charging")), start=1):
                    await asyncio.sleep(0.5)
                    times.append(now())
                    await cp.call(started("t-1", times[-1], wh, state, seq, "Updated"), suppress=False)
                    seen.append((await cost_of(http, tx_id))["total_cost"])
                assert seen == sorted(seen) and seen[-1] > seen[0], seen
                await asyncio.sleep(0.5)
                times.append(now())
                ended = started("t-1", times[-1], 6000, "EVConnected", 3, "Ended")
                ended.transaction_info["stopped_reason"] = "Local"
                await cp.call(ended, suppress=False)
                after = await cost_of(http, tx_id)
                assert after["total_cost"] >= seen[-1] and after["final"] is False
                box.update(tx_id=tx_id, times=times)
                # The node stops while the charger is still connected (the cable still in): its shutdown is not
                # the charger going offline.
                await asyncio.to_thread(first.stop)

    asyncio.run(before())
    second = node_factory(db=first.db)

    async def after() -> None:
        # The same database: the first node's admin token (a node makes one only for an empty token table).
        async with api(second, first.admin_token) as http:
            early = (await http.get("/cdrs")).json()["items"]
            assert early == [], [(c["end_reason"], c["ended_at"]) for c in early]
            async with ocpp_charge_point(
                ChargePoint201, second.ocpp_url, "BILL201", "ocpp2.0.1", boot=True
            ) as cp:

                async def status(value: str) -> datetime:
                    t = now()
                    await cp.call(
                        call201.StatusNotification(
                            timestamp=iso(t), connector_status=value, evse_id=1, connector_id=1
                        ),
                        suppress=False,
                    )
                    return t

                t_free = await status("Available")
                await poll(lambda: http.get("/cdrs"), lambda r: len(r.json()["items"]) > 0)
                await status("Occupied")
                await status("Available")
                await asyncio.sleep(1.0)
            cdrs = (await http.get("/cdrs")).json()["items"]
            assert len(cdrs) == 1, cdrs
            cdr = cdrs[0]
            times = box["times"]
            assert cdr["transaction_id"] == box["tx_id"] and parse(cdr["ended_at"]) == t_free
            usage = SessionUsage(
                started_at=times[0],
                samples=(
                    MeterSample(times[0], 0.0),
                    MeterSample(times[1], 400.0),
                    MeterSample(times[2], 800.0),
                    MeterSample(times[3], 1000.0),
                ),
                charging=(
                    ChargingChange(times[0], False),
                    ChargingChange(times[1], True),
                    ChargingChange(times[3], False),
                ),
                stopped_at=times[3],
                ended_at=t_free,
            )
            expected = price(engine_tariff(TARIFF), usage, until=t_free, tz=ZoneInfo("UTC"))
            check_cost(cdr["cost"], expected)
            assert cdr["energy_wh"] == 1000 and expected.parking_after_cost.incl_vat > 0

    asyncio.run(after())


def test_a_session_nobody_unplugs_ends_after_the_longest_wait(node_factory) -> None:
    node = node_factory("--cdr-max-parking-s", "1")

    async def scenario() -> None:
        async with api(node) as http:
            assert (await http.post("/tariffs", json=TARIFF)).status_code == 201
            assert (await http.put("/settings/default-tariff", json={"tariff_id": "FAST"})).status_code == 200
            async with ocpp_charge_point(ChargePoint16, node.ocpp_url, "WAIT16", "ocpp1.6", boot=True) as cp:
                t0 = now()
                started = await cp.call(
                    call16.StartTransaction(connector_id=1, id_tag="ALICE", meter_start=0, timestamp=iso(t0)),
                    suppress=False,
                )
                t_stop = t0 + timedelta(seconds=1)
                await cp.call(
                    call16.StopTransaction(
                        meter_stop=500, timestamp=iso(t_stop), transaction_id=started.transaction_id
                    ),
                    suppress=False,
                )
                r = await poll(lambda: http.get("/cdrs"), lambda r: len(r.json()["items"]) > 0)
            cdr = r.json()["items"][0]
            assert cdr["end_reason"] == "max_parking"
            assert parse(cdr["ended_at"]) == t_stop + timedelta(seconds=1)
            assert cdr["parking_after_s"] == 1 and cdr["energy_wh"] == 500

    asyncio.run(scenario())


def test_the_usage_reports_occupancy_is_the_share_of_in_service_time_a_connector_was_in_use(node) -> None:
    # Free, in use, free again, each this long: a third of the connector's in-service time in use. Long enough
    # that the node taking a status a few tens of ms after its reply moves the share by about a point.
    stretch_s = 2.0

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with api(node) as http:
            r = await http.post("/sites", json={"id": "OCC", "phase_limits_a": [63, 63, 63]})
            assert r.status_code == 201, r.text
            assert (await http.post("/chargers", json={"id": "OCC16"})).status_code in (200, 201)
            r = await http.put(
                "/chargers/OCC16/placement", json={"node_id": "OCC", "phases": "L1L2L3", "max_a": 32}
            )
            assert r.status_code == 200, r.text
            async with ocpp_charge_point(ChargePoint16, node.ocpp_url, "OCC16", "ocpp1.6", boot=True) as cp:

                async def status(value: str) -> float:
                    """When the node took the status: the middle of its round trip."""
                    sent = loop.time()
                    await cp.call(
                        call16.StatusNotification(connector_id=1, error_code="NoError", status=value),
                        suppress=False,
                    )
                    return (sent + loop.time()) / 2

                free = await status("Available")
                await asyncio.sleep(stretch_s)
                busy = await status("Charging")
                await asyncio.sleep(stretch_s)
                freed = await status("Available")
                await asyncio.sleep(stretch_s)
                today = now().replace(hour=0, minute=0, second=0, microsecond=0)
                window = {
                    "since": iso(today - timedelta(days=1)),
                    "until": iso(today + timedelta(days=1)),
                    "step": 86400,
                }
                asked = loop.time()
                r = await http.get("/sites/OCC/usage", params=window)
                asked = (asked + loop.time()) / 2
            assert r.status_code == 200, r.text
            yesterday, point = r.json()["points"]
            # No connector time yesterday: unknown, not 0.
            assert yesterday["occupancy_pct"] is None and parse(point["at"]) == today
            expected = 100 * (freed - busy) / (asked - free)
            assert 0 < point["occupancy_pct"] <= 100
            assert abs(point["occupancy_pct"] - expected) < 5, (point["occupancy_pct"], expected)
            assert (point["sessions"], point["energy_kwh"]) == (0, 0)

    asyncio.run(scenario())
