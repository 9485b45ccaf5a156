"""The VEN against the stand-in VTN over loopback sockets, with in-test implementations of what it is handed
(capacity limits, site readings, the site directory), a real store for its price table, and its callback route
served by the real public app on a loopback port of its own.

Time: the wall clock (`TestClock.advance`) is the test's; tests drive the VEN with `poll_once()` and `tick()`
rather than waiting for its loop, so nothing sleeps."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from ampgate.clock import Clock
from ampgate.config import NodeConfig
from ampgate.events import Event
from ampgate.httpserver import bind, serve
from ampgate.load.model import SiteRow
from ampgate.node import Node
from ampgate.openadr import OpenAdrSettings, OpenAdrVen, PriceRepository, VenSettings, open_ven
from ampgate.public import TransferLimiter, create_public_app
from ampgate.public.openadr import NOTIFICATIONS_PATH, openadr_notification
from ampgate.store import Store

from .vtn import StandInVtn

# A Monday morning, so intervals fall on round times.
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
EAN_A = "871687120000000018"
EAN_B = "871687120000000025"


class TestClock(Clock):
    """The wall clock starts at T0 and moves only when the test says."""

    def __init__(self) -> None:
        self.at = T0

    def wall(self) -> float:
        return self.at.timestamp()

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


@dataclass
class Applied:
    node: str
    limit_kw: float
    start: datetime
    end: datetime


@dataclass
class FakeLimits:
    """CapacityLimits as the demand service keeps them: live until cancelled or ended."""

    clock: TestClock
    live: dict[tuple[str, str], Applied] = field(default_factory=dict)
    calls: list[tuple[str, str, Applied | None]] = field(default_factory=list)

    async def apply_external(
        self, *, source: str, ref: str, node: str, limit_kw: float, start: datetime, end: datetime
    ) -> None:
        applied = Applied(node, limit_kw, start, end)
        self.live[(source, ref)] = applied
        self.calls.append(("apply", ref, applied))

    async def cancel_external(self, *, source: str, ref: str) -> None:
        self.live.pop((source, ref), None)
        self.calls.append(("cancel", ref, None))

    def external_refs(self, source: str) -> set[str]:
        return {ref for (s, ref), a in self.live.items() if s == source and a.end > self.clock.at}

    def take(self) -> list[tuple[str, str, Applied | None]]:
        out, self.calls = self.calls, []
        return out


@dataclass
class FakeReadings:
    kw: dict[str, float] = field(default_factory=dict)
    kwh: dict[str, float] = field(default_factory=dict)
    asked: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def measured_kw(self, site_id: str) -> float | None:
        return self.kw.get(site_id)

    def energy_kwh(self, site_id: str, start: datetime, end: datetime) -> float | None:
        self.asked.append((site_id, start, end))
        return self.kwh.get(site_id)


def site(site_id: str, ean: str | None = None) -> SiteRow:
    return SiteRow(
        id=site_id,
        name=None,
        phase_limits_a=(200.0, 200.0, 200.0),
        limit_kw=None,
        voltage_v=230.0,
        time_zone="Europe/Amsterdam",
        location=None,
        ean=ean,
        created_at=T0,
        updated_at=T0,
    )


@dataclass
class FakeSites:
    rows: list[SiteRow] = field(default_factory=list)

    def page_sites(self, limit: int, after: str | None = None) -> list[SiteRow]:
        rows = sorted((r for r in self.rows if after is None or r.id > after), key=lambda r: r.id)
        return rows[:limit]


class Health:
    def report(self) -> dict[str, Any]:
        return {"status": "ok", "version": "test"}


@dataclass
class Harness:
    vtn: StandInVtn
    ven: OpenAdrVen
    limits: FakeLimits
    readings: FakeReadings
    sites: FakeSites
    prices: PriceRepository
    clock: TestClock
    published: list[Event]
    public_url: str
    nursery: trio.Nursery

    def bus(self, type_: type) -> list[Any]:
        return [e for e in self.published if isinstance(e, type_)]


Scenario = Callable[[Harness], Awaitable[None]]


@pytest.fixture
def ven(tmp_path: Path) -> Callable[..., None]:
    """`ven(scenario, **settings)`: run `await scenario(Harness)` with the stand-in VTN listening, sites A (EAN
    EAN_A) and B (EAN_B), and a VEN named "NL-AMP" seeded "pinned" (VenSettings fields may be overridden)."""

    def run(scenario: Scenario, *, callbacks: bool = True, **overrides: Any) -> None:
        async def main() -> None:
            clock = TestClock()
            store = Store(str(tmp_path / "openadr.db"), now=clock.now)
            vtn = StandInVtn()
            limits = FakeLimits(clock)
            readings = FakeReadings()
            sites = FakeSites([site("A", EAN_A), site("B", EAN_B)])
            prices = PriceRepository(store)
            published: list[Event] = []
            settings = VenSettings(
                **{
                    "ven_name": "NL-AMP",
                    "poll_interval_s": 60.0,
                    "safe_mode_timeout_s": 300.0,
                    "seed": "pinned",
                    **overrides,
                }
            )
            try:
                await _run(clock, store, vtn, limits, readings, sites, prices, published, settings)
            finally:
                await vtn.aclose()

        async def _run(
            clock: TestClock,
            store: Store,
            vtn: StandInVtn,
            limits: FakeLimits,
            readings: FakeReadings,
            sites: FakeSites,
            prices: PriceRepository,
            published: list[Event],
            settings: VenSettings,
        ) -> None:
            async with trio.open_nursery() as nursery:
                await nursery.start(store.run)
                await vtn.start(nursery)
                public = bind("127.0.0.1", 0)
                public_url = f"http://127.0.0.1:{public.getsockname()[1]}"
                async with open_ven(
                    OpenAdrSettings(
                        vtn_url=vtn.url, client_id="ven-client", client_secret="ven-secret", ven=settings
                    ),
                    limits=limits,
                    readings=readings,
                    sites=sites,
                    prices=prices,
                    publish=published.append,
                    clock=clock,
                    callback_url=(lambda: public_url + NOTIFICATIONS_PATH) if callbacks else None,
                ) as the_ven:
                    app = create_public_app(
                        Health(), TransferLimiter(4), [openadr_notification], {"openadr": the_ven}
                    )
                    await nursery.start(serve, app, public)
                    with trio.fail_after(60):
                        await scenario(
                            Harness(
                                vtn,
                                the_ven,
                                limits,
                                readings,
                                sites,
                                prices,
                                clock,
                                published,
                                public_url,
                                nursery,
                            )
                        )
                nursery.cancel_scope.cancel()

        trio.run(main)

    return run


def capacity_event(
    program_id: str,
    *,
    kw: list[float],
    start: datetime,
    duration: str = "PT15M",
    targets: list[dict[str, Any]] | None = None,
    randomize: str | None = None,
    units: str = "KW",
    payload_type: str = "IMPORT_CAPACITY_LIMIT",
    name: str | None = None,
) -> dict[str, Any]:
    """A GAC-style event: one payload descriptor, the event's interval period, one value per interval."""
    period: dict[str, Any] = {"start": start.isoformat().replace("+00:00", "Z"), "duration": duration}
    if randomize is not None:
        period["randomizeStart"] = randomize
    event: dict[str, Any] = {
        "programID": program_id,
        "payloadDescriptors": [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": payload_type, "units": units}
        ],
        "intervalPeriod": period,
        "intervals": [
            {"id": i, "payloads": [{"type": payload_type, "values": [v]}]} for i, v in enumerate(kw)
        ],
        "targets": targets
        if targets is not None
        else [{"type": "POWER_SERVICE_LOCATION", "values": [EAN_A]}],
    }
    if name is not None:
        event["eventName"] = name
    return event


