"""Transactions in the store: resent 1.6 starts and stops and 2.0.1 (transactionId, seqNo) repeats create no
duplicates; energy is computed from the register readings; id tokens answer Invalid / Expired / their status."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest

from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.store import Store
from ampgate.store import transactions as txs
from ampgate.store.transactions import ENERGY, Sample

from .conftest import Runner

T0 = "2026-03-04T05:00:00.000Z"
T1 = "2026-03-04T05:30:00.000Z"
T2 = "2026-03-04T06:00:00.000Z"


def energy(at: str, wh: float) -> Sample:
    return Sample(at, ENERGY, "", wh, "Wh", "Sample.Periodic")


def test_a_resent_16_start_returns_the_same_id_and_a_resent_stop_changes_nothing(running: Runner) -> None:
    async def body(store: Store) -> None:
        start = functools.partial(
            txs.start16, charger_id="CP", connector_id=1, id_token="TAG", started_at=T0, meter_start_wh=1000.0
        )
        first, created = await store.write(start)
        again, created_again = await store.write(start)
        assert (again, created, created_again) == (first, True, False)
        # Another start on the same connector (different meterStart) is another transaction.
        other, _ = await store.write(functools.partial(start, meter_start_wh=5000.0))
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
        row = store.transaction(first)
        assert row is not None and row.energy_wh == 1500.0 and row.stopped_at is None
        assert len(store.transaction_samples(first)) == 1

        stop = functools.partial(
            txs.stop16,
            charger_id="CP",
            tx_id=first,
            stopped_at=T2,
            meter_stop_wh=4000.0,
            reason="Local",
            samples=[energy(T2, 4000.0)],
        )
        assert await store.write(stop) == "stopped"
        assert await store.write(functools.partial(stop, stopped_at=T1, meter_stop_wh=9999.0)) == "already"
        assert await store.write(functools.partial(stop, tx_id=424242)) == "unknown"
        row = store.transaction(first)
        assert row is not None
        assert (row.meter_start_wh, row.meter_stop_wh, row.energy_wh, row.stop_reason) == (
            1000.0,
            4000.0,
            3000.0,
            "Local",
        )
        assert row.stopped_at == datetime(2026, 3, 4, 6, tzinfo=UTC)
        assert [r.id for r in store.list_transactions(10)] == [other, first]

    running(body)


def test_201_events_are_deduplicated_on_transaction_id_and_seq_no(running: Runner) -> None:
    async def body(store: Store) -> None:
        def event(seq: int, kind: str, at: str, wh: float, reason: str | None = None):  # type: ignore[no-untyped-def]
            return functools.partial(
                txs.event201,
                charger_id="CP2",
                remote_id="tx-abc",
                seq_no=seq,
                event_type=kind,
                at=at,
                evse_id=1,
                connector_id=1,
                id_token="TOK",
                stop_reason=reason,
                samples=[energy(at, wh)],
            )

        tx_id, dup = await store.write(event(0, "Started", T0, 100.0))
        assert not dup
        assert await store.write(event(1, "Updated", T1, 600.0)) == (tx_id, False)
        # The same seqNo again (a resend after reconnect) is a duplicate even with other content.
        assert await store.write(event(1, "Updated", T2, 99999.0)) == (tx_id, True)
        assert await store.write(event(2, "Ended", T2, 1100.0, "EVDisconnected")) == (tx_id, False)
        assert await store.write(event(2, "Ended", T2, 1100.0, "EVDisconnected")) == (tx_id, True)

        row = store.transaction(tx_id)
        assert row is not None
        assert (row.remote_id, row.protocol, row.evse_id, row.id_token) == ("tx-abc", "ocpp2.0.1", 1, "TOK")
        assert (row.meter_start_wh, row.meter_stop_wh, row.energy_wh) == (100.0, 1100.0, 1000.0)
        assert row.stop_reason == "EVDisconnected"
        assert [s.value for s in store.transaction_samples(tx_id)] == [100.0, 600.0, 1100.0]
        assert len(store.list_transactions(10, charger_id="CP2")) == 1

    running(body)


def test_id_tokens_answer_invalid_expired_or_their_status(running: Runner) -> None:
    async def body(store: Store) -> None:
        assert store.authorize("NOPE").status == "Invalid"
        await store.create_id_token("GOOD", status="Accepted", group="FLEET")
        await store.create_id_token("OLD", status="Accepted", expiry=datetime.now(UTC) - timedelta(days=1))
        await store.create_id_token("CARD", status="Accepted", type="ISO14443")
        ok = store.authorize("good")  # OCPP compares tokens case-insensitively
        assert (ok.status, ok.group) == ("Accepted", "FLEET")
        assert store.authorize("OLD").status == "Expired"
        assert store.authorize("CARD", "ISO14443").status == "Accepted"
        assert store.authorize("CARD", "eMAID").status == "Invalid"
        with pytest.raises(ConflictError):
            await store.create_id_token("Good", status="Accepted")
        with pytest.raises(ValidationError) as e:
            await store.create_id_token("X", status="Maybe")
        assert e.value.field == "status"
        await store.update_id_token("GOOD", {"status": "Blocked"})
        assert store.authorize("GOOD").status == "Blocked"
        await store.delete_id_token("GOOD")
        assert store.authorize("GOOD").status == "Invalid"
        with pytest.raises(NotFoundError):
            await store.delete_id_token("GOOD")

    running(body)
