"""Transaction handlers in-process, over a stand-in repository: each reply waits for its write, what was recorded
is published (started, updated with the new samples, ended), a resend publishes nothing, and the replies carry
what the spec wants (the 1.6 transactionId, idTagInfo / idTokenInfo only when a token was presented)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import trio
import trio.testing

from ampgate.events import TransactionEnded, TransactionStarted, TransactionUpdated
from ampgate.ocpp.authorization import Authorizer
from ampgate.ocpp.transactions import TransactionHandlers
from ampgate.store import IdTokenRow, Sample, TransactionRow
from ampgate.store.transactions import TransactionChange, TransactionStart, TransactionStop

from .fakes import NOW, Harness

T0 = "2026-11-30T07:00:00Z"
T1 = "2026-11-30T07:30:00Z"


class Tokens:
    """Every token is Accepted (a stored row of its own); `GROUPED` has a group."""

    def get(self, id_token: str) -> IdTokenRow | None:
        return IdTokenRow(
            id_token=id_token,
            type=None,
            status="Accepted",
            expiry=None,
            group="FLEET" if id_token == "GROUPED" else None,
            created_at=NOW,
            updated_at=NOW,
        )


class Records:
    """The transaction repository in memory, with the store's de-duplication rules; `gate` holds every write
    until set (to prove a reply waits for its write)."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.samples: dict[int, list[Sample]] = {}
        self.seen: set[tuple[int, int]] = set()
        self.gate = trio.Event()
        self.gate.set()
        self.writes = 0

    async def _write(self) -> None:
        await self.gate.wait()
        self.writes += 1

    def _new(self, **fields: Any) -> int:
        tx_id = len(self.rows) + 1
        self.rows[tx_id] = {
            "id": tx_id,
            "stopped_at": None,
            "meter_stop_wh": None,
            "stop_reason": None,
            **fields,
        }
        self.samples[tx_id] = []
        return tx_id

    async def start(self, start: TransactionStart) -> tuple[int, bool]:
        await self._write()
        for row in self.rows.values():
            if (row["charger_id"], row["connector_id"], row["started_at"], row["meter_start_wh"]) == (
                start.charger_id,
                start.connector_id,
                start.started_at,
                start.meter_start_wh,
            ):
                return row["id"], False
        fields = msgspec.structs.asdict(start)
        return self._new(**fields, remote_id=None), True

    async def add_samples(self, charger_id, tx_id, samples, signed=()):
        await self._write()
        if tx_id not in self.rows or self.rows[tx_id]["charger_id"] != charger_id:
            return False
        self.samples[tx_id] += samples
        return True

    async def stop(self, stop: TransactionStop) -> str:
        await self._write()
        row = self.rows.get(stop.tx_id)
        if row is None or row["charger_id"] != stop.charger_id:
            return "unknown"
        if row["stopped_at"] is not None:
            return "already"
        row.update(stopped_at=stop.stopped_at, meter_stop_wh=stop.meter_stop_wh, stop_reason=stop.reason)
        return "stopped"

    async def apply_event(self, change: TransactionChange) -> tuple[int, bool]:
        await self._write()
        found = [r["id"] for r in self.rows.values() if r.get("remote_id") == change.remote_id]
        if found:
            tx_id = found[0]
        else:
            tx_id = self._new(
                charger_id=change.charger_id,
                connector_id=change.connector_id,
                id_token=change.id_token,
                started_at=change.at,
                meter_start_wh=None,
                remote_id=change.remote_id,
                evse_id=change.evse_id,
            )
        if (tx_id, change.seq_no) in self.seen:
            return tx_id, True
        self.seen.add((tx_id, change.seq_no))
        self.samples[tx_id] += change.samples
        if change.event_type == "Ended":
            self.rows[tx_id].update(stopped_at=change.at, stop_reason=change.stop_reason)
        return tx_id, False

    def get(self, tx_id):
        r = self.rows.get(tx_id)
        if r is None:
            return None
        start = r["meter_start_wh"]
        stop = r["meter_stop_wh"]
        return TransactionRow(
            id=r["id"],
            charger_id=r["charger_id"],
            protocol="ocpp1.6" if r["remote_id"] is None else "ocpp2.0.1",
            remote_id=r["remote_id"],
            evse_id=r.get("evse_id"),
            connector_id=r["connector_id"],
            id_token=r["id_token"],
            started_at=r["started_at"],
            stopped_at=r["stopped_at"],
            meter_start_wh=start,
            meter_stop_wh=stop,
            energy_wh=None if start is None or stop is None else stop - start,
            stop_reason=r["stop_reason"],
        )


def setup() -> tuple[Harness, Records]:
    h = Harness(accepted=["CP1", "CP2"])
    records = Records()
    TransactionHandlers(records, Authorizer(Tokens(), h.clock.now), h.bus, h.clock).register(h.router)
    return h, records


def run(body) -> None:
    trio.run(body, clock=trio.testing.MockClock(autojump_threshold=0))


def energy(at: str, wh: str) -> dict[str, Any]:
    return {"timestamp": at, "sampledValue": [{"value": wh, "measurand": "Energy.Active.Import.Register"}]}