GAC_PROGRAM = {
    "programName": "grid-aware-charging",
    "programType": "DSO_CPO_INTERFACE-2.1.1",
    "retailerName": "DSO",
    "bindingEvents": True,
    "intervalPeriod": {"start": "2026-01-01T00:00:00Z", "duration": "PT15M"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_node_with_vtn(
    tmp_path: Path,
    scenario: Callable[[Node, StandInVtn, trio.Nursery], Awaitable[None]],
    *,
    within: float,
    **config: Any,
) -> None:
    """Run a real node (its own SQLite, one gateway worker, the public listener on loopback for the VTN's
    callbacks) whose VEN talks to a fresh stand-in VTN, and `await scenario(node, vtn, nursery)` in it (the
    nursery the node runs in); `config`: NodeConfig fields besides those. The node is stopped when the scenario
    returns, the VTN closed."""
    vtn = StandInVtn()
    try:
        async with trio.open_nursery() as nursery:
            await vtn.start(nursery)
            public_port = _free_port()
            node = Node(
                NodeConfig(
                    ocpp_host="127.0.0.1",
                    ocpp_port=0,
                    api_port=0,
                    public_host="127.0.0.1",
                    public_port=public_port,
                    public_base_url=f"http://127.0.0.1:{public_port}",
                    db_path=str(tmp_path / "node.db"),
                    workers=1,
                    openadr_vtn=vtn.url,
                    openadr_client_id="ven-client",
                    openadr_client_secret="ven-secret",
                    openadr_ven_name="NL-AMP",
                    **config,
                )
            )
            with trio.fail_after(within):
                async with trio.open_nursery() as node_nursery:
                    await node_nursery.start(node.run)
                    await scenario(node, vtn, node_nursery)
                    node.request_stop()
            nursery.cancel_scope.cancel()  # the stand-in VTN
    finally:
        await vtn.aclose()
