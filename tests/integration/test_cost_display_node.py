"""Cost on the charger, on a real node with real chargers.

What is real: the whole node in-process (`ampgate.node.Node` as `ampgate serve` builds it: the Rust gateway worker
and its sockets, SQLite, the router and handlers, the Commander, the device model, the cost display with its
interval updates), and the chargers: `ocpp` package charge points (2.0.1 and 1.6) over `websockets`, on asyncio
in a thread, which validate every call and every reply they receive against the OCPP schemas. The prices too:
the node is handed an in-test `TariffLookup` and `SessionCosts` (what the session-cost service will provide)
that price the transactions the node stored with the real pricing engine over real tariffs.

Asserted, 2.0.1: the tariff text in idTokenInfo.personalMessage of the Authorize and TransactionEvent replies,
CostUpdated with the running total, updatedPersonalMessage when the charger's tariff changes mid-session, totalCost
on Ended (0.00 for a free session); the mode from an admin's override (CS1) and from the device model the charger
reported (CSFREE: TariffCostCtrlr.Enabled[Cost]). 1.6 (mode from CustomDisplayCostAndPrice in its
configuration): SetUserPrice after Authorize, not again at the start, RunningCost with the register and the cost
(answered Rejected once: counted, and sent again), FinalCost after StopTransaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from ampgate.config import NodeConfig
from ampgate.node import Node
from ampgate.pricing import Cost, MeterSample, SessionUsage, Tariff, price
from ampgate.store import TransactionRepository
from ampgate.store.transactions import ENERGY as ENERGY_REGISTER
from tests.integration.ocpp_clients import ocpp_charge_point
from tests.pricing.builders import comp, element, tariff

# 0.30/kWh + 20 % VAT: 0.36 the driver pays; later 0.40 + 20 %: 0.48; and a free one.
ENERGY = tariff(element(comp("ENERGY", "0.30", vat=20)), id="ENERGY")
DEARER = tariff(element(comp("ENERGY", "0.40", vat=20)), id="DEARER")
FREE = tariff(element(comp("ENERGY", "0")), id="FREE")
WAIT = 15.0  # real seconds anything the node sends may take to arrive

# (charger id, action, payload as the `ocpp` package hands it over), appended from the asyncio thread.
RECEIVED: list[tuple[str, str, dict[str, Any]]] = []


def now() -> str:
    return datetime.now(UTC).isoformat()


class Prices:
    """The session-cost service as the cost display sees it: each charger's tariff (a test may change it), and
    the stored transactions priced with the pricing engine until now, or until their stop."""

    def __init__(self) -> None:
        self.tariffs: dict[str, Tariff] = {}
        self.node: Node | None = None

    def tariff_for(self, charger_id: str, id_token: str | None) -> Tariff | None:
        return self.tariffs.get(charger_id)

    def _cost(self, transaction_id: int) -> Cost | None:
        assert self.node is not None
        rows = TransactionRepository(self.node.store)
        row = rows.get(transaction_id)
        if row is None or (t := self.tariffs.get(row.charger_id)) is None:
            return None
        readings = [
            s for s in rows.samples(transaction_id) if s.measurand == ENERGY_REGISTER and s.unit == "Wh"
        ]
        base = (
            row.meter_start_wh if row.meter_start_wh is not None else (readings[0].value if readings else 0.0)
        )
        samples = tuple(MeterSample(datetime.fromisoformat(s.at), max(0.0, s.value - base)) for s in readings)
        if row.stopped_at is not None and row.meter_stop_wh is not None:
            samples += (MeterSample(row.stopped_at, row.meter_stop_wh - base),)
        samples = tuple(s for s in samples if s.at >= row.started_at)
        usage = SessionUsage(started_at=row.started_at, samples=samples, stopped_at=row.stopped_at)
        until = row.stopped_at or max(datetime.now(UTC), row.started_at)
        return price(t, usage, until=until, tz=UTC, periods=False)

    def running_cost(self, transaction_id: int) -> Cost | None:
        return self._cost(transaction_id)

    async def final_cost(self, transaction_id: int) -> Cost | None:
        return self._cost(transaction_id)


class Station(ChargePoint201):
    @on(Action201.cost_updated)
    async def on_cost_updated(self, total_cost, transaction_id, **_):
        RECEIVED.append(
            (self.id, "CostUpdated", {"total_cost": total_cost, "transaction_id": transaction_id})
        )
        return result201.CostUpdated()

    @on(Action201.get_base_report)
    async def on_get_base_report(self, request_id, report_base, **_):
        return result201.GetBaseReport(status="Accepted")

    @after(Action201.get_base_report)
    async def send_report(self, request_id, report_base, **_):
        data = [
            {
                "component": {"name": "TariffCostCtrlr"},
                "variable": {"name": name, "instance": instance},
                "variable_attribute": [{"type": "Actual", "value": value, "mutability": "ReadWrite"}],
            }
            for name, instance, value in (("Enabled", "Tariff", "false"), ("Enabled", "Cost", "true"))
        ]
        await self.call(
            call201.NotifyReport(request_id=request_id, generated_at=now(), seq_no=0, report_data=data),
            suppress=False,
        )


class Point(ChargePoint16):
    running_rejected = False

    @on(Action16.data_transfer)
    async def on_data_transfer(self, vendor_id, message_id=None, data=None, **_):
        RECEIVED.append(
            (self.id, "DataTransfer", {"vendor_id": vendor_id, "message_id": message_id, "data": data})
        )
        if message_id == "RunningCost" and not self.running_rejected:
            self.running_rejected = True  # the first one: as a charger would that has not caught up yet
            return result16.DataTransfer(status="Rejected")
        return result16.DataTransfer(status="Accepted")

    @on(Action16.get_configuration)
    async def on_get_configuration(self, key=None, **_):
        keys = [
            {"key": "CustomDisplayCostAndPrice", "readonly": True, "value": "true"},
            {"key": "Language", "readonly": False, "value": "en"},
        ]
        return result16.GetConfiguration(configuration_key=keys)


class Fleet:
    """The chargers, on asyncio in their own thread; the trio side calls into it with `run`."""

    def __init__(self, ocpp_url: str) -> None:
        self.ocpp_url = ocpp_url
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.points: dict[str, Any] = {}
        self.stack = AsyncExitStack()
        self._stop: asyncio.Event | None = None

    def main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.ready.set()
        async with self.stack:
            await self._stop.wait()

    async def connect(self, charger_id: str, protocol: str) -> None:
        cls = Station if protocol == "ocpp2.0.1" else Point
        cp = await self.stack.enter_async_context(ocpp_charge_point(cls, self.ocpp_url, charger_id, protocol))
        self.points[charger_id] = cp
        if protocol == "ocpp1.6":
            req: Any = call16.BootNotification(charge_point_model="M", charge_point_vendor="V")
        else:
            req = call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
        assert (await cp.call(req, suppress=False)).status == "Accepted"

    async def call(self, charger_id: str, request: Any) -> Any:
        return await self.points[charger_id].call(request, suppress=False)

    async def stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `fn(*args)` on the fleet's loop and return its result (the trio loop idles meanwhile)."""
        assert self.loop is not None
        fut: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)
        return await trio.to_thread.run_sync(fut.result)