def test_16_start_meter_values_and_stop_reply_after_their_write_and_publish_what_was_recorded() -> None:
    async def main() -> None:
        h, records = setup()
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            h.open("CP1")
            records.gate = trio.Event()  # hold the write
            out: list[tuple[int, bytes]] = []
            start = {"connectorId": 1, "idTag": "GROUPED", "meterStart": 1000, "timestamp": T0}
            h.router.on_message(1, msgspec.json.encode([2, "s", "StartTransaction", start]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert out == [] and h.link.sent == [] and h.published() == []  # nothing before the commit
            records.gate.set()
            await trio.testing.wait_all_tasks_blocked()
            info = {"status": "Accepted", "parentIdTag": "FLEET"}
            assert h.link.sent == [(1, [3, "s", {"transactionId": 1, "idTagInfo": info}])]
            (started,) = h.published()
            assert isinstance(started, TransactionStarted)
            assert (started.charger_id, started.transaction_id, started.remote_id) == ("CP1", 1, "1")
            assert (started.connector_id, started.id_token, started.meter_start_wh) == (1, "GROUPED", 1000.0)
            assert started.started_at == datetime(2026, 11, 30, 7, tzinfo=UTC)

            # The same start resent after a reconnect: the same id, no second event.
            h.router.on_message(1, msgspec.json.encode([2, "s2", "StartTransaction", start]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent[-1][1][2]["transactionId"] == 1 and h.published() == []

            meter = {"connectorId": 1, "transactionId": 1, "meterValue": [energy(T1, "4.5")]}
            meter["meterValue"][0]["sampledValue"][0]["unit"] = "kWh"
            h.router.on_message(1, msgspec.json.encode([2, "m", "MeterValues", meter]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent[-1] == (1, [3, "m", {}])
            (updated,) = h.published()
            assert isinstance(updated, TransactionUpdated) and updated.transaction_id == 1
            assert [(x.measurand, x.value, x.unit) for x in updated.samples] == [
                ("Energy.Active.Import.Register", 4500.0, "Wh")
            ]
            # MeterValues for a transaction the charger does not have: answered, nothing published.
            h.router.on_message(
                1, msgspec.json.encode([2, "m2", "MeterValues", {**meter, "transactionId": 9}]), out
            )
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent[-1] == (1, [3, "m2", {}]) and h.published() == []

            stop = {"transactionId": 1, "meterStop": 8000, "timestamp": T1}
            h.router.on_message(1, msgspec.json.encode([2, "x", "StopTransaction", stop]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent[-1] == (1, [3, "x", {}])  # no idTag presented: no idTagInfo
            (ended,) = h.published()
            assert isinstance(ended, TransactionEnded)
            assert (ended.stop_reason, ended.meter_stop_wh, ended.energy_wh) == ("Local", 8000.0, 7000.0)
            # A resent stop and a stop of an unknown transaction are still Accepted, and publish nothing.
            for tx in (1, 42):
                h.router.on_message(
                    1,
                    msgspec.json.encode([2, f"x{tx}", "StopTransaction", {**stop, "transactionId": tx}]),
                    out,
                )
                await trio.testing.wait_all_tasks_blocked()
                assert h.link.sent[-1] == (1, [3, f"x{tx}", {}])
            assert h.published() == []
            nursery.cancel_scope.cancel()

    run(main)


def test_201_transaction_events_publish_by_type_and_a_repeated_seq_no_publishes_nothing() -> None:
    async def main() -> None:
        h, records = setup()
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            h.open("CP2", "ocpp2.0.1", conn_id=2)

            def event(seq: int, kind: str, **extra: Any) -> dict[str, Any]:
                return {
                    "eventType": kind,
                    "timestamp": T0 if seq == 0 else T1,
                    "triggerReason": "Authorized",
                    "seqNo": seq,
                    "transactionInfo": {"transactionId": "tx-9"},
                    "evse": {"id": 1, "connectorId": 1},
                    **extra,
                }

            sample = {
                "timestamp": T1,
                "sampledValue": [{"value": 3.0, "measurand": "Current.Import", "phase": "L2"}],
            }
            messages = [
                event(0, "Started", idToken={"idToken": "T", "type": "ISO14443"}),
                event(1, "Updated", meterValue=[sample]),
                event(1, "Updated", meterValue=[sample]),  # resent
                event(2, "Ended"),
            ]
            out: list[tuple[int, bytes]] = []
            for i, m in enumerate(messages):
                h.router.on_message(2, msgspec.json.encode([2, f"e{i}", "TransactionEvent", m]), out)
                await trio.testing.wait_all_tasks_blocked()
            replies = [msg for _, msg in h.link.sent]
            assert replies[0] == [3, "e0", {"idTokenInfo": {"status": "Accepted"}}]
            assert replies[1:] == [[3, "e1", {}], [3, "e2", {}], [3, "e3", {}]]
            started, updated, ended = h.published()
            assert isinstance(started, TransactionStarted) and started.remote_id == "tx-9"
            assert isinstance(updated, TransactionUpdated)
            assert [(x.measurand, x.phase, x.value) for x in updated.samples] == [
                ("Current.Import", "L2", 3.0)
            ]
            assert isinstance(ended, TransactionEnded) and ended.stop_reason == "Local"  # the default reason
            assert records.writes == 4  # the resend was written (and found a duplicate), not skipped
            nursery.cancel_scope.cancel()

    run(main)


class SlowFirstRecords(Records):
    """Records whose write of seqNo 0 / the first 1.6 start takes a second: what a slow commit, or a handler
    awaiting an eMSP's authorization, does to the first of two messages."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    async def apply_event(self, change: TransactionChange) -> tuple[int, bool]:
        if change.seq_no == 0:
            await trio.sleep(1)
        self.order.append(f"{change.charger_id}:{change.remote_id}:{change.seq_no}")
        return await super().apply_event(change)

    async def start(self, start: TransactionStart) -> tuple[int, bool]:
        await trio.sleep(1)
        self.order.append(f"{start.charger_id}:start")
        return await super().start(start)

    async def add_samples(self, charger_id, tx_id, samples, signed=()):
        self.order.append(f"{charger_id}:samples")
        return await super().add_samples(charger_id, tx_id, samples, signed)


def event201(seq_no: int, event_type: str, at: str, tx: str = "T-1") -> dict[str, Any]:
    return {
        "eventType": event_type,
        "timestamp": at,
        "triggerReason": "Authorized" if event_type == "Started" else "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tx},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [{"value": 1000 + seq_no, "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    }


def test_two_transaction_messages_of_one_charger_in_one_batch_are_recorded_and_answered_in_order() -> None:
    """The first message's write is slow; the second, in the same gateway batch, must neither be recorded
    nor answered before it. Another charger's message is not held up by them."""

    async def main() -> None:
        h = Harness(accepted=["CP1", "CP2"])
        records = SlowFirstRecords()
        TransactionHandlers(records, Authorizer(Tokens(), h.clock.now), h.bus, h.clock).register(h.router)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            one = h.open("CP1", "ocpp2.0.1", conn_id=1)
            h.open("CP2", "ocpp2.0.1", conn_id=2)
            out: list[tuple[int, bytes]] = []
            batch = [
                (1, ["e0", event201(0, "Started", T0)]),
                (1, ["e1", event201(1, "Updated", T1)]),
                (1, ["e2", event201(2, "Updated", "2026-11-30T07:40:00Z")]),
                (2, ["x1", event201(1, "Updated", T1, "T-2")]),
            ]
            for conn, (uid, payload) in batch:
                h.router.on_message(conn, msgspec.json.encode([2, uid, "TransactionEvent", payload]), out)
            assert out == []
            await trio.testing.wait_all_tasks_blocked()
            # CP2's message is answered while CP1's first is still being written.
            assert [m[1] for _, m in h.link.sent] == ["x1"] and records.order == ["CP2:T-2:1"]
            await trio.sleep(1.5)
            assert records.order == ["CP2:T-2:1", "CP1:T-1:0", "CP1:T-1:1", "CP1:T-1:2"]
            assert [m[1] for c, m in h.link.sent if c == one.conn_id] == ["e0", "e1", "e2"]
            [row] = [r for r in records.rows.values() if r["remote_id"] == "T-1"]
            assert row["started_at"] == datetime(2026, 11, 30, 7, tzinfo=UTC)  # created by its Started event
            nursery.cancel_scope.cancel()

    run(main)


def test_a_16_start_and_the_next_message_wait_in_order_and_the_order_survives_a_reconnect() -> None:
    """1.6: StartTransaction (slow) then MeterValues of an earlier transaction in one batch: recorded and answered
    in that order. The charger reconnects meanwhile: its new connection's message still queues behind the old
    connection's (order is per charger), whose replies go nowhere."""

    async def main() -> None:
        h = Harness(accepted=["CP1"])
        records = SlowFirstRecords()
        TransactionHandlers(records, Authorizer(Tokens(), h.clock.now), h.bus, h.clock).register(h.router)
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            h.open("CP1", conn_id=1)
            out: list[tuple[int, bytes]] = []
            start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": T0}
            meter = {"connectorId": 1, "transactionId": 7, "meterValue": [energy(T1, "5")]}
            h.router.on_message(1, msgspec.json.encode([2, "s", "StartTransaction", start]), out)
            h.router.on_message(1, msgspec.json.encode([2, "m", "MeterValues", meter]), out)
            await trio.testing.wait_all_tasks_blocked()
            assert records.order == [] and h.link.sent == []
            h.router.close(1)
            h.open("CP1", conn_id=2)
            h.router.on_message(2, msgspec.json.encode([2, "m2", "MeterValues", meter]), out)
            await trio.sleep(1.5)
            assert records.order == ["CP1:start", "CP1:samples", "CP1:samples"]
            assert [(c, m[1]) for c, m in h.link.sent] == [(2, "m2")]
            nursery.cancel_scope.cancel()

    run(main)
