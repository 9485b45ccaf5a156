"""The store pushes back and reports: a bounded write queue whose producers wait, and a locked or full database
reported degraded (then ok again) with every write that waited committed once, none acknowledged before."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import pytest
import sqlite_utils
import trio
import trio.testing

from ampgate import config
from ampgate.bus import EventBus
from ampgate.clock import Clock
from ampgate.events import StoreDegraded, StoreRecovered
from ampgate.health import NodeHealth, StoreWatch, store_report
from ampgate.store import Store, StoreCondition
from ampgate.store import writer as writer_mod
from ampgate.store.writer import QUEUE_MAX, unavailable_reason

from .conftest import run_store
from .test_writer import insert, make_table, values, writer_held

# Polls of the store's condition give up after this long (a loaded CI box; the lock is seen in ~0.1 s).
DEADLINE_S = 20.0


@pytest.fixture(autouse=True)
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer gives up one attempt on a lock after 100 ms instead of a second: the same path, sooner."""
    monkeypatch.setattr(writer_mod, "WRITER_BUSY_TIMEOUT_MS", 100)


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll `check` on the real clock until it holds; fail naming `what` past DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE_S} s: {what}")
        await trio.sleep(0.01)


def test_the_default_bound_is_the_one_the_cli_offers() -> None:
    assert config.STORE_QUEUE_MAX == QUEUE_MAX
    assert config.NodeConfig().store_queue_max == QUEUE_MAX


@pytest.mark.parametrize("bad", [0, -1, config.STORE_QUEUE_MAX_LIMIT + 1, True])
def test_a_bound_out_of_range_is_refused_at_start(bad: int) -> None:
    with pytest.raises(ValueError, match="store_queue_max"):
        config.NodeConfig(store_queue_max=bad)


@pytest.mark.parametrize("bad", [0, -3])
def test_a_store_refuses_a_bound_below_one(db_path: str, bad: int) -> None:
    with pytest.raises(ValueError, match="queue_max"):
        Store(db_path, queue_max=bad)


def test_the_serve_option_refuses_a_bad_bound(capsys: pytest.CaptureFixture[str]) -> None:
    from ampgate import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--store-queue-max", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--store-queue-max" in err and "between 1 and" in err


def test_the_queue_bound_holds_and_producers_wait(db_path: str) -> None:
    """With the writer busy, 10 writes queue and the next 20 wait for room (none queued past the bound); once
    it is free every one commits."""
    store = Store(db_path, queue_max=10)

    async def body(s: Store) -> None:
        await s.write(make_table)
        results: list[int] = []

        async def producer(v: int) -> None:
            results.append(await s.write(insert(v)))

        async with trio.open_nursery() as nursery, writer_held(s):
            for v in range(30):
                nursery.start_soon(producer, v)
            await trio.testing.wait_all_tasks_blocked()
            assert s.queued() == 10
            assert s.full()
            assert s.stats.full_waits == 20
            assert results == []
            # Released: the queue drains, the waiters queue in turn, all commit.
        assert sorted(results) == list(range(30))
        assert not s.full()

    run_store(db_path, body, store)
    assert values(db_path) == list(range(30))


def test_wait_room_returns_once_the_writer_takes_the_queue(db_path: str) -> None:
    """What the gateway pump does: ask `full()`, await `wait_room()`; room comes from the writer thread."""
    store = Store(db_path, queue_max=5)

    async def body(s: Store) -> None:
        await s.write(make_table)
        woke = trio.Event()

        async def pump() -> None:
            await s.wait_room()
            woke.set()

        async with trio.open_nursery() as nursery, writer_held(s):
            for v in range(5):
                s.submit(insert(v))  # fire-and-forget never waits: it fills the queue
            assert s.full()
            nursery.start_soon(pump)
            await trio.testing.wait_all_tasks_blocked()
            assert not woke.is_set()
        with trio.fail_after(DEADLINE_S):
            await woke.wait()
        assert not s.full()

    run_store(db_path, body, store)
    assert values(db_path) == [0, 1, 2, 3, 4]


