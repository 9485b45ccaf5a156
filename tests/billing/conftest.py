"""Billing over a real Store (temp file) and the real repositories, on trio's MockClock (jumping once the loop
has been idle for AUTOJUMP real seconds, longer than a commit of the store's writer thread, so virtual time does
not pass while a write is under way), with a wall clock the test sets (`h.clock.t`): sweeps, deadlines and
running costs are driven without sleeping. `Harness` plays the OCPP handlers' part: it records transactions and
statuses in the store as they would, and publishes the same events."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ampgate.billing import (
    BillingSessions,
    Cdr,
    CdrRepository,
    Cdrs,
    PriceSignalRepository,
    PriceSignals,
    SessionRepository,
    TariffRepository,
    Tariffs,
)
from ampgate.billing.sessions import SWEEP_INTERVAL_S
from ampgate.bus import EventBus
from ampgate.clock import Clock, iso_utc
from ampgate.events import (
    ChargerConnected,
    ChargerDisconnected,
    ConnectorStatusChanged,
    Event,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from ampgate.load import SiteSpec, TopologyRepository
from ampgate.openadr import PriceRepository as OpenAdrPrices
from ampgate.store import (
    ChargerRepository,
    ConnectorStatusRepository,
    IdTokenRepository,
    Sample,
    StatusReport,
    Store,
    TransactionRepository,
)
from ampgate.store.transactions import (
    ENERGY,
    SignedValue,
    TransactionChange,
    TransactionStart,
    TransactionStop,
)

# Monday 2 March 2026, 08:00 UTC: the wall clock at the start of every test.
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
AUTOJUMP = 0.005


class FakeWall(Clock):
    """Wall time as the test sets it (`t`); trio's (mock) clock for the rest."""

    def __init__(self) -> None:
        self.t = T0

    def wall(self) -> float:
        return self.t.timestamp()


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


