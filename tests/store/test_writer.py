"""The writer thread: group commit, per-op isolation inside a group, flush on shutdown, and reads that do not
wait for it."""

from __future__ import annotations

import collections
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import sqlite_utils
import trio
import trio.testing

from ampgate.store import BootReport, ChargerRepository, Store, StoreClosedError
from ampgate.store.writer import MAX_GROUP, WAKE_CHUNK

from .conftest import Runner, run_store

AT = datetime(2026, 1, 1, tzinfo=UTC)


def make_table(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")


def insert(v: int) -> Callable[[sqlite_utils.Database], int]:
    def op(db: sqlite_utils.Database) -> int:
        db.execute("INSERT INTO t (v) VALUES (?)", (v,))
        return v

    return op


def values(path: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")]
    finally:
        conn.close()


@asynccontextmanager
async def writer_held(
    store: Store, first: Callable[[sqlite_utils.Database], object] | None = None
) -> AsyncIterator[None]:
    """Keep the writer thread busy inside an op (after running `first` in it) for the duration of the block, so
    everything queued meanwhile forms the next group; on exit, release it and wait until its group committed."""
    entered = threading.Event()
    release = threading.Event()

    def hold(db: sqlite_utils.Database) -> None:
        if first is not None:
            first(db)
        entered.set()
        release.wait(10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.write, hold)
        await trio.to_thread.run_sync(entered.wait, 10)
        try:
            yield
        finally:
            release.set()


def test_write_returns_the_ops_result_after_commit(running: Runner, db_path: str) -> None:
    async def body(store: Store) -> None:
        await store.write(make_table)
        assert await store.write(insert(7)) == 7
        # Committed: visible to another connection right away.
        assert values(db_path) == [7]

    running(body)


def test_ops_queued_together_commit_together(db_path: str) -> None:
    """Everything queued before the writer runs goes into one transaction: one commit for 501 ops."""
    store = Store(db_path)
    store.submit(make_table)
    for v in range(499):
        store.submit(insert(v))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            results: list[int] = []
            done = trio.Event()

            async def last() -> None:
                results.append(await store.write(insert(1000)))
                done.set()

            nursery.start_soon(last)
            await trio.testing.wait_all_tasks_blocked()  # `last` has queued its op behind the 500
            await nursery.start(store.run)
            with trio.fail_after(5):
                await done.wait()
            assert results == [1000]
            assert store.stats.commits == 1
            assert store.stats.ops == 501
            assert store.stats.largest_group == 501
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert len(values(db_path)) == 500


def test_concurrent_writers_share_a_commit(running: Runner, db_path: str) -> None:
    """While one group is on disk, the writes arriving meanwhile pile up and commit as the next group."""

    async def body(store: Store) -> None:
        await store.write(make_table)
        commits_before = store.stats.commits
        results: list[int] = []

        async def writer(v: int) -> None:
            results.append(await store.write(insert(v)))

        async with trio.open_nursery() as nursery, writer_held(store):
            for v in range(200):
                nursery.start_soon(writer, v)
            await trio.testing.wait_all_tasks_blocked()  # all 200 queued
        assert sorted(results) == list(range(200))
        # One commit for the holding op's group, one for all 200 writers.
        assert store.stats.commits - commits_before == 2
        assert store.stats.largest_group == 200

    running(body)


class RoundCounter(trio.abc.Instrument):
    """Numbers the loop's scheduling rounds (an I/O poll between each two)."""

    def __init__(self) -> None:
        self.round = 0

    def after_io_wait(self, timeout: float) -> None:
        self.round += 1


def test_a_groups_waiters_are_woken_a_chunk_per_round(running: Runner, db_path: str) -> None:
    """200 awaited writes committed in one group: their tasks resume at most WAKE_CHUNK per scheduling round, so
    the loop polls its sockets between (woken at once, the 200 next steps were one round). All are woken."""

    async def body(store: Store) -> None:
        await store.write(make_table)
        rounds = RoundCounter()
        resumed: list[int] = []

        async def writer(v: int) -> None:
            await store.write(insert(v))
            resumed.append(rounds.round)

        trio.lowlevel.add_instrument(rounds)
        async with trio.open_nursery() as nursery, writer_held(store):
            for v in range(200):
                nursery.start_soon(writer, v)
            await trio.testing.wait_all_tasks_blocked()  # all 200 queued behind the held op
        trio.lowlevel.remove_instrument(rounds)
        assert len(resumed) == 200
        per_round = collections.Counter(resumed)
        assert max(per_round.values()) <= WAKE_CHUNK
        assert len(per_round) >= 200 // WAKE_CHUNK

    running(body)


def test_group_is_bounded(db_path: str) -> None:
    store = Store(db_path)
    store.submit(make_table)
    for v in range(MAX_GROUP + 9):
        store.submit(insert(v))

    async def main() -> None:
        done = trio.Event()

        async def last() -> None:
            await store.write(insert(-1))
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(last)
            await trio.testing.wait_all_tasks_blocked()  # queued behind the others, before the writer starts
            await nursery.start(store.run)
            with trio.fail_after(5):
                await done.wait()
            assert store.stats.largest_group == MAX_GROUP
            assert store.stats.commits == 2
            assert store.stats.ops == MAX_GROUP + 11
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_failing_op_is_rolled_back_alone(running: Runner, db_path: str) -> None:
    def half_then_fail(db: sqlite_utils.Database) -> None:
        db.execute("INSERT INTO t (v) VALUES (2)")
        raise ValueError("boom")

    async def body(s: Store) -> None:
        await s.write(make_table)
        commits_before = s.stats.commits
        outcomes: dict[str, object] = {}

        async def attempt(name: str, op: Callable[[sqlite_utils.Database], object]) -> None:
            try:
                outcomes[name] = await s.write(op)
            except ValueError as exc:
                outcomes[name] = exc

        async with trio.open_nursery() as nursery, writer_held(s):
            for name, op in [("a", insert(1)), ("b", half_then_fail), ("c", insert(3))]:
                nursery.start_soon(attempt, name, op)
                await trio.testing.wait_all_tasks_blocked()  # queued in this order
        assert outcomes["a"] == 1
        assert isinstance(outcomes["b"], ValueError)
        assert outcomes["c"] == 3
        assert s.stats.failed_ops == 1
        assert s.stats.commits - commits_before == 2  # the three shared one transaction

    running(body)
    assert values(db_path) == [1, 3]


def test_an_op_that_destroys_the_transaction_does_not_take_its_group_down(
    running: Runner, db_path: str
) -> None:
    """RAISE(ROLLBACK) ends the whole transaction, savepoints included: the ops before it run again."""

    def setup(db: sqlite_utils.Database) -> None:
        make_table(db)
        db.execute("CREATE TABLE doomed (v INTEGER)")
        db.execute("CREATE TRIGGER no_doom BEFORE INSERT ON doomed BEGIN SELECT RAISE(ROLLBACK, 'nope'); END")

    def doom(db: sqlite_utils.Database) -> None:
        db.execute("INSERT INTO doomed (v) VALUES (1)")

    async def body(s: Store) -> None:
        await s.write(setup)
        errors: list[BaseException] = []

        async def attempt(op: Callable[[sqlite_utils.Database], object]) -> None:
            try:
                await s.write(op)
            except sqlite3.Error as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery, writer_held(s):
            for op in (insert(1), doom, insert(3)):
                nursery.start_soon(attempt, op)
                await trio.testing.wait_all_tasks_blocked()
        assert len(errors) == 1 and "nope" in str(errors[0])
        assert s.stats.largest_group == 3

    running(body)
    assert values(db_path) == [1, 3]


def test_fire_and_forget_failures_are_logged(
    running: Runner, db_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    def bad(db: sqlite_utils.Database) -> None:
        db.execute("INSERT INTO no_such_table VALUES (1)")

    async def body(store: Store) -> None:
        await store.write(make_table)
        with caplog.at_level(logging.ERROR, logger="ampgate.store"):
            store.submit(bad)
            await store.write(insert(5))
        assert any("store write failed" in r.getMessage() and r.exc_info for r in caplog.records)

    running(body)
    assert values(db_path) == [5]


def test_shutdown_flushes_every_submitted_write(db_path: str) -> None:
    async def body(store: Store) -> None:
        for i in range(1000):
            ChargerRepository(store).record_boot(
                BootReport(
                    charger_id=f"CP{i:04}",
                    vendor="v",
                    model="m",
                    serial=None,
                    firmware=None,
                    protocol="ocpp1.6",
                    at=AT,
                )
            )
        # run() is cancelled right after this returns, with (nearly) all of them still queued.

    run_store(db_path, body)
    reopened = Store(db_path)
    try:
        assert ChargerRepository(reopened).count() == 1000
    finally:
        reopened.close()


def test_writes_before_run_wait_for_it(db_path: str) -> None:
    store = Store(db_path)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            result: list[int] = []
            done = trio.Event()

            async def early() -> None:
                await store.write(make_table)
                result.append(await store.write(insert(4)))
                done.set()

            nursery.start_soon(early)
            await trio.testing.wait_all_tasks_blocked()
            assert result == []  # nothing runs the op yet
            await nursery.start(store.run)
            with trio.fail_after(5):
                await done.wait()
            assert result == [4]
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_writes_after_shutdown_are_refused(running: Runner, db_path: str) -> None:
    stores: list[Store] = []

    async def body(store: Store) -> None:
        stores.append(store)

    running(body)
    with pytest.raises(StoreClosedError):
        stores[0].submit(make_table)


def add_charger(cp_id: str) -> Callable[[sqlite_utils.Database], object]:
    return lambda db: db.execute(
        "INSERT INTO chargers (id, registered_at) VALUES (?, '2026-01-01T00:00:00.000Z')", (cp_id,)
    )


def test_reads_and_submits_do_not_wait_for_an_open_write(running: Runner) -> None:
    async def body(store: Store) -> None:
        await store.write(add_charger("COMMITTED"))
        async with writer_held(store, first=add_charger("PENDING")):
            # The writer sits in an open transaction holding the write lock, with PENDING inserted.
            started = time.monotonic()
            assert ChargerRepository(store).get("COMMITTED") is not None
            assert ChargerRepository(store).get("PENDING") is None
            store.submit(lambda db: None)
            assert time.monotonic() - started < 1.0  # nothing waited for the lock (busy timeout: 5 s)
        assert ChargerRepository(store).get("PENDING") is not None

    running(body)


def test_close_of_an_unrun_store_runs_its_queue(db_path: str) -> None:
    store = Store(db_path)
    store.submit(make_table)
    store.submit(insert(9))
    store.close()
    assert values(db_path) == [9]


def sync_level(db: sqlite_utils.Database) -> int:
    """The connection's synchronous level while the op runs (1 NORMAL, 2 FULL)."""
    return int(db.conn.execute("PRAGMA synchronous").fetchone()[0])


NORMAL, FULL = 1, 2


def test_a_durable_write_commits_with_an_fsync_and_others_do_not(running: Runner) -> None:
    async def body(store: Store) -> None:
        assert await store.write(sync_level) == NORMAL
        assert await store.write(sync_level, durable=True) == FULL
        assert store.stats.synced_commits == 1
        # Back to NORMAL for the next group that holds no durable write.
        assert await store.write(sync_level) == NORMAL
        store.submit(sync_level)
        assert await store.write(sync_level) == NORMAL
        assert store.stats.synced_commits == 1
        assert store.stats.durable_ops == 1

    running(body)


def test_one_durable_write_makes_its_whole_group_durable(running: Runner, db_path: str) -> None:
    """Group commit: 200 durable writes queued while a group is on disk cost one fsync, and a fire-and-forget
    write in the same group is fsynced with them."""

    async def body(store: Store) -> None:
        await store.write(make_table)
        before = store.stats.synced_commits
        levels: list[int] = []

        async def writer(v: int) -> None:
            levels.append(await store.write(lambda db: (insert(v)(db), sync_level(db))[1], durable=True))

        async with trio.open_nursery() as nursery, writer_held(store):
            store.submit(insert(1000))
            for v in range(200):
                nursery.start_soon(writer, v)
            await trio.testing.wait_all_tasks_blocked()
        assert levels == [FULL] * 200
        assert store.stats.synced_commits - before == 1
        assert store.stats.durable_ops == 200
        assert len(values(db_path)) == 201

    running(body)


@pytest.mark.parametrize(("sync", "plain", "durable"), [("normal", NORMAL, NORMAL), ("full", FULL, FULL)])
def test_the_sync_mode_overrides_what_writes_ask(db_path: str, sync: str, plain: int, durable: int) -> None:
    async def body(store: Store) -> None:
        assert await store.write(sync_level) == plain
        assert await store.write(sync_level, durable=True) == durable

    run_store(db_path, body, Store(db_path, sync=sync))  # type: ignore[arg-type]


def test_an_unknown_sync_mode_is_refused(db_path: str) -> None:
    with pytest.raises(ValueError, match="sync must be one of"):
        Store(db_path, sync="sometimes")  # type: ignore[arg-type]


def test_a_pending_write_is_queued_at_once_and_awaited_later(running: Runner, db_path: str) -> None:
    """`write_now` fixes the op's place in the queue when called: ops queued later run after it, whatever
    order their waiters run in; its outcome may be awaited twice, a failure raised each time."""

    async def body(store: Store) -> None:
        await store.write(make_table)
        order: list[int] = []

        def op(v: int) -> Callable[[sqlite_utils.Database], int]:
            def run(db: sqlite_utils.Database) -> int:
                order.append(v)
                return insert(v)(db)

            return run

        first = store.write_now(op(1))
        second = store.write_now(op(2), durable=True)
        assert await second == 2 and await first == 1 and await first == 1
        assert order == [1, 2] and first.done
        failing = store.write_now(insert(1))
        for _ in range(2):
            with pytest.raises(sqlite3.IntegrityError):
                await failing

    running(body)


@pytest.mark.parametrize("sync", ["durable", "full", "normal"])
def test_the_serve_option_picks_the_stores_sync_mode(sync: str) -> None:
    import argparse

    from ampgate import cli

    parser = argparse.ArgumentParser()
    cli._serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--store-sync", sync])
    assert cli._config(args).store_sync == sync
    assert cli._config(parser.parse_args(["serve"])).store_sync == "durable"
