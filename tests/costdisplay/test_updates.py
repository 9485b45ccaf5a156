"""The running cost at an interval, on trio's MockClock: CostUpdated to 2.0.1 chargers in mode ocpp201, the
California RunningCost to 1.6 chargers in mode california; spread over the interval and bounded per tick;
nothing when unchanged, without a tariff, offline or in another mode; open transactions followed from the bus
and reconciled from the table."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import trio
import trio.testing

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.costdisplay.replies import ReplyHooks
from ampgate.costdisplay.resolver import Modes
from ampgate.costdisplay.sender import Sender
from ampgate.costdisplay.stats import Counts
from ampgate.costdisplay.updates import TICK_S, RunningCosts
from ampgate.events import ConnectorStatusChanged, TransactionEnded, TransactionStarted
from ampgate.ocpp.envelope import OCPP16, OCPP201
from ampgate.pricing import price
from ampgate.store import TransactionRow
from tests.pricing.builders import comp, element, session, tariff

from .fakes import Calls, Chargers, Costs, Rows, Tariffs, Variables

START = datetime(2026, 11, 30, 7, tzinfo=UTC)
ENERGY = tariff(element(comp("ENERGY", "0.30", vat=20)), id="ENERGY")
INTERVAL = 60.0


def cost(kwh: float):
    usage = session(START, charge_min=30, kwh=kwh, ended=False)
    return price(ENERGY, usage, until=START + timedelta(minutes=30), tz=UTC, periods=False)


def row(tx_id: int, charger_id: str, protocol: str, *, stopped: bool = False) -> TransactionRow:
    return TransactionRow(
        id=tx_id,
        charger_id=charger_id,
        protocol=protocol,
        remote_id=f"R{tx_id}" if protocol == OCPP201 else None,
        evse_id=1 if protocol == OCPP201 else None,
        connector_id=1,
        id_token="TOK",
        started_at=START,
        stopped_at=START if stopped else None,
        meter_start_wh=1000.0,
        meter_stop_wh=None,
        energy_wh=None,
        stop_reason=None,
    )


class Transactions:
    def __init__(self) -> None:
        self.rows: dict[int, TransactionRow] = {}

    def get(self, tx_id: int) -> TransactionRow | None:
        return self.rows.get(tx_id)

    def open_transactions(self) -> list[TransactionRow]:
        return [r for r in self.rows.values() if r.stopped_at is None]


class WallClock(Clock):
    def wall(self) -> float:
        return START.timestamp() + trio.current_time()


class Rig:
    def __init__(self, *, max_per_tick: int = 4000, rand: Callable[[], float] = random.random) -> None:
        self.bus = EventBus()
        self.clock = WallClock()
        self.variables = Variables()
        protocols = {f"CS{i}": OCPP201 for i in range(300)} | {f"CP{i}": OCPP16 for i in range(3)}
        for cid, protocol in protocols.items():
            if protocol == OCPP201:
                self.variables.values[(cid, "TariffCostCtrlr", "Enabled", "Cost")] = "true"
            else:
                self.variables.values[(cid, "", "CustomDisplayCostAndPrice", "")] = "true"
        self.modes = Modes(Rows(), Chargers(**protocols), self.variables, self.bus, self.clock)  # type: ignore[arg-type]
        self.modes.load()
        self.tariffs = Tariffs()
        self.costs = Costs()
        self.calls = Calls()
        self.counts = Counts()
        self.transactions = Transactions()
        self.sender = Sender(self.calls, self.counts)  # type: ignore[arg-type]
        hooks = ReplyHooks(
            self.modes,
            self.tariffs,
            self.costs,
            self.transactions,
            self.sender,
            self.counts,
            self.clock,  # type: ignore[arg-type]
        )
        self.updates = RunningCosts(
            self.modes,
            self.tariffs,
            self.costs,
            self.transactions,  # type: ignore[arg-type]
            self.sender,
            hooks,
            self.counts,
            self.bus,
            self.clock,
            interval=INTERVAL,
            max_per_tick=max_per_tick,
            rand=rand,
        )

    def add(self, tx_id: int, charger_id: str, protocol: str, kwh: float = 5.0) -> None:
        self.transactions.rows[tx_id] = row(tx_id, charger_id, protocol)
        self.costs.running[tx_id] = cost(kwh)


def run(body, rig: Rig | None = None) -> None:
    async def main() -> None:
        r = rig or Rig()
        async with trio.open_nursery() as nursery:
            await nursery.start(r.sender.run)
            await body(r, nursery)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_cost_updated_every_interval_when_the_total_changed() -> None:
    async def body(rig: Rig, nursery: trio.Nursery) -> None:
        await nursery.start(rig.updates.run)
        rig.add(1, "CS1", OCPP201, kwh=5)
        rig.bus.publish(TransactionStarted(
            at=START, charger_id="CS1", transaction_id=1, remote_id="R1", evse_id=1, connector_id=1,
            id_token="TOK", started_at=START, meter_start_wh=1000.0,
        ))  # fmt: skip
        await trio.sleep(INTERVAL - 2)
        assert rig.calls.of("CostUpdated") == []  # the first an interval after the start
        await trio.sleep(3)
        assert rig.calls.of("CostUpdated") == [("CS1", {"totalCost": 1.8, "transactionId": "R1"})]
        await trio.sleep(INTERVAL)  # unchanged: not sent again
        assert len(rig.calls.of("CostUpdated")) == 1 and rig.counts.get("CostUpdated", "unchanged") == 1
        rig.costs.running[1] = cost(10)
        await trio.sleep(INTERVAL)
        assert rig.calls.of("CostUpdated")[-1] == ("CS1", {"totalCost": 3.6, "transactionId": "R1"})
        rig.transactions.rows[1] = row(1, "CS1", OCPP201, stopped=True)
        rig.bus.publish(TransactionEnded(
            at=START, charger_id="CS1", transaction_id=1, remote_id="R1", stopped_at=START,
            stop_reason="Local", meter_stop_wh=None, energy_wh=None,
        ))  # fmt: skip
        rig.costs.running[1] = cost(20)
        await trio.sleep(3 * INTERVAL)
        assert len(rig.calls.of("CostUpdated")) == 2
        assert rig.counts.get("CostUpdated", "accepted") == 2

    run(body)


def test_updates_are_spread_over_the_interval_and_bounded_per_tick() -> None:
    rig = Rig(max_per_tick=6)
    for i in range(300):
        rig.add(i + 1, f"CS{i}", OCPP201)

    async def body(rig: Rig, nursery: trio.Nursery) -> None:
        per_tick: Counter[int] = Counter()
        # Found at start-up (a restart): each at a random moment of the first interval, not all at once.
        await nursery.start(rig.updates.run)
        sent = 0
        for tick in range(int(INTERVAL / TICK_S) + 10):
            await trio.sleep(TICK_S)
            now = len(rig.calls.of("CostUpdated"))
            per_tick[tick] = now - sent
            sent = now
        assert sent == 300  # every one within the interval (and the few ticks the bound delayed)
        assert max(per_tick.values()) <= 6
        assert sum(1 for n in per_tick.values() if n) >= 45  # spread: sent in most of the interval's ticks

    run(body, rig)


def test_nothing_without_a_tariff_offline_or_in_another_mode() -> None:
    async def body(rig: Rig, nursery: trio.Nursery) -> None:
        rig.add(1, "CS1", OCPP201)
        rig.costs.running[1] = None  # no tariff
        rig.add(2, "CS2", OCPP201)
        rig.calls.offline.add("CS2")
        rig.add(3, "CS3", OCPP201)
        await rig.modes.set("CS3", "none")
        rig.add(4, "CS4", OCPP201)
        rig.costs.running[4] = RuntimeError("engine")
        await nursery.start(rig.updates.run)
        await trio.sleep(2 * INTERVAL)  # each looked at twice: in the middle of each interval
        assert rig.calls.sent == []
        assert rig.counts.get("CostUpdated", "no_tariff") == 2
        assert rig.counts.get("CostUpdated", "pricing_error") == 2

    # Found at start-up, each is due at a random moment of the first interval: the middle one here, so how
    # many looks fit in two intervals does not depend on the draw.
    run(body, Rig(rand=lambda: 0.5))


def test_16_running_cost_with_the_register_the_state_and_the_prices() -> None:
    async def body(rig: Rig, nursery: trio.Nursery) -> None:
        rig.tariffs.by_charger["CP1"] = ENERGY
        rig.add(7, "CP1", OCPP16, kwh=5)
        await nursery.start(rig.updates.run)
        rig.bus.publish(ConnectorStatusChanged(
            at=START, charger_id="CP1", evse_id=None, connector_id=1, old_status="Charging",
            status="SuspendedEV", error_code=None, reported_at=START,
        ))  # fmt: skip
        await trio.sleep(INTERVAL + 1)
        ((cid, payload),) = rig.calls.of("RunningCost")
        data = json.loads(payload["data"])
        assert cid == "CP1" and data["transactionId"] == 7
        assert (data["meterValue"], data["cost"], data["state"]) == (6000, 1.8, "Idle")
        assert data["chargingPrice"] == {"kWhPrice": 0.36}
        assert datetime.fromisoformat(data["timestamp"]) > START
        # A Rejected RunningCost is counted, and sent again next time (the charger never showed it).
        rig.calls.replies["RunningCost"] = {"status": "Rejected"}
        rig.costs.running[7] = cost(6)
        await trio.sleep(INTERVAL)
        await trio.sleep(INTERVAL)
        assert rig.counts.get("RunningCost", "rejected") == 2

    run(body, Rig(rand=lambda: 0.5))  # due in the middle of each interval, as above


def test_reconcile_follows_starts_and_ends_the_bus_lost() -> None:
    async def body(rig: Rig, nursery: trio.Nursery) -> None:
        rig.add(1, "CS1", OCPP201)
        rig.transactions.rows[2] = row(2, "CS2", OCPP201, stopped=True)
        await nursery.start(rig.updates.run)
        assert set(rig.updates.tracked) == {1}
        # A start and an end the bus never delivered.
        rig.add(3, "CS3", OCPP201)
        rig.transactions.rows[1] = row(1, "CS1", OCPP201, stopped=True)
        from ampgate.bus import EventsLost

        rig.updates.on_event(EventsLost(2))
        await trio.sleep(TICK_S + 0.1)
        assert set(rig.updates.tracked) == {3}
        assert rig.costs.running[3].total_cost.incl_vat == Decimal("1.80")

    run(body)
