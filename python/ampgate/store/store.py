"""`Store`: the node's SQLite database, knowing no table. Writes go through one writer thread (group commit);
reads run on the trio thread on their own connection (WAL: they never wait for the writer). Each feature reaches
its tables through a repository built on a Store (`ChargerRepository(store)`, ...), so a second backend only
has to provide the same repository methods.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

import outcome
import sqlite_utils
import trio

from ampgate.store.schema import connect, migrate
from ampgate.store.writer import (
    QUEUE_MAX,
    Condition,
    StoreClosedError,
    SyncMode,
    Waiter,
    Writer,
    WriterStats,
)

T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PendingWrite(Generic[T]):
    """A queued write's outcome, to await (`await pending`): the op's result once its group has committed, or
    what it raised. Awaiting it again gives the same outcome."""

    __slots__ = ("_waiter",)

    def __init__(self, waiter: Waiter[T]) -> None:
        self._waiter = waiter

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    async def _wait(self) -> T:
        await self._waiter.done.wait()
        assert self._waiter.result is not None
        # unwrap() of an Error may be called more than once (outcome only forbids it for a Value).
        result = self._waiter.result
        if isinstance(result, outcome.Error):
            raise result.error
        assert isinstance(result, outcome.Value)
        value: T = result.value
        return value

    @property
    def done(self) -> bool:
        """Whether the outcome is known (the group committed or failed)."""
        return self._waiter.done.is_set()


@dataclass(frozen=True)
class StoreCondition:
    """Whether the store can write: `status` "ok", or "degraded" with the `reason` ("locked": another process
    holds the write lock past the busy timeout; "full": the disk or the database is full; "io_error") and
    SQLite's `detail`, `since` when it began. Writes meanwhile wait and are retried, none is lost."""

    status: Literal["ok", "degraded"] = "ok"
    reason: str | None = None
    detail: str | None = None
    since: datetime | None = None


