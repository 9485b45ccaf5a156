"""Power loss: the real store over a disk that drops every write not followed by a sync (tests/store/powerloss.py
says why apsw and how the disk is modelled), the power cut at random points under a load of chargers sending
transaction messages, the database reopened after each cut, and every transaction message the store
acknowledged checked: there exactly once, and no transaction id handed out twice.

With `synchronous=NORMAL` for every commit (what the node did before durable writes) acknowledged messages are
lost and their ids handed out again: the test asserts that it sees this happen, which is what shows the disk
model loses what a power cut loses. With the node's setting (durable writes fsynced) nothing is lost.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import apsw
import trio

from ampgate.clock import iso_utc
from ampgate.store import TransactionRepository
from ampgate.store.transactions import (
    ENERGY,
    Sample,
    TransactionChange,
    TransactionStart,
    TransactionStop,
)
from ampgate.store.writer import SyncMode

from .powerloss import PowerCutVFS, ShimStore

T0 = datetime(2026, 6, 1, tzinfo=UTC)
# Per transaction: a start, this many meter values, a stop (2.0.1: Started, Updated × this, Ended).
READINGS = 3


@dataclass
class Ack:
    """One transaction message the store acknowledged (its write committed), as the charger saw it."""

    kind: str  # "start16" | "meter16" | "stop16" | "event201"
    charger: str
    key: tuple[Any, ...]
    result: Any


@dataclass
class Charger:
    """A charger that sends its transaction messages one at a time, each until it is acknowledged (resending
    after a power cut what was not), as 1.6 §3.7 and 2.0.1 [E04] want."""

    name: str
    protocol: str
    clock: int = 0
    tx: int = 0  # how many transactions so far
    step: int = 0  # 0 start, 1..READINGS meter values, READINGS + 1 stop
    tx_id: int | None = None  # 1.6: the id the store gave
    acks: list[Ack] = field(default_factory=list)

    def at(self) -> datetime:
        return T0 + timedelta(seconds=self.clock)

    async def send_next(self, repo: TransactionRepository) -> None:
        at = self.at()
        if self.protocol == "ocpp1.6":
            if self.step == 0:
                start = TransactionStart(
                    charger_id=self.name, connector_id=1, id_token="TAG", started_at=at, meter_start_wh=0.0
                )
                tx_id, _ = await repo.start(start)
                self.tx_id = tx_id
                self.acks.append(Ack("start16", self.name, (self.name, at, 0.0), tx_id))
            elif self.step <= READINGS:
                assert self.tx_id is not None
                sample = Sample(iso_utc(at), ENERGY, "", float(self.step), "Wh")
                await repo.add_samples(self.name, self.tx_id, [sample], [])
                self.acks.append(Ack("meter16", self.name, (self.tx_id, at), None))
            else:
                assert self.tx_id is not None
                stop = TransactionStop(
                    charger_id=self.name,
                    tx_id=self.tx_id,
                    stopped_at=at,
                    meter_stop_wh=float(READINGS + 1),
                    reason="Local",
                    samples=[],
                )
                await repo.stop(stop)
                self.acks.append(Ack("stop16", self.name, (self.tx_id,), None))
        else:
            remote = f"{self.name}-{self.tx}"
            kind = "Started" if self.step == 0 else "Ended" if self.step > READINGS else "Updated"
            change = TransactionChange(
                charger_id=self.name,
                remote_id=remote,
                seq_no=self.step,
                event_type=kind,
                at=at,
                evse_id=1,
                connector_id=1,
                id_token="TAG" if kind == "Started" else None,
                stop_reason="Local" if kind == "Ended" else None,
                samples=[Sample(iso_utc(at), ENERGY, "", float(self.step), "Wh")],
            )
            node_id, _ = await repo.apply_event(change)
            self.acks.append(Ack("event201", self.name, (remote, self.step), node_id))
        # Acknowledged: the next message.
        self.clock += 1
        self.step += 1
        if self.step > READINGS + 1:
            self.step, self.tx, self.tx_id = 0, self.tx + 1, None

    async def run(self, repo: TransactionRepository) -> None:
        while True:
            try:
                await self.send_next(repo)
            except Exception:
                # The power is off (the write failed): this message goes again after the restart.
                await trio.sleep_forever()


@dataclass
class Verdict:
    acked: int
    lost: list[Ack]
    duplicated: list[Ack]
    reused_ids: list[int]


def verify(path: str, acks: list[Ack]) -> Verdict:
    """Read the database as the restarted node would (a plain connection) and check every acknowledgement."""
    conn = apsw.Connection(path)
    try:
        q = conn.execute
        lost: list[Ack] = []
        duplicated: list[Ack] = []
        ids: dict[int, tuple[Any, ...]] = {}
        reused: set[int] = set()
        for a in acks:
            if a.kind == "start16":
                charger, at, meter_start = a.key
                rows = q(
                    "SELECT id FROM transactions WHERE charger_id = ? AND started_at = ? AND meter_start_wh = ?",
                    (charger, iso_utc(at), meter_start),
                ).fetchall()
                if not rows:
                    lost.append(a)
                elif len(rows) > 1 or rows[0][0] != a.result:
                    duplicated.append(a)
                if ids.setdefault(a.result, a.key) != a.key:
                    reused.add(a.result)
            elif a.kind == "meter16":
                tx_id, at = a.key
                found = q(
                    "SELECT count(*) FROM meter_samples m JOIN transactions t ON t.id = m.transaction_id"
                    " WHERE m.transaction_id = ? AND m.at = ? AND t.charger_id = ?",
                    (tx_id, iso_utc(at), a.charger),
                ).fetchall()[0][0]
                if found == 0:
                    lost.append(a)
            elif a.kind == "stop16":
                (tx_id,) = a.key
                row = q(
                    "SELECT stopped_at FROM transactions WHERE id = ? AND charger_id = ?", (tx_id, a.charger)
                ).fetchall()
                if not row or row[0][0] is None:
                    lost.append(a)
            else:
                remote, seq = a.key
                rows = q(
                    "SELECT t.id FROM transactions t JOIN transaction_events e ON e.transaction_id = t.id"
                    " WHERE t.charger_id = ? AND t.remote_id = ? AND e.seq_no = ?",
                    (a.charger, remote, seq),
                ).fetchall()
                if not rows:
                    lost.append(a)
                elif rows[0][0] != a.result:
                    duplicated.append(a)
                if ids.setdefault(a.result, (a.charger, remote)) != (a.charger, remote):
                    reused.add(a.result)
        return Verdict(len(acks), lost, duplicated, sorted(reused))
    finally:
        conn.close()


@dataclass
class Run:
    cuts: int
    verdict: Verdict
    syncs: int
    commits: int


def power_cuts(tmp: Path, sync: SyncMode, *, cuts: int, seed: int, chargers: int = 24) -> Run:
    """Drive `chargers` chargers (half 1.6, half 2.0.1) against the store over the power-cut disk; cut the power
    `cuts` times after a random while, reopening the store each time; verify after the last reopen."""
    path = str(tmp / f"ampgate-{sync}.db")
    rng = random.Random(seed)
    vfs = PowerCutVFS()
    fleet = [Charger(f"CP{i}", "ocpp1.6" if i % 2 == 0 else "ocpp2.0.1") for i in range(chargers)]
    commits = 0

    async def one_life(delay: float) -> None:
        nonlocal commits
        store = ShimStore(path, vfs, sync=sync)
        repo = TransactionRepository(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            async with trio.open_nursery() as load:
                for c in fleet:
                    load.start_soon(c.run, repo)
                await trio.sleep(delay)
                vfs.cut()
                load.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
        commits += store.stats.commits
        vfs.restore()

    async def first_start() -> None:
        # The node's first start on an empty disk, stopped cleanly: the schema is on the platter before the
        # first power cut (else a cut before SQLite's first checkpoint loses the whole database in NORMAL
        # mode, how soon depending on how busy the machine is, and there is nothing left to verify).
        store = ShimStore(path, vfs, sync=sync)
        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            nursery.cancel_scope.cancel()

    try:
        trio.run(first_start)
        for _ in range(cuts):
            trio.run(one_life, rng.uniform(0.05, 0.4))
    finally:
        vfs.unregister()
    acks = [a for c in fleet for a in c.acks]
    return Run(cuts, verify(path, acks), vfs.syncs, commits)


def test_with_synchronous_normal_a_power_cut_loses_acknowledged_messages_and_ids_are_reused(
    tmp_path: Path,
) -> None:
    """The control: NORMAL commits are not synced, so the disk model must lose some acknowledged messages, and
    a restarted node hands the lost transactions' ids out again (AUTOINCREMENT's counter is lost with them)."""
    run = power_cuts(tmp_path, "normal", cuts=4, seed=1)
    print(
        f"normal: {len(run.verdict.lost)} of {run.verdict.acked} acknowledged lost, reused {run.verdict.reused_ids[:10]}"
    )
    assert run.verdict.acked > 200
    assert run.verdict.lost, "the power-cut disk lost nothing: it does not model a power cut"
    assert run.verdict.reused_ids


def test_with_durable_writes_no_acknowledged_message_is_lost_or_doubled_and_no_id_reused(
    tmp_path: Path,
) -> None:
    run = power_cuts(tmp_path, "durable", cuts=6, seed=2)
    print(
        f"durable: {run.verdict.acked} acknowledged, {len(run.verdict.lost)} lost, {run.syncs} syncs, {run.commits} commits"
    )
    assert run.verdict.acked > 200
    assert run.verdict.lost == []
    assert run.verdict.duplicated == []
    assert run.verdict.reused_ids == []
    # Group commit: far fewer syncs than acknowledged messages.
    assert run.syncs < run.verdict.acked