def received(charger_id: str, action: str, message_id: str | None = None) -> list[dict[str, Any]]:
    return [
        p
        for cid, a, p in list(RECEIVED)
        if cid == charger_id and a == action and (message_id is None or p["message_id"] == message_id)
    ]


async def until(
    what: Callable[[list[dict[str, Any]]], bool], charger_id: str, action: str, message_id: str | None = None
) -> list[dict[str, Any]]:
    """Wait until `what` holds for what the charger has received of these; return them. (The interval may tell
    a charger the cost before a meter value the test sent arrived: a test waits for the number it expects rather
    than counting messages.)"""
    with trio.fail_after(WAIT):
        while not what(got := received(charger_id, action, message_id)):  # noqa: ASYNC110 (another thread)
            await trio.sleep(0.05)
    return got


def cost_of(payload: dict[str, Any]) -> Any:
    return json.loads(payload["data"])["cost"]


async def arrives(
    count: int, charger_id: str, action: str, message_id: str | None = None
) -> list[dict[str, Any]]:
    """Wait until the charger has received `count` of these; return them."""
    with trio.fail_after(WAIT):
        while len(got := received(charger_id, action, message_id)) < count:  # noqa: ASYNC110 (another thread)
            await trio.sleep(0.05)
    return got


def energy(wh: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": now(),
            "sampled_value": [
                {"value": wh, "measurand": "Energy.Active.Import.Register", "unit_of_measure": {"unit": "Wh"}}
            ],
        }
    ]