def test_the_reasons_a_store_is_unavailable() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5  # type: ignore[attr-defined]
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert unavailable_reason(busy) == "locked"
    assert unavailable_reason(full) == "full"
    assert unavailable_reason(OSError(28, "No space left on device")) == "full"
    assert unavailable_reason(sqlite3.IntegrityError("UNIQUE constraint failed: t.v")) is None
    assert unavailable_reason(ValueError("bad")) is None


class Watched:
    """The store's condition changes, and the events and health a node would show for them."""

    def __init__(self, store: Store) -> None:
        self.bus = EventBus()
        self.sub = self.bus.subscribe()
        self.changes: list[tuple[StoreCondition, StoreCondition]] = []
        store.watch(lambda old, new: self.changes.append((old, new)))
        store.watch(StoreWatch(self.bus, Clock()).changed)
        self.health = NodeHealth(
            lambda: [{"alive": True, "connections": 0}], lambda: 0, Clock(), store=lambda: store_report(store)
        )

    def events(self) -> list[object]:
        out: list[object] = []
        while (ev := self.sub.receive_nowait()) is not None:
            out.append(ev)
        return out


def test_a_locked_database_is_reported_and_nothing_is_lost(db_path: str) -> None:
    """Another process holds the write lock: the write waits (not acknowledged), the store is degraded
    ("locked") with an event, reads go on; released, the write commits once and the store is ok again."""
    store = Store(db_path)
    watched = Watched(store)

    async def body(s: Store) -> None:
        await s.write(make_table)
        await s.write(insert(1))
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        done: list[int] = []
        async with trio.open_nursery() as nursery:

            async def durable_write() -> None:
                done.append(await s.write(insert(2), durable=True))

            nursery.start_soon(durable_write)
            await until(lambda: s.condition.status == "degraded", "the store reported degraded")
            assert s.condition.reason == "locked"
            assert "locked" in (s.condition.detail or "")
            report = watched.health.report()
            assert report["status"] == "degraded"
            assert report["store"]["reason"] == "locked" and report["store"]["since"] is not None
            # Reads need no write: served from the reader meanwhile.
            assert s.reader.execute("SELECT v FROM t").fetchall() == [(1,)]
            await trio.sleep(0.3)  # a few more attempts, each refused
            assert done == []
            assert s.stats.retries >= 2
            other.execute("ROLLBACK")
            other.close()
            await until(lambda: done == [2], "the write committed after the lock was released")
        assert s.condition.status == "ok"
        assert watched.health.report()["status"] == "ok"
        assert [(o.status, n.status) for o, n in watched.changes] == [("ok", "degraded"), ("degraded", "ok")]
        events = watched.events()
        assert [type(e) for e in events] == [StoreDegraded, StoreRecovered]
        assert isinstance(events[0], StoreDegraded) and events[0].reason == "locked"
        assert isinstance(events[1], StoreRecovered) and events[1].reason == "locked"

    run_store(db_path, body, store)
    assert values(db_path) == [1, 2]


def test_a_full_database_is_reported_and_its_writes_commit_once_there_is_room(db_path: str) -> None:
    """SQLITE_FULL (max_page_count caps the file, as a full disk would): the group waits and is retried, the
    store is degraded ("full"); once the cap is raised every write of the group commits, each once."""
    store = Store(db_path)
    watched = Watched(store)
    room = False  # set from the trio thread; read by the op on the writer thread (a plain flag suffices)

    def blob(v: int) -> Callable[[sqlite_utils.Database], int]:
        def op(db: sqlite_utils.Database) -> int:
            if room:
                # The disk got room: the cap is per connection, so the op that meets it lifts it.
                db.execute("PRAGMA max_page_count = 1073741823")
            db.execute("INSERT INTO b (v, data) VALUES (?, zeroblob(200000))", (v,))
            return v

        return op

    def cap(db: sqlite_utils.Database) -> None:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 2}")

    async def body(s: Store) -> None:
        nonlocal room
        await s.write(lambda db: db.execute("CREATE TABLE b (v INTEGER PRIMARY KEY, data BLOB)"))
        await s.write(make_table)
        await s.write(cap)
        done: list[int] = []
        async with trio.open_nursery() as nursery:

            async def write(op: Callable[[sqlite_utils.Database], int]) -> None:
                done.append(await s.write(op, durable=True))

            async with writer_held(s):
                nursery.start_soon(write, insert(7))  # fits: only the blobs need new pages
                await trio.testing.wait_all_tasks_blocked()
                for v in range(3):
                    nursery.start_soon(write, blob(v))
                await trio.testing.wait_all_tasks_blocked()
            await until(lambda: s.condition.status == "degraded", "the store reported degraded")
            assert s.condition.reason == "full"
            await trio.sleep(0.2)
            assert done == []  # the whole group waits, the small write included: none acknowledged
            room = True
            await until(lambda: len(done) == 4, "every write of the group committed")
        assert s.condition.status == "ok"
        assert [type(e) for e in watched.events()] == [StoreDegraded, StoreRecovered]

    run_store(db_path, body, store)
    conn = sqlite3.connect(db_path)
    try:
        assert [r[0] for r in conn.execute("SELECT v FROM b ORDER BY v")] == [0, 1, 2]
    finally:
        conn.close()
    assert values(db_path) == [7]


