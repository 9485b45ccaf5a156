"""The load control plane's cost per tick at N live sessions: demand in, the allocator, charging profiles out.

    .venv/bin/python bench/load_ticker.py --sessions 100000 --json bench/results/load-ticker-100000.json

What runs is the node's own `LoadTicker` (python/ampgate/loadctl/) on a real SQLite store holding the topology
(100 chargers per site, each site 2 panels of 50, 3-phase 32 A chargers with one session each) and N open
transactions, with the real `DemandResponse`. Each tick, 10 % of the sessions get a new meter sample (a
`transaction.updated` event on the bus, as the OCPP handlers publish them: per-phase currents and power), so
their demand changes. The Commander is replaced by a counter that answers every SetChargingProfile Accepted at
once: what is measured is the control plane's work per tick (turning samples into demand, the allocator, the
profiles built and handed to the Commander), not the chargers' round trips, the gateway or the wire (the
connection benches measure those). CPU time of the process per tick is the figure (`time.process_time`), with
the allocator's own share (the Rust tick) beside it.

The comparison in the same run is the allocator alone on the same sessions (its tick), the part of the cost that
is not Python's.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from ampgate.bus import EventBus  # noqa: E402
from ampgate.clock import Clock, iso_utc  # noqa: E402
from ampgate.demand import DemandRepository, DemandResponse  # noqa: E402
from ampgate.events import TransactionUpdated  # noqa: E402
from ampgate.load import Sites, TopologyRepository  # noqa: E402
from ampgate.loadctl import LoadHistoryRepository, LoadTicker, Settings  # noqa: E402
from ampgate.store import ChargerRepository, Store, TransactionRepository  # noqa: E402
from ampgate.store.transactions import Sample  # noqa: E402

PER_SITE = 100


class Ticking(Clock):
    """The node's clock, moved on one tick period per tick, so the bench's ticks are the node's one-second ticks
    (the EVs' meter samples then count as settled, and their demand changes as it would)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def wall(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return super().monotonic() + self.offset


class Online:
    online = True
    protocol = "ocpp1.6"


class Presence:
    def get(self, charger_id: str) -> Online:
        return Online()


class Accepting:
    """Stands in for the Commander: every profile Accepted at once, counted."""

    def __init__(self) -> None:
        self.sent = 0

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        self.sent += 1
        return {"status": "Accepted"}


class NoLimits:
    def limits(self, charger_id: str) -> list[Any]:
        return []


def seed(store: Store, sessions: int) -> None:
    """Sites, panels, placements and one open 1.6 transaction per charger, written straight into the tables."""
    db = sqlite3.connect(store.path, isolation_level=None)
    now = iso_utc(time.time())
    db.execute("BEGIN")
    for s in range(sessions // PER_SITE):
        site = f"S{s:05d}"
        db.execute(
            "INSERT INTO sites (id, limit_l1_a, limit_l2_a, limit_l3_a, voltage_v, time_zone, created_at, updated_at)"
            " VALUES (?, 1000, 1000, 1000, 230, 'UTC', ?, ?)",
            (site, now, now),
        )
        for p in range(2):
            db.execute(
                "INSERT INTO capacity_nodes (id, site_id, parent_id, limit_l1_a, limit_l2_a, limit_l3_a, created_at,"
                " updated_at) VALUES (?, ?, NULL, 630, 630, 630, ?, ?)",
                (f"{site}-P{p}", site, now, now),
            )
        for c in range(PER_SITE):
            cid = f"{site}-C{c:03d}"
            db.execute(
                "INSERT INTO chargers (id, registered_at, protocol, accepted) VALUES (?, ?, 'ocpp1.6', 1)",
                (cid, now),
            )
            db.execute(
                "INSERT INTO charger_placements (charger_id, site_id, node_id, phases, max_a, priority, weight,"
                " created_at, updated_at) VALUES (?, ?, ?, 'L1L2L3', 32, 0, 1, ?, ?)",
                (cid, site, f"{site}-P{c % 2}", now, now),
            )
            db.execute(
                "INSERT INTO transactions (charger_id, protocol, connector_id, id_token, started_at, meter_start_wh)"
                " VALUES (?, 'ocpp1.6', 1, 'BENCH', ?, 0)",
                (cid, now),
            )
    db.execute("COMMIT")
    db.close()


async def run(sessions: int, ticks: int) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="ampgate-bench-")
    store = Store(os.path.join(tmp, "bench.db"))
    clock = Ticking()
    bus = EventBus()
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        seed(store, sessions)
        topology = TopologyRepository(store)
        sites = Sites(topology, ChargerRepository(store), bus, clock)
        demand = DemandResponse(DemandRepository(store), sites.node_exists, bus.publish, clock)
        calls = Accepting()
        ticker = LoadTicker(
            sites=sites,
            transactions=TransactionRepository(store),
            presence=Presence(),
            calls=calls,
            demand=demand,
            external=NoLimits(),
            rate_unit=lambda charger_id: "A",
            history=LoadHistoryRepository(store),
            bus=bus,
            clock=clock,
            settings=Settings(min_interval_s=0.0, min_hold_s=0.0, reconcile_s=1e9, history_sample_s=1e9),
        )
        await nursery.start(functools.partial(ticker.run, ticking=False))
        t0 = time.process_time()
        await ticker.tick()
        first_s = time.process_time() - t0
        # Let the first profiles go out, so the ticks measured are steady ones.
        await trio.sleep(0.5)
        clock.offset += 5.0
        txs = TransactionRepository(store).open_transactions()
        rng = random.Random(1)
        cpu: list[float] = []
        alloc: list[float] = []
        sent_before = calls.sent
        for _ in range(ticks):
            clock.offset += 1.0
            at = iso_utc(clock.wall())
            for tx in rng.sample(txs, max(1, len(txs) // 10)):
                a = rng.uniform(4.0, 32.0)
                bus.publish(
                    TransactionUpdated(
                        at=clock.now(),
                        charger_id=tx.charger_id,
                        transaction_id=tx.id,
                        remote_id=str(tx.id),
                        samples=[
                            Sample(at, "Current.Import", "L1", a, "A"),
                            Sample(at, "Current.Import", "L2", a, "A"),
                            Sample(at, "Current.Import", "L3", a, "A"),
                            Sample(at, "Power.Active.Import", "", a * 690.0, "W"),
                        ],
                    )
                )
            t0 = time.process_time()
            await trio.sleep(0.01)  # the ticker's subscription takes the samples in
            await ticker.tick()
            await trio.sleep(0.01)  # the profiles' tasks run
            cpu.append((time.process_time() - t0) * 1000.0)
            alloc.append(ticker.last_alloc_s * 1000.0)
        sent = calls.sent - sent_before
        nursery.cancel_scope.cancel()
    cpu.sort()
    alloc.sort()
    return {
        "sessions": sessions,
        "ticks": ticks,
        "changing_per_tick": max(1, sessions // 10),
        "first_tick_cpu_ms": round(first_s * 1000.0, 1),
        "tick_cpu_ms_p50": round(statistics.median(cpu), 2),
        "tick_cpu_ms_p99": round(cpu[min(len(cpu) - 1, int(0.99 * len(cpu)))], 2),
        "allocator_ms_p50": round(statistics.median(alloc), 2),
        "allocator_ms_p99": round(alloc[min(len(alloc) - 1, int(0.99 * len(alloc)))], 2),
        "profiles_per_tick": round(sent / ticks, 1),
        "measures": "process CPU per tick: samples in (bus), demand, allocator, profiles built and handed to a "
        "Commander that answers Accepted at once; the allocator's share alone beside it",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    result = trio.run(run, a.sessions, a.ticks)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    print()
    print(f"{'sessions':>10} {'tick CPU p50':>13} {'p99':>8} {'allocator p50':>14} {'profiles/tick':>14}")
    print(
        f"{result['sessions']:>10} {result['tick_cpu_ms_p50']:>10} ms {result['tick_cpu_ms_p99']:>5} ms"
        f" {result['allocator_ms_p50']:>11} ms {result['profiles_per_tick']:>14}"
    )


if __name__ == "__main__":
    main()