def tx_event(kind: str, seq: int, tx: str, wh: float, **extra: Any) -> call201.TransactionEvent:
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic", "Ended": "StopAuthorized"}[kind]
    info: dict[str, Any] = {"transaction_id": tx}
    if kind == "Ended":
        info["stopped_reason"] = "Local"
    return call201.TransactionEvent(
        event_type=kind,
        timestamp=now(),
        trigger_reason=trigger,
        seq_no=seq,
        transaction_info=info,
        meter_value=energy(wh),
        evse={"id": 1, "connector_id": 1},
        **extra,
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_cost_on_2_0_1_and_1_6_chargers(tmp_path: Path) -> None:
    RECEIVED.clear()
    config = NodeConfig(
        ocpp_host="127.0.0.1",
        ocpp_port=0,
        api_port=0,
        public_host="127.0.0.1",
        public_port=0,
        db_path=str(tmp_path / "cost.db"),
        workers=1,
        cost_update_interval=1.0,
    )
    prices = Prices()
    prices.tariffs = {"CS1": ENERGY, "CSFREE": FREE, "CP1": ENERGY}
    out: dict[str, Any] = {}

    async def main() -> None:
        node = Node(config, tariffs=prices, session_costs=prices)
        prices.node = node
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            fleet = Fleet(f"ws://127.0.0.1:{node.gateway.ocpp_port}/ocpp")
            nursery.start_soon(trio.to_thread.run_sync, fleet.main)
            await trio.to_thread.run_sync(fleet.ready.wait)
            headers = {"Authorization": f"Bearer {node.first_admin_token}"}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{node.api_port}", headers=headers, timeout=30
            ) as http:
                try:
                    await scenario(node, fleet, http)
                finally:
                    await fleet.run(fleet.stop)
            node.request_stop()

    async def scenario(node: Node, fleet: Fleet, http: httpx.AsyncClient) -> None:
        async def ok(r: Awaitable[httpx.Response], status: int = 200) -> Any:
            response = await r
            assert response.status_code == status, response.text
            return response.json()

        for cid, protocol in (("CS1", "ocpp2.0.1"), ("CSFREE", "ocpp2.0.1"), ("CP1", "ocpp1.6")):
            await fleet.run(fleet.connect, cid, protocol)
        for tag in ("TOK", "TAG16"):
            await ok(http.post("/api/v1/id-tokens", json={"id_token": tag, "status": "Accepted"}), 201)
        # CS1 by an admin's override; CSFREE and CP1 by what their device models say once read.
        view = await ok(http.put("/api/v1/chargers/CS1/cost-display", json={"mode": "ocpp201"}))
        assert (view["mode"], view["source"]) == ("ocpp201", "override")
        for cid in ("CSFREE", "CP1"):
            await ok(http.post(f"/api/v1/chargers/{cid}/device-model/refresh"))
            view = await ok(http.get(f"/api/v1/chargers/{cid}/cost-display"))
            out[f"mode {cid}"] = (view["mode"], view["source"])

        # -- 2.0.1, CS1 --------------------------------------------------------------------------------------
        tok = {"id_token": "TOK", "type": "ISO14443"}
        authorized = await fleet.run(fleet.call, "CS1", call201.Authorize(id_token=tok))
        out["authorize"] = authorized.id_token_info
        started = await fleet.run(fleet.call, "CS1", tx_event("Started", 0, "TX-CS1", 0, id_token=tok))
        out["started"] = started.id_token_info
        await fleet.run(fleet.call, "CS1", tx_event("Updated", 1, "TX-CS1", 5000))
        out["running"] = (
            await until(
                lambda got: got[-1:] == [{"total_cost": 1.8, "transaction_id": "TX-CS1"}],
                "CS1",
                "CostUpdated",
            )
        )[-1]
        prices.tariffs["CS1"] = DEARER  # re-assigned mid-session
        updated = await fleet.run(fleet.call, "CS1", tx_event("Updated", 2, "TX-CS1", 10_000))
        out["updated"] = (updated.updated_personal_message, updated.id_token_info)
        out["running2"] = (
            await until(lambda got: bool(got) and got[-1]["total_cost"] == 4.8, "CS1", "CostUpdated")
        )[-1]
        out["running_all"] = [p["total_cost"] for p in received("CS1", "CostUpdated")]
        ended = await fleet.run(fleet.call, "CS1", tx_event("Ended", 3, "TX-CS1", 10_000))
        out["ended"] = ended.total_cost

        # -- 2.0.1, a free session on CSFREE ------------------------------------------------------------------
        await fleet.run(fleet.call, "CSFREE", tx_event("Started", 0, "TX-FREE", 0, id_token=tok))
        await fleet.run(fleet.call, "CSFREE", tx_event("Updated", 1, "TX-FREE", 3000))
        ended = await fleet.run(fleet.call, "CSFREE", tx_event("Ended", 2, "TX-FREE", 3000))
        out["free"] = ended.total_cost

        # -- 1.6 California Pricing, CP1 ----------------------------------------------------------------------
        authorized = await fleet.run(fleet.call, "CP1", call16.Authorize(id_tag="TAG16"))
        assert authorized.id_tag_info["status"] == "Accepted"
        out["set_user_price"] = await arrives(1, "CP1", "DataTransfer", "SetUserPrice")
        start = call16.StartTransaction(connector_id=1, id_tag="TAG16", meter_start=1000, timestamp=now())
        tx_id = (await fleet.run(fleet.call, "CP1", start)).transaction_id
        out["tx16"] = tx_id
        meter = [
            {
                "timestamp": now(),
                "sampled_value": [{"value": "6000", "measurand": "Energy.Active.Import.Register"}],
            }
        ]
        await fleet.run(
            fleet.call, "CP1", call16.MeterValues(connector_id=1, transaction_id=tx_id, meter_value=meter)
        )
        # The first RunningCost is answered Rejected (whatever it said), and sent again until accepted.
        running = await until(
            lambda got: len(got) >= 2 and cost_of(got[-1]) == 1.8, "CP1", "DataTransfer", "RunningCost"
        )
        await trio.sleep(1.5)  # accepted: not sent again while unchanged
        out["running16"] = running
        out["running16_unchanged"] = received("CP1", "DataTransfer", "RunningCost")
        stop = call16.StopTransaction(
            meter_stop=11_000, timestamp=now(), transaction_id=tx_id, reason="Local"
        )
        await fleet.run(fleet.call, "CP1", stop)
        out["final16"] = await arrives(1, "CP1", "DataTransfer", "FinalCost")
        await trio.sleep(1.5)  # nothing more comes (the start did not repeat the price; the session is over)
        out["set_user_price_after"] = received("CP1", "DataTransfer", "SetUserPrice")
        out["running16_after"] = received("CP1", "DataTransfer", "RunningCost")
        out["cs1_after"] = received("CS1", "CostUpdated")
        out["counts"] = dict(node.cost_display.counts.by)
        out["metrics"] = (await http.get("/metrics")).text

    trio.run(main)

    assert out["mode CSFREE"] == ("ocpp201", "device_model")
    assert out["mode CP1"] == ("california", "device_model")
    # 2.0.1: the tariff text at Authorize and at the start.
    message = {"format": "UTF8", "content": "0.36 EUR/kWh"}
    assert out["authorize"] == {"status": "Accepted", "personal_message": message}
    assert out["started"] == {"status": "Accepted", "personal_message": message}
    assert out["running"] == {"total_cost": 1.8, "transaction_id": "TX-CS1"}  # 5 kWh at 0.36
    # The tariff changed: the next reply says so; the running cost follows it (10 kWh at 0.48).
    assert out["updated"] == ({"format": "UTF8", "content": "0.48 EUR/kWh"}, None)
    assert out["running2"] == {"total_cost": 4.8, "transaction_id": "TX-CS1"}
    assert out["running_all"] == sorted(
        out["running_all"]
    )  # never down; each number once (sent when changed)
    assert len(set(out["running_all"])) == len(out["running_all"])
    assert out["cs1_after"][-1]["total_cost"] == 4.8  # none after the transaction ended
    assert out["ended"] == 4.8
    assert out["free"] == 0.0  # a free session says so (omitted would mean "not free")

    # 1.6: the price after Authorize (only: the start 0 s later did not repeat it), the running cost, the final.
    (sup,) = out["set_user_price"]
    assert sup["vendor_id"] == "org.openchargealliance.costmsg"
    assert json.loads(sup["data"]) == {"idToken": "TAG16", "priceText": "0.36 EUR/kWh"}
    assert len(out["set_user_price_after"]) == 1
    last = json.loads(out["running16"][-1]["data"])
    assert (last["transactionId"], last["meterValue"], last["cost"], last["state"]) == (
        out["tx16"],
        6000,
        1.8,
        "Charging",
    )
    assert last["chargingPrice"] == {"kWhPrice": 0.36}
    assert len(out["running16"]) >= 2  # the first was Rejected
    assert out["running16_after"] == out["running16_unchanged"] == out["running16"]  # unchanged since; ended
    (final,) = out["final16"]
    data = json.loads(final["data"])
    assert (data["transactionId"], data["cost"]) == (out["tx16"], 3.6)  # 10 kWh at 0.36
    assert data["priceText"].startswith("Total 3.60 EUR (10.00 kWh, ")
    assert out["counts"][("RunningCost", "rejected")] == 1
    assert out["counts"][("FinalCost", "accepted")] == 1
    assert 'ampgate_cost_display_total{message="RunningCost",outcome="rejected"} 1.0' in out["metrics"]
