"""The load ticker over the real store, topology, demand-response service and allocator, with trio's MockClock
for time and a stand-in for the chargers' answers: profiles out and their answers tracked, a charger that rejects
them flagged, one that keeps drawing more than it accepted flagged, headroom an EV leaves unused given to the
other, a session whose transaction ended dropped. A charger that rejects its profile is counted at what it had
until it accepts one again."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
import trio.testing

from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.demand import DemandRepository, DemandResponse
from ampgate.events import LoadOverdraw, LoadProfileRejected, TransactionUpdated
from ampgate.load import Sites, TopologyRepository
from ampgate.load.model import PlacementSpec, SiteSpec
from ampgate.loadctl import LoadHistoryRepository, LoadTicker, Settings
from ampgate.store import ChargerRepository, Store, TransactionRepository
from ampgate.store.transactions import Sample, TransactionStart, TransactionStop

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Online:
    online = True
    protocol = "ocpp1.6"


class Presence:
    def get(self, charger_id: str) -> Online:
        return Online()


class Chargers:
    """Answers SetChargingProfile: Accepted, or what `answers` says for a charger; keeps every request."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def call(self, charger_id: str, action: str, payload: Any) -> Any:
        assert action == "SetChargingProfile"
        self.sent.append((charger_id, payload))
        return {"status": self.answers.get(charger_id, "Accepted")}

    def limits(self, charger_id: str) -> list[float]:
        return [
            p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
            for c, p in self.sent
            if c == charger_id and p["csChargingProfiles"]["chargingProfilePurpose"] == "TxProfile"
        ]


class NoLimits:
    def limits(self, charger_id: str) -> list[Any]:
        return []


def samples(amps: float) -> list[Sample]:
    at = "2026-11-30T12:00:00.000Z"
    return [Sample(at, "Current.Import", f"L{p}", amps, "A") for p in (1, 2, 3)]


def test_profiles_answers_flags_and_unused_headroom(tmp_path: Path) -> None:
    async def main() -> None:
        store = Store(str(tmp_path / "t.db"))
        bus = EventBus()
        clock = Clock()
        events = bus.subscribe(["load.profile_rejected", "load.overdraw"])
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            chargers = ChargerRepository(store)
            sites = Sites(TopologyRepository(store), chargers, bus, clock)
            await sites.create_site(SiteSpec(id="S", phase_limits_a=(32.0, 32.0, 32.0)))
            txs = TransactionRepository(store)
            tx_of = {}
            for cp in ("A", "B"):
                await chargers.register(cp, None)
                await sites.place(cp, PlacementSpec(node_id="S", phases="L1L2L3", max_a=32.0))
                tx_of[cp], _ = await txs.start(
                    TransactionStart(
                        charger_id=cp, connector_id=1, id_token="T", started_at=T0, meter_start_wh=0
                    )
                )
            answers = Chargers()
            answers.answers["B"] = "Rejected"
            ticker = LoadTicker(
                sites=sites,
                transactions=txs,
                presence=Presence(),
                calls=answers,
                demand=DemandResponse(DemandRepository(store), sites.node_exists, bus.publish, clock),
                external=NoLimits(),
                rate_unit=lambda charger_id: "A",
                history=LoadHistoryRepository(store),
                bus=bus,
                clock=clock,
                settings=Settings(min_hold_s=0.0, min_interval_s=10.0),
            )
            await nursery.start(functools.partial(ticker.run, ticking=False))

            await ticker.tick()
            await trio.sleep(0.1)
            assert answers.limits("A") == [16.0] and answers.limits("B") == [16.0]
            got = events.receive_nowait()
            assert isinstance(got, LoadProfileRejected) and (got.charger_id, got.status) == ("B", "Rejected")
            view = ticker.site_load("S")
            assert view is not None
            flags = {a["charger_id"]: a["flags"] for a in view["allocations"]}
            assert flags == {"A": [], "B": ["rejects_profiles"]}

            # A keeps drawing 20 A, past the 16 A it accepted, sample after sample (once settled): flagged.
            await trio.sleep(5)
            for _ in range(3):
                bus.publish(
                    TransactionUpdated(
                        at=clock.now(),
                        charger_id="A",
                        transaction_id=tx_of["A"],
                        remote_id="x",
                        samples=samples(20.0),
                    )
                )
                await trio.sleep(0.1)
            got = events.receive_nowait()
            assert isinstance(got, LoadOverdraw) and (got.allocated_a, got.measured_a) == (16.0, 20.0)
            view = ticker.site_load("S")
            assert view is not None
            assert {a["charger_id"]: a["flags"] for a in view["allocations"]}["A"] == ["overdraws"]

            # A rejecting charger is counted at what it had (16 A) until it takes a profile again: B now accepts
            # (its retry of its last share goes out after the connector's minimum interval).
            answers.answers["B"] = "Accepted"
            await trio.sleep(11)
            await ticker.tick()
            await trio.sleep(0.1)
            view = ticker.site_load("S")
            assert view is not None
            assert {a["charger_id"]: a["flags"] for a in view["allocations"]}["B"] == []

            # A's EV now takes only 8 A: capped at its draw plus room to grow (8 + 2 + 1.6), B gets the rest.
            bus.publish(
                TransactionUpdated(
                    at=clock.now(),
                    charger_id="A",
                    transaction_id=tx_of["A"],
                    remote_id="x",
                    samples=samples(8.0),
                )
            )
            await trio.sleep(0.1)
            await ticker.tick()
            await trio.sleep(11)  # B's increase waits for the connector's minimum interval
            await ticker.tick()
            await trio.sleep(11)
            await ticker.tick()
            await trio.sleep(0.1)
            view = ticker.site_load("S")
            assert view is not None
            limits = {a["charger_id"]: a["limit_a"] for a in view["allocations"]}
            assert limits == {"A": 11.6, "B": 20.4}
            assert answers.limits("A")[-1] == 11.6 and answers.limits("B")[-1] == 20.4
            assert {a["charger_id"]: a["flags"] for a in view["allocations"]}["A"] == []

            # A's transaction ends: its session goes at the next reconcile, B may take the whole site.
            await txs.stop(
                TransactionStop(
                    charger_id="A",
                    tx_id=tx_of["A"],
                    stopped_at=T0,
                    meter_stop_wh=1000,
                    reason="Local",
                    samples=[],
                )
            )
            ticker._reconcile_at = (
                0.0  # as after lost events; the transaction.ended event was not published here
            )
            await ticker.tick()
            view = ticker.site_load("S")
            assert view is not None
            assert [(a["charger_id"], a["limit_a"]) for a in view["allocations"]] == [("B", 32.0)]
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