class Harness:
    """Billing's parts over one store, and the OCPP handlers' writes and events played by hand."""

    def __init__(self, store: Store, clock: FakeWall, *, max_parking_s: float = 3600.0) -> None:
        self.store = store
        self.bus = EventBus()
        self.clock = clock
        self.transactions = TransactionRepository(store)
        self.statuses = ConnectorStatusRepository(store)
        self.id_tokens = IdTokenRepository(store)
        self.chargers = ChargerRepository(store)
        self.topology = TopologyRepository(store)
        self.placed: dict[str, str] = {}
        self.session_rows = SessionRepository(store)
        self.tariffs = Tariffs(
            TariffRepository(store),
            charger_exists=self.chargers.exists,
            site_exists=lambda s: self.topology.site(s) is not None,
            site_of=self.placed.get,
            groups=self.id_tokens,
            in_use=self.session_rows.in_use,
            bus=self.bus,
            clock=self.clock,
        )
        # The VEN's table of PRICE intervals, which a test fills as the VEN would.
        self.openadr_prices = OpenAdrPrices(store)
        self.signals = PriceSignals(
            PriceSignalRepository(store),
            site_exists=lambda s: self.topology.site(s) is not None,
            openadr=self.openadr_prices,
            bus=self.bus,
            clock=self.clock,
        )
        self.cdr_rows = CdrRepository(store)
        self.billing = BillingSessions(
            self.session_rows,
            self.cdr_rows,
            self.tariffs,
            self.signals,
            self.transactions,
            self.statuses,
            self.placed.get,
            self.topology,
            self.bus,
            self.clock,
            max_parking_s=max_parking_s,
        )
        self.cdrs = Cdrs(
            self.cdr_rows, site_exists=lambda s: True, occupancy=None, bus=self.bus, clock=self.clock
        )
        self.published = self.bus.subscribe()

    async def site(self, site_id: str, zone: str = "UTC") -> None:
        await self.topology.insert_site(SiteSpec(id=site_id, time_zone=zone))

    def events(self, kind: type[Event]) -> list[Any]:
        out = []
        while (item := self.published.receive_nowait()) is not None:
            out.append(item)
        return [e for e in out if isinstance(e, kind)]

    async def settle(self) -> None:
        """Let the billing loop take every event published so far (and its writes commit)."""
        await trio.sleep(1)

    async def cdr_of(self, tx_id: int) -> Cdr:
        """The session's CDR, once written (the write is on the store's thread, in real time)."""
        # Until the loop took the write's outcome (it forgets the session, then publishes cdr.created): the row is
        # visible from the commit on, which may be before the writer thread hands the outcome back. Bounded in
        # real time: virtual time runs on while the writer thread works, the more so on a loaded machine.
        deadline = time.monotonic() + 30
        while (cdr := self.cdr_rows.of_transaction(tx_id)) is None or tx_id in self.billing._sessions:
            assert time.monotonic() < deadline, f"no CDR for transaction {tx_id}"
            await trio.sleep(1)
        return cdr

    async def at(self, when: datetime) -> None:
        """Set the wall clock to `when`, then let a sweep pass."""
        self.clock.t = when
        await trio.sleep(SWEEP_INTERVAL_S + 1)

    # -- what the OCPP handlers write and publish --------------------------------------------------------------

    def _started(self, tx_id: int) -> None:
        row = self.transactions.get(tx_id)
        assert row is not None
        self.bus.publish(
            TransactionStarted(
                at=self.clock.now(),
                charger_id=row.charger_id,
                transaction_id=tx_id,
                remote_id=row.charger_transaction_id,
                evse_id=row.evse_id,
                connector_id=row.connector_id,
                id_token=row.id_token,
                started_at=row.started_at,
                meter_start_wh=row.meter_start_wh,
            )
        )

    def _ended(self, tx_id: int) -> None:
        row = self.transactions.get(tx_id)
        assert row is not None and row.stopped_at is not None
        self.bus.publish(
            TransactionEnded(
                at=self.clock.now(),
                charger_id=row.charger_id,
                transaction_id=tx_id,
                remote_id=row.charger_transaction_id,
                stopped_at=row.stopped_at,
                stop_reason=row.stop_reason,
                meter_stop_wh=row.meter_stop_wh,
                energy_wh=row.energy_wh,
            )
        )

    async def start16(
        self, charger: str, at: datetime, *, connector: int = 1, token: str = "TAG", meter_start: float = 0
    ) -> int:
        tx_id, _ = await self.transactions.start(
            TransactionStart(
                charger_id=charger,
                connector_id=connector,
                id_token=token,
                started_at=at,
                meter_start_wh=meter_start,
            )
        )
        self._started(tx_id)
        return tx_id

    async def meter16(self, charger: str, tx_id: int, at: datetime, wh: float, **extra: float) -> None:
        samples = energy(at, wh, **extra)
        assert await self.transactions.add_samples(charger, tx_id, samples)
        self.bus.publish(
            TransactionUpdated(
                at=self.clock.now(),
                charger_id=charger,
                transaction_id=tx_id,
                remote_id=str(tx_id),
                samples=samples,
            )
        )

    async def stop16(
        self,
        charger: str,
        tx_id: int,
        at: datetime,
        meter_stop: float,
        signed: list[SignedValue] | None = None,
    ) -> None:
        outcome = await self.transactions.stop(
            TransactionStop(
                charger_id=charger,
                tx_id=tx_id,
                stopped_at=at,
                meter_stop_wh=meter_stop,
                reason="Local",
                samples=[],
                signed=signed or [],
            )
        )
        assert outcome == "stopped"
        self._ended(tx_id)

    async def event201(
        self,
        charger: str,
        remote_id: str,
        seq: int,
        kind: str,
        at: datetime,
        *,
        wh: float | None = None,
        charging: bool | None = None,
        evse: int = 1,
        token: str | None = "TAG",
    ) -> int:
        samples = [] if wh is None else energy(at, wh)
        tx_id, dup = await self.transactions.apply_event(
            TransactionChange(
                charger_id=charger,
                remote_id=remote_id,
                seq_no=seq,
                event_type=kind,
                at=at,
                evse_id=evse,
                connector_id=1,
                id_token=token,
                stop_reason="EVDisconnected" if kind == "Ended" else None,
                samples=samples,
                charging=charging,
            )
        )
        assert not dup
        if kind == "Started":
            self._started(tx_id)
        elif kind == "Ended":
            self._ended(tx_id)
        else:
            self.bus.publish(
                TransactionUpdated(
                    at=self.clock.now(),
                    charger_id=charger,
                    transaction_id=tx_id,
                    remote_id=remote_id,
                    samples=samples,
                )
            )
        return tx_id

    def status(
        self, charger: str, status: str, at: datetime, *, connector: int = 1, evse: int | None = None
    ) -> None:
        self.statuses.record(
            StatusReport(
                charger_id=charger,
                evse_id=evse,
                connector_id=connector,
                protocol="ocpp1.6" if evse is None else "ocpp2.0.1",
                status=status,
                error_code=None,
                at=at,
            )
        )
        self.bus.publish(
            ConnectorStatusChanged(
                at=self.clock.now(),
                charger_id=charger,
                evse_id=evse,
                connector_id=connector,
                old_status=None,
                status=status,
                error_code=None,
                reported_at=at,
            )
        )

    def connected(self, charger: str) -> None:
        self.bus.publish(
            ChargerConnected(
                at=self.clock.now(),
                charger_id=charger,
                conn_id=2,
                protocol="ocpp1.6",
                remote_address="10.0.0.1",
            )
        )

    def disconnected(self, charger: str, reason: str = "connection lost") -> None:
        self.bus.publish(
            ChargerDisconnected(at=self.clock.now(), charger_id=charger, conn_id=1, code=1006, reason=reason)
        )


def energy(
    at: datetime, wh: float, *, power_w: float | None = None, current_a: float | None = None
) -> list[Sample]:
    stamp = iso_utc(at)
    out = [Sample(stamp, ENERGY, "", wh, "Wh")]
    if power_w is not None:
        out.append(Sample(stamp, "Power.Active.Import", "", power_w, "W"))
    if current_a is not None:
        out.append(Sample(stamp, "Current.Import", "", current_a, "A"))
    return out


Body = Callable[[Harness], Awaitable[None]]


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "ampgate.db")


def run_billing(
    db_path: str,
    body: Body,
    *,
    max_parking_s: float = 3600.0,
    start: bool = True,
    clock: FakeWall | None = None,
) -> None:
    """Run `body(harness)` against a running store (and the billing loop, with `start`) on MockClock."""
    wall = clock or FakeWall()

    async def main() -> None:
        store = Store(db_path, now=wall.now)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            h = Harness(store, wall, max_parking_s=max_parking_s)
            if start:
                await nursery.start(h.billing.run)
            await body(h)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=AUTOJUMP))


@pytest.fixture
def billing(db_path: str) -> Callable[..., None]:
    return lambda body, **kw: run_billing(db_path, body, **kw)
