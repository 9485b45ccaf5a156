"""A charger accepted for the first time at its boot is told Accepted only once its acceptance is committed:
a charger told Accepted need not boot again [B01], so a node that lost the acceptance (a kill -9 between the
reply and the commit) would answer SecurityError to everything it sends from then on."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils
import trio
import trio.testing

from ampgate.bus import EventBus
from ampgate.ocpp.boot import BootHandlers
from ampgate.ocpp.boot_policy import ACCEPTED, NEW, BootPolicy
from ampgate.ocpp.outbox import CallManager
from ampgate.ocpp.router import OcppRouter
from ampgate.store import ChargerRepository, Store

from .fakes import ChargerTable, FixedClock, Harness, Link, Seen, Wire

BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


class GatedTable(ChargerTable):
    """A charger table whose acceptance commits when the test says (or fails, if `fail` is set)."""

    def __init__(self) -> None:
        super().__init__()
        self.commit = trio.Event()
        self.fail = False

    def mark_accepted(self, cp_id: str) -> Any:
        super().mark_accepted(cp_id)

        async def committed() -> None:
            await self.commit.wait()
            if self.fail:
                raise sqlite3.OperationalError("disk I/O error")

        return _Once(committed())


class _Once:
    """An awaitable that may be awaited more than once (like the store's PendingWrite)."""

    def __init__(self, coro: Any) -> None:
        self._coro = coro
        self._done = trio.Event()
        self._error: BaseException | None = None
        self._started = False

    def __await__(self) -> Any:
        return self._wait().__await__()

    async def _wait(self) -> None:
        if not self._started:
            self._started = True
            try:
                await self._coro
            except Exception as e:
                self._error = e
            self._done.set()
        await self._done.wait()
        if self._error is not None:
            raise self._error


def gated_harness() -> tuple[Harness, GatedTable]:
    h = Harness(unknown_boot="accept")
    table = GatedTable()
    h.chargers = table
    h.policy = BootPolicy(table, unknown_boot="accept", heartbeat_interval=300, retry_interval=60)
    h.router = OcppRouter(h.policy, h.link, h.outbox, h.clock)
    h.router.begin_batch()
    BootHandlers(h.policy, h.chargers, h.bus, h.clock, h.router.time).register(h.router)
    return h, table


def test_a_first_acceptance_is_answered_only_after_its_commit() -> None:
    async def main() -> None:
        h, table = gated_harness()
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            s = h.open("CP-NEW")
            assert h.call(s, "BootNotification", BOOT16) is None  # not now: the acceptance is not on disk
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent == []
            table.commit.set()
            await trio.testing.wait_all_tasks_blocked()
            [(conn, reply)] = h.link.sent
            assert conn == 1 and reply[2]["status"] == ACCEPTED
            # Accepted from now on, and a later boot of an accepted charger is answered at once.
            assert not h.policy.acceptance_pending("CP-NEW")
            assert h.call(s, "BootNotification", BOOT16, "m2")[2]["status"] == ACCEPTED
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_second_boot_while_the_first_acceptance_commits_waits_for_it_too() -> None:
    async def main() -> None:
        h, table = gated_harness()
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            first = h.open("CP-NEW", conn_id=1)
            assert h.call(first, "BootNotification", BOOT16) is None
            second = h.open("CP-NEW", conn_id=2)  # the charger reconnected before the answer
            assert h.call(second, "BootNotification", BOOT16, "m2") is None
            await trio.testing.wait_all_tasks_blocked()
            assert h.link.sent == [] and table.accepted == ["CP-NEW"]  # accepted once
            table.commit.set()
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(conn for conn, _ in h.link.sent) == [1, 2]
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_an_acceptance_that_fails_to_commit_is_not_answered_accepted_and_is_forgotten() -> None:
    async def main() -> None:
        h, table = gated_harness()
        async with trio.open_nursery() as nursery:
            await nursery.start(h.router.run)
            s = h.open("CP-NEW")
            assert h.call(s, "BootNotification", BOOT16) is None
            table.fail = True
            table.commit.set()
            await trio.testing.wait_all_tasks_blocked()
            [(_, reply)] = h.link.sent
            assert reply[0] == 4 and reply[2] == "InternalError"
            assert s.boot_state == NEW and h.policy.initial_state("CP-NEW") == NEW
            assert h.call(s, "Heartbeat", {}, "m2")[2] == "SecurityError"
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_with_the_real_store_the_accepted_reply_follows_the_durable_commit(tmp_path: Path) -> None:
    """The charger repository's acceptance is a durable write: while the writer thread is held the reply does
    not go out; once it does, another connection reads the charger as accepted, and the commit was fsynced."""
    path = str(tmp_path / "ampgate.db")

    async def main() -> None:
        store = Store(path)
        chargers = ChargerRepository(store)
        clock = FixedClock()
        bus = EventBus()
        link = Link()
        policy = BootPolicy(chargers, unknown_boot="accept", heartbeat_interval=300, retry_interval=60)
        outbox = CallManager(Wire().send, publish=bus.publish, now=clock.now)
        router = OcppRouter(policy, link, outbox, clock)
        router.begin_batch()
        BootHandlers(policy, chargers, bus, clock, router.time).register(router)
        entered, release = threading.Event(), threading.Event()

        def hold(db: sqlite_utils.Database) -> None:
            entered.set()
            release.wait(10)

        async with trio.open_nursery() as nursery:
            await nursery.start(store.run)
            await nursery.start(router.run)
            nursery.start_soon(store.write, hold)
            await trio.to_thread.run_sync(entered.wait, 10)
            session = router.open(1, "CP-NEW", "ocpp1.6", Seen())
            out: list[tuple[int, bytes]] = []
            router.on_message(1, msgspec.json.encode([2, "b1", "BootNotification", BOOT16]), out)
            await trio.sleep(0.2)
            assert out == [] and link.sent == []
            synced = store.stats.synced_commits
            release.set()
            with trio.fail_after(10):
                await policy.acceptance_committed("CP-NEW")
            await trio.testing.wait_all_tasks_blocked()
            assert link.sent[0][1][2]["status"] == ACCEPTED and session.boot_state == ACCEPTED
            conn = sqlite3.connect(path)
            try:
                assert conn.execute("SELECT accepted FROM chargers WHERE id = 'CP-NEW'").fetchone() == (1,)
            finally:
                conn.close()
            assert store.stats.synced_commits > synced
            nursery.cancel_scope.cancel()

    trio.run(main)