class Store:
    """The node's database at `path` (a file: the writer and the reader are separate connections).

    Opening creates or migrates the schema synchronously. Writes queue until `run()` is started in a nursery
    (`await nursery.start(store.run)`); cancelling `run()` flushes them. `now` supplies timestamps for rows this
    store creates (registration, tokens); pass the node's clock so tests can fix it. `sync` says which commits
    are fsynced (`ampgate.store.writer.SyncMode`: by default those holding a durable write). `queue_max`: writes
    queued before the store counts as full (`full()`, `wait_room()`). Raises ValueError for an unknown `sync` or
    a `queue_max` below 1.
    """

    def __init__(
        self,
        path: str,
        *,
        now: Callable[[], datetime] | None = None,
        sync: SyncMode = "durable",
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self.path = path
        self._now = now or _utc_now
        write_conn = connect(path)
        try:
            migrate(write_conn)
            self._read = connect(path, query_only=True)
        except BaseException:
            write_conn.close()
            raise
        try:
            self._writer = Writer(write_conn, sync=sync, queue_max=queue_max, on_condition=self._changed)
        except BaseException:
            write_conn.close()
            self._read.close()
            raise
        self._state = "new"  # -> "running" -> "closed"
        self.condition = StoreCondition()
        self._watchers: list[Callable[[StoreCondition, StoreCondition], None]] = []

    @property
    def stats(self) -> WriterStats:
        """The writer's counters (commits, ops, failed_ops, largest_group)."""
        return self._writer.stats

    def queued(self) -> int:
        """Writes waiting for the writer thread now."""
        return self._writer.queued()

    @property
    def queue_max(self) -> int:
        """Writes queued before the store counts as full."""
        return self._writer.queue_max

    def full(self) -> bool:
        """Whether `queue_max` writes or more are queued: a producer that can wait should (`wait_room`)."""
        return self._writer.full()

    async def wait_room(self) -> None:
        """Return once fewer than `queue_max` writes are queued (at once, without a checkpoint, if so now)."""
        await self._writer.wait_room()

    def watch(self, callback: Callable[[StoreCondition, StoreCondition], None]) -> None:
        """Call `callback(old, new)` on the trio thread whenever the condition changes (ok ⇄ degraded, or the
        reason of a degraded store)."""
        self._watchers.append(callback)

    def _changed(self, condition: Condition) -> None:
        status, reason, detail = condition
        old = self.condition
        since = old.since if old.status == status and status == "degraded" else self._now()
        self.condition = StoreCondition(status, reason, detail, since)
        for callback in self._watchers:
            callback(old, self.condition)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the writer thread, report started, and wait until cancelled. On cancellation (or any exit) it
        runs every write already submitted, stops the thread and closes both connections, so shutdown loses no
        submitted write. Runs once; raises RuntimeError if the store was already run or closed."""
        if self._state != "new":
            raise RuntimeError(f"Store.run() called on a {self._state} store")
        self._state = "running"
        try:
            self._writer.start(trio.lowlevel.current_trio_token())
            task_status.started()
            await trio.sleep_forever()
        finally:
            self._writer.stop()
            # Shielded: the flush must finish even though we are being cancelled. The outcomes of the last
            # groups reach their waiters through the trio token meanwhile.
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._writer.join)
            self._read.close()
            self._state = "closed"

    def close(self) -> None:
        """Close a store that was never run (e.g. the CLI's): writes queued meanwhile are run first on this
        thread. A no-op on a closed store; raises RuntimeError while `run()` is active (cancel it instead)."""
        if self._state == "running":
            raise RuntimeError("the store is running; cancel its run() task to close it")
        if self._state == "closed":
            return
        self._state = "closed"
        try:
            self._writer.close_unstarted()
        finally:
            self._read.close()

    # -- generic writes -------------------------------------------------------------------------------------

    def submit(self, op: Callable[[sqlite_utils.Database], Any]) -> None:
        """Queue `op(db)` for the writer and return at once (fire-and-forget): it commits with the next group.
        Its result is dropped; an exception it raises rolls back that op alone and is logged.
        Raises StoreClosedError after shutdown."""
        self._writer.enqueue(op, None)

    async def write(self, op: Callable[[sqlite_utils.Database], T], *, durable: bool = False) -> T:
        """Queue `op(db)` and wait until its group has committed; return what it returned, or raise what it
        raised (its own changes then rolled back, the rest of its group unaffected), or the sqlite3.Error that
        made the commit fail. `durable`: the commit is fsynced before this returns (what a charger is told it
        never has to send again); otherwise it survives a crash of the process but maybe not a power cut. If the
        caller is cancelled while waiting, the op may still commit.
        While the queue is full (`full()`) this waits for room before queueing.
        Raises StoreClosedError after shutdown. Before `run()` starts this waits for it."""
        if self._writer.full():
            await self._writer.wait_room()
        return await self.write_now(op, durable=durable)

    def write_now(
        self, op: Callable[[sqlite_utils.Database], T], *, durable: bool = False
    ) -> PendingWrite[T]:
        """Queue `op(db)` now, in order with every other write queued by then, and return what to await for its
        outcome (as `write` returns or raises; it may be awaited more than once, or never: the op runs
        anyway). For a caller that must fix the order of its write now but wait for it later.
        Raises StoreClosedError after shutdown."""
        waiter: Waiter[T] = Waiter()
        self._writer.enqueue(op, waiter, durable=durable)
        return PendingWrite(waiter)

    # -- reads --------------------------------------------------------------------------------------------

    @property
    def reader(self) -> sqlite3.Connection:
        """The read connection, for the repositories' short indexed queries on the trio thread (WAL: it never
        waits for the writer, and sees what has committed)."""
        return self._read

    def now(self) -> datetime:
        """The time rows created now are stamped with (the node's clock)."""
        return self._now()


__all__ = ["PendingWrite", "Store", "StoreClosedError", "StoreCondition"]