def test_an_ops_own_failure_is_not_retried(db_path: str) -> None:
    """A constraint failure is the op's fault: it fails alone, at once, and the store stays ok."""

    async def body(s: Store) -> None:
        await s.write(make_table)
        await s.write(insert(1))
        with pytest.raises(sqlite3.IntegrityError):
            await s.write(insert(1))
        assert s.stats.retries == 0
        assert s.condition.status == "ok"

    run_store(db_path, body)


def test_connection_history_in_a_group_that_is_rolled_back_is_written_on_the_rerun(db_path: str) -> None:
    """The history's batched op takes the changes recorded so far when it first runs; when a later op of its
    group meets a full database the group is rolled back and rerun, and the op inserts the same changes again
    (not the empty list it left behind)."""
    from datetime import UTC, datetime, timedelta

    from ampgate.connectivity.history import Change, HistoryRepository

    store = Store(db_path)
    history = HistoryRepository(store)
    at = datetime(2026, 12, 1, 8, tzinfo=UTC)
    room = False

    def blob(db: sqlite_utils.Database) -> None:
        if room:
            db.execute("PRAGMA max_page_count = 1073741823")
        db.execute("INSERT INTO b (data) VALUES (zeroblob(200000))")

    def cap(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE b (data BLOB)")
        # Room for the history's rows, none for the blob.
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0] + 4}")

    async def body(s: Store) -> None:
        nonlocal room
        await s.write(cap)
        async with writer_held(s):
            for i in range(3):
                history.record(
                    Change(charger_id="CP1", at=at + timedelta(seconds=i), state="online", reason="r")
                )
            s.submit(blob)
        await until(lambda: s.condition.reason == "full", "the store reported full")
        room = True
        await until(lambda: s.condition.status == "ok", "the store writes again")
        await s.write(lambda db: None)  # after every write queued before it

    run_store(db_path, body, store)
    conn = sqlite3.connect(db_path)
    try:
        states = [r[0] for r in conn.execute("SELECT state FROM connectivity_history ORDER BY at")]
    finally:
        conn.close()
    assert states == ["online", "online", "online"]


def test_a_flush_at_shutdown_gives_up_on_a_store_still_locked(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping while the file stays locked: the retries end after STOP_RETRY_S (one deadline for the whole
    flush) and the writes still waiting fail to their callers, none claimed committed."""
    monkeypatch.setattr(writer_mod, "STOP_RETRY_S", 0.3)
    store = Store(db_path)
    outcomes: list[object] = []
    other = sqlite3.connect(db_path, isolation_level=None)

    async def main() -> None:
        async with trio.open_nursery() as writers, trio.open_nursery() as running:
            await running.start(store.run)
            await store.write(make_table)
            other.execute("BEGIN EXCLUSIVE")

            async def write(v: int) -> None:
                try:
                    outcomes.append(await store.write(insert(v)))
                except sqlite3.OperationalError as exc:
                    outcomes.append(str(exc))

            writers.start_soon(write, 1)
            await until(lambda: store.condition.status == "degraded", "the store reported degraded")
            writers.start_soon(write, 2)  # a second group, behind the one retrying
            await until(lambda: store.queued() == 1, "the second write queued")
            running.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert outcomes == ["database is locked", "database is locked"]
    assert values(db_path) == []
