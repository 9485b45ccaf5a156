"""Transactions in the store: resent 1.6 starts and stops and 2.0.1 (transactionId, seqNo) repeats create no
duplicates; energy is computed from the register readings."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import msgspec

from ampgate.clock import parse_iso
from ampgate.store import Store, TransactionRepository
from ampgate.store import transactions as txs
from ampgate.store.transactions import ENERGY, Sample, TransactionChange, TransactionStart, TransactionStop

from .conftest import Runner


def parse(at: str) -> datetime:
    value = parse_iso(at)
    assert value is not None
    return value


T0 = "2026-03-04T05:00:00.000Z"
T1 = "2026-03-04T05:30:00.000Z"
T2 = "2026-03-04T06:00:00.000Z"


def energy(at: str, wh: float) -> Sample:
    return Sample(at, ENERGY, "", wh, "Wh", "Sample.Periodic")


def test_a_resent_16_start_returns_the_same_id_and_a_resent_stop_changes_nothing(running: Runner) -> None:
    async def body(store: Store) -> None:
        record = TransactionStart(
            charger_id="CP", connector_id=1, id_token="TAG", started_at=parse(T0), meter_start_wh=1000.0
        )
        start = functools.partial(txs.start16, start=record)
        first, created = await store.write(start)
        again, created_again = await store.write(start)
        assert (again, created, created_again) == (first, True, False)
        # Another start on the same connector (different meterStart) is another transaction.
        other, _ = await store.write(
            functools.partial(txs.start16, start=msgspec.structs.replace(record, meter_start_wh=5000.0))
        )
        assert other != first

        assert await store.write(
            functools.partial(txs.meter_values16, charger_id="CP", tx_id=first, samples=[energy(T1, 2500.0)])
        )
        # Resent samples are not counted twice; another charger cannot write to this transaction.
        assert await store.write(
            functools.partial(txs.meter_values16, charger_id="CP", tx_id=first, samples=[energy(T1, 2500.0)])
        )
        assert not await store.write(
            functools.partial(txs.meter_values16, charger_id="OTHER", tx_id=first, samples=[energy(T1, 1.0)])
        )
        row = TransactionRepository(store).get(first)
        assert row is not None and row.energy_wh == 1500.0 and row.stopped_at is None
        assert len(TransactionRepository(store).samples(first)) == 1

        stop = TransactionStop(
            charger_id="CP",
            tx_id=first,
            stopped_at=parse(T2),
            meter_stop_wh=4000.0,
            reason="Local",
            samples=[energy(T2, 4000.0)],
        )

        def stopping(**changes: Any) -> Any:
            return functools.partial(txs.stop16, stop=msgspec.structs.replace(stop, **changes))

        assert await store.write(stopping()) == "stopped"
        assert await store.write(stopping(stopped_at=parse(T1), meter_stop_wh=9999.0)) == "already"
        assert await store.write(stopping(tx_id=424242)) == "unknown"
        row = TransactionRepository(store).get(first)
        assert row is not None
        assert (row.meter_start_wh, row.meter_stop_wh, row.energy_wh, row.stop_reason) == (
            1000.0,
            4000.0,
            3000.0,
            "Local",
        )
        assert row.stopped_at == datetime(2026, 3, 4, 6, tzinfo=UTC)
        assert [r.id for r in TransactionRepository(store).page(10)] == [other, first]

    running(body)


def test_201_events_are_deduplicated_on_transaction_id_and_seq_no(running: Runner) -> None:
    async def body(store: Store) -> None:
        def event(seq: int, kind: str, at: str, wh: float, reason: str | None = None):  # type: ignore[no-untyped-def]
            change = TransactionChange(
                charger_id="CP2",
                remote_id="tx-abc",
                seq_no=seq,
                event_type=kind,
                at=parse(at),
                evse_id=1,
                connector_id=1,
                id_token="TOK",
                stop_reason=reason,
                samples=[energy(at, wh)],
            )
            return functools.partial(txs.event201, change=change)

        tx_id, dup = await store.write(event(0, "Started", T0, 100.0))
        assert not dup
        assert await store.write(event(1, "Updated", T1, 600.0)) == (tx_id, False)
        # The same seqNo again (a resend after reconnect) is a duplicate even with other content.
        assert await store.write(event(1, "Updated", T2, 99999.0)) == (tx_id, True)
        assert await store.write(event(2, "Ended", T2, 1100.0, "EVDisconnected")) == (tx_id, False)
        assert await store.write(event(2, "Ended", T2, 1100.0, "EVDisconnected")) == (tx_id, True)

        row = TransactionRepository(store).get(tx_id)
        assert row is not None
        assert (row.remote_id, row.protocol, row.evse_id, row.id_token) == ("tx-abc", "ocpp2.0.1", 1, "TOK")
        assert (row.meter_start_wh, row.meter_stop_wh, row.energy_wh) == (100.0, 1100.0, 1000.0)
        assert row.stop_reason == "EVDisconnected"
        assert [s.value for s in TransactionRepository(store).samples(tx_id)] == [100.0, 600.0, 1100.0]
        assert len(TransactionRepository(store).page(10, charger_id="CP2")) == 1

    running(body)


def test_the_charging_timeline_and_signed_values_are_kept_per_transaction(running: Runner) -> None:
    signed = txs.SignedValue(
        at=T2,
        measurand=ENERGY,
        phase="",
        context="Transaction.End",
        format="signedMeterValue",
        signed_data="AQID",
        signing_method="ECDSA",
        encoding_method="OCMF",
        public_key="BAUG",
    )

    async def body(store: Store) -> None:
        repo = TransactionRepository(store)

        def change(seq: int, kind: str, at: str, **kw: Any) -> TransactionChange:
            return TransactionChange(
                charger_id="CS",
                remote_id="tx-1",
                seq_no=seq,
                event_type=kind,
                at=parse(at),
                evse_id=1,
                connector_id=1,
                id_token=None,
                stop_reason=None,
                samples=[],
                **kw,
            )

        tx_id, _ = await repo.apply_event(change(0, "Started", T0, charging=False))
        await repo.apply_event(change(1, "Updated", T1, charging=True))
        await repo.apply_event(change(2, "Ended", T2, signed=[signed]))
        # A repeat is a duplicate: the timeline and the signed values stay as they were.
        await repo.apply_event(change(2, "Ended", T2, charging=True, signed=[signed]))
        assert repo.charging(tx_id) == [(parse(T0), False), (parse(T1), True)]
        assert repo.signed(tx_id) == [signed]
        # A part that derives the timeline (1.6 statuses) records it fire-and-forget; the same instant replaces.
        repo.record_charging(tx_id, parse(T2), False)
        repo.record_charging(tx_id, parse(T2), True)
        await store.write(lambda db: None)
        assert repo.charging(tx_id)[-1] == (parse(T2), True)
        start16 = TransactionStart(
            charger_id="CP", connector_id=1, id_token="T", started_at=parse(T0), meter_start_wh=0
        )
        other, _ = await repo.start(start16)
        assert await repo.add_samples(
            "CP", other, [energy(T1, 10.0)], [msgspec.structs.replace(signed, at=T1)]
        )
        assert [v.at for v in repo.signed(other)] == [T1]
        assert [r.id for r in repo.after(tx_id - 1, 10)] == [tx_id, other]
        assert repo.last_id() == other

    running(body)


def start_at(connector: int, charger: str = "CP") -> TransactionStart:
    return TransactionStart(
        charger_id=charger, connector_id=connector, id_token="TAG", started_at=parse(T0), meter_start_wh=0.0
    )


def test_a_transaction_id_is_never_handed_out_again_when_the_highest_transaction_is_gone(
    running: Runner,
) -> None:
    """A charger may still hold the id of a transaction the store lost (the last commits of a power cut on a
    disk that lied, a restore) and send StopTransaction with it: that id must not name a new transaction."""

    async def body(store: Store) -> None:
        repo = TransactionRepository(store)
        ids = [(await repo.start(start_at(c)))[0] for c in (1, 2, 3)]
        assert ids == sorted(ids)
        # The highest transaction is lost: as if its commit never reached the disk.
        await store.write(lambda db: db.execute("DELETE FROM transactions WHERE id = ?", (ids[-1],)))
        again, created = await repo.start(start_at(4))
        assert created and again > ids[-1]
        # A 2.0.1 transaction takes its node id from the same sequence.
        node_id, _ = await repo.apply_event(
            TransactionChange(
                charger_id="CP2",
                remote_id="R1",
                seq_no=0,
                event_type="Started",
                at=parse(T0),
                evse_id=1,
                connector_id=1,
                id_token=None,
                stop_reason=None,
                samples=[],
            )
        )
        assert node_id > again
        # The StopTransaction for the lost id finds nothing, rather than stopping someone else's transaction.
        stop = TransactionStop(
            charger_id="CP",
            tx_id=ids[-1],
            stopped_at=parse(T1),
            meter_stop_wh=10.0,
            reason="Local",
            samples=[],
        )
        assert await repo.stop(stop) == "unknown"

    running(body)


def test_a_meter_values_without_a_register_reading_reads_no_earlier_sample(running: Runner) -> None:
    """The running energy state lives on the transaction row: a MeterValues that carries no energy register
    (or one that does) costs the same however many samples the transaction already has."""

    def power(i: int) -> Sample:
        return Sample(
            f"2026-03-04T05:{i // 3600:02d}:{i // 60 % 60:02d}.{i % 60:03d}Z",
            "Power.Active.Import",
            "",
            7200.0,
            "W",
        )

    def steps(db: Any, tx_id: int, samples: list[Sample]) -> int:
        count = 0

        def tick() -> int:
            nonlocal count
            count += 1
            return 0

        db.conn.set_progress_handler(tick, 1)
        try:
            assert txs.meter_values16(db, charger_id="CP", tx_id=tx_id, samples=samples)
        finally:
            db.conn.set_progress_handler(None, 1)
        return count

    async def body(store: Store) -> None:
        record = TransactionStart(
            charger_id="CP", connector_id=1, id_token="TAG", started_at=parse(T0), meter_start_wh=1000.0
        )
        tx_id, _ = await store.write(functools.partial(txs.start16, start=record))
        costs = []
        for existing in (10, 3000):
            n = len(TransactionRepository(store).samples(tx_id))
            await store.write(
                functools.partial(
                    txs.meter_values16,
                    charger_id="CP",
                    tx_id=tx_id,
                    samples=[power(i) for i in range(n, existing)],
                )
            )
            later = existing + 1
            costs.append(await store.write(functools.partial(steps, tx_id=tx_id, samples=[power(later)])))
        # Linear in the history it would be ~300x; the bound leaves room for B-tree depth.
        assert costs[1] < 2 * costs[0], costs
        row = TransactionRepository(store).get(tx_id)
        assert row is not None and row.energy_wh == 0.0

        # The first register reading then counts from the start; still no scan of the history.
        last = "2026-03-04T06:00:00.000Z"
        cost = await store.write(functools.partial(steps, tx_id=tx_id, samples=[energy(last, 1500.0)]))
        assert cost < 2 * costs[0], (cost, costs)
        row = TransactionRepository(store).get(tx_id)
        assert row is not None and row.energy_wh == 500.0

    running(body)
