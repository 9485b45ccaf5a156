"""The store's one writer: a dedicated thread that owns the write connection and commits in groups.

Why a thread: SQLite's commit blocks on fsync, and the trio thread must never block on disk (a BootNotification
reply must not wait for one). Why one: SQLite has one write lock per file anyway; a single owner makes that
explicit and lets many small writes share one transaction and one fsync (group commit), which is what keeps a
whole fleet's boot storm to a handful of commits a second.

Protocol: the trio thread enqueues jobs (an op plus, optionally, a waiter) under a lock and returns. The thread
takes everything queued (up to MAX_GROUP), runs each op inside its own SAVEPOINT within one transaction, commits
once, then hands the outcomes back to the trio thread through the TrioToken in a single callback. A failing op
is rolled back to its savepoint alone; the others in its group commit.

The waiters of a committed group are woken WAKE_CHUNK per scheduling round, in the order their writes were queued:
each one woken runs its next step in the round after, so a group of 500 awaited writes (a firmware campaign's
500 command deliveries each awaiting its own) woken at once made one round of 500 steps, 50-170 ms in which the
loop polled no socket (the API, the pump).

Durability: a job may be marked durable (what a charger is told it never has to send again: a transaction
message, an Accepted boot). A group holding one is committed with `synchronous=FULL`, i.e. the WAL is fsynced
before COMMIT returns, so the outcome handed back is on the disk, not in the page cache; the other groups commit
as `sync` says (NORMAL by default: safe from a process crash, not from a power cut). SQLite refuses to change
the level inside a transaction, so it is chosen per group, before BEGIN; the whole group (and every frame written
before it) is covered by that one fsync, which is what keeps a fleet's transaction messages to one fsync per
commit instead of one each.

Back-pressure: the queue holds at most `queue_max` jobs before it counts as full. `enqueue` never waits (it runs on
the trio thread, inside a gateway batch), so the bound is kept by the producers that can wait: the gateway pump
asks `full()` before it takes a batch and awaits `wait_room()` (what waits then stays in the workers, which stop
reading: TCP pushes back on the chargers), and `Store.write` awaits room before it queues. The queue may exceed
the bound by what one batch and the node's timers submit while it is full. The thread reports room through the
TrioToken (`run_sync_soon` never blocks), so it never waits on the loop.

Unavailable store: a write that fails because the database is locked past the busy timeout (SQLITE_BUSY),
the disk or the database is full (SQLITE_FULL, ENOSPC) or the disk fails (SQLITE_IOERR) is not
the op's fault: its group is rolled back whole and run again after a back-off (RETRY_FIRST_S doubling to
RETRY_MAX_S), its waiters still waiting, so nothing is acknowledged before it is on disk and nothing queued is
dropped. Meanwhile `on_condition` hears "degraded" (with the reason) once, and "ok" once a group commits again.
At shutdown the retries stop after STOP_RETRY_S; the writes still failing then fail to their waiters.
"""

from __future__ import annotations

import collections
import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import outcome
import sqlite_utils
import trio

log = logging.getLogger(__name__)

T = TypeVar("T")

# Most ops one group takes into its transaction. It bounds how long one commit holds SQLite's write lock and
# how long the first waiter of a group waits for the last op, while still folding a boot storm's thousands of
# fire-and-forget upserts into few fsyncs: at roughly 10 µs an upsert, 1000 ops are ~10 ms of work.
MAX_GROUP = 1000
# Name of the per-op savepoint. Ops that nest their own (sqlite-utils' `atomic`) use unique names.
SAVEPOINT = "ampgate_op"
# Waiters woken per scheduling round of the trio loop. A woken task's next step is typically 0.1-0.2 ms (measured:
# a command delivery after its record was taken), so 50 keep a round of wake-ups near 5-10 ms; a waiter beyond the
# first 50 of a group waits one more round (with an I/O poll in it) per 50 before it.
WAKE_CHUNK = 50
# Jobs queued before the queue counts as full (producers that can wait then wait). A healthy writer commits
# MAX_GROUP ops in ~10-30 ms, so 20,000 queued are well under a second of work: deep enough that a boot storm's
# bursts never wait on it, shallow enough that a locked or full disk holds tens of MB of pending writes at most
# (a queued job is an op closure and its payload, a few hundred bytes to a few KB) instead of growing with the
# fleet until the process dies.
QUEUE_MAX = 20_000
# The writer connection's own busy timeout: how long one attempt waits for another process's write lock before
# the store is reported degraded (the attempt is then retried, so nothing is lost by giving up early). The
# writer's own transactions last milliseconds, so a lock held a second is not ours and worth telling.
WRITER_BUSY_TIMEOUT_MS = 1000
# Back-off between attempts of a group that failed because the store was unavailable: first wait, doubled per
# attempt up to the cap. A second between attempts notices a freed disk or lock quickly without spinning.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0
# At shutdown, how long a group that keeps failing on an unavailable store is retried before its writes fail
# (their waiters hear the error: nothing unacknowledged is claimed). Bounds how long a SIGTERM can hang.
STOP_RETRY_S = 10.0

# SQLite's primary result codes that mean "the store is unavailable now", not "this op is wrong", with the
# reason reported for each (https://sqlite.org/rescode.html; extended codes keep the primary in the low byte).
SQLITE_BUSY = 5
SQLITE_IOERR = 10
SQLITE_FULL = 13
# SQLITE_LOCKED is not among them: it is a conflict inside this connection (a table dropped under an open cursor),
# which running the op again would not cure. Another process's lock is SQLITE_BUSY.
UNAVAILABLE_REASONS = {SQLITE_BUSY: "locked", SQLITE_FULL: "full", SQLITE_IOERR: "io_error"}

Op = Callable[[sqlite_utils.Database], Any]

# When commits are fsynced: "durable" (the default) fsyncs the groups that hold a durable job; "full" fsyncs every
# commit; "normal" none (the WAL is synced at checkpoints only: a power cut may lose the last commits, a process
# kill loses nothing committed). "normal" is the behaviour before durable writes existed, kept for comparison
# (bench/durability.py) and for disks whose cache survives a power cut.
SyncMode = Literal["durable", "full", "normal"]
SYNC_MODES: tuple[SyncMode, ...] = ("durable", "full", "normal")


@dataclass
class WriterStats:
    """Counters kept by the writer thread (read them from anywhere; they only grow)."""

    commits: int = 0  # transactions committed
    ops: int = 0  # ops committed
    failed_ops: int = 0  # ops whose outcome was an exception (rolled back)
    largest_group: int = 0  # most jobs taken into one transaction
    synced_commits: int = 0  # commits made with synchronous=FULL (one fsync of the WAL each)
    durable_ops: int = 0  # durable ops committed
    retries: int = 0  # attempts of a group that failed because the store was unavailable (then run again)
    full_waits: int = 0  # times a producer found the queue full and waited for room


def unavailable_reason(exc: BaseException) -> str | None:
    """Why `exc` means the store cannot write now ("locked", "full", "io_error"), or None when it is the op's
    own failure (a constraint, a bug) that running it again would not cure."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None:
            return UNAVAILABLE_REASONS.get(code & 0xFF)
        # Errors raised by the driver itself carry no code; SQLite's message is the only clue then.
        text = str(exc)
        if "database is locked" in text:
            return "locked"
        if "database or disk is full" in text:
            return "full"
        return None
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "full"
    return None


class Unavailable(Exception):
    """A group's attempt failed because the store is unavailable (`reason`, `error`): roll back, wait, rerun."""

    def __init__(self, reason: str, error: BaseException) -> None:
        super().__init__(reason, error)
        self.reason = reason
        self.error = error


# What `on_condition` hears on the trio thread: ("degraded", reason, detail) when writes start failing on an
# unavailable store, ("ok", None, None) when a group commits again.
Condition = tuple[Literal["ok", "degraded"], str | None, str | None]


class Waiter(Generic[T]):
    """Where the trio side waits for one op's outcome. Created and completed on the trio thread."""

    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: outcome.Outcome[T] | None = None


class _Job:
    __slots__ = ("durable", "op", "waiter")

    def __init__(self, op: Op, waiter: Waiter[Any] | None, durable: bool) -> None:
        self.op = op
        self.waiter = waiter
        self.durable = durable


class StoreClosedError(RuntimeError):
    """A write was submitted after the store shut down (a programmer error: nothing would ever run it)."""


class Writer:
    """The writer thread and its queue. `Store` is the only user; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        sync: SyncMode = "durable",
        queue_max: int = QUEUE_MAX,
        on_condition: Callable[[Condition], None] | None = None,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
        if isinstance(queue_max, bool) or not isinstance(queue_max, int) or queue_max < 1:
            raise ValueError(f"queue_max must be a whole number >= 1, not {queue_max!r}")
        self._conn = conn
        self.queue_max = queue_max
        self.on_condition = on_condition
        conn.execute(f"PRAGMA busy_timeout = {WRITER_BUSY_TIMEOUT_MS}")
        # Writer thread only: the condition last reported (so each change is reported once).
        self._degraded: str | None = None
        # Writer thread only: when a flush at shutdown stops retrying an unavailable store (set at its first
        # failure after stop()).
        self._give_up_at: float | None = None
        # Trio thread only: what waits for room, set (and replaced) once the queue is below queue_max again;
        # `_want_room` (under the lock) tells the thread someone waits.
        self._room: trio.Event | None = None
        self._want_room = False
        self._sync = sync
        # The connection's level as last set (connect() opens it NORMAL); changed only when a group needs the
        # other one, so a run of groups of one kind costs no PRAGMA.
        self._full: bool | None = None
        self._db = sqlite_utils.Database(conn, execute_plugins=False)
        self._cond = threading.Condition()
        self._queue: collections.deque[_Job] = collections.deque()
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self.stats = WriterStats()
        # Trio thread only: outcomes handed back and not yet given to their waiters (in the order their writes
        # were queued), and whether a `_wake_some` is scheduled to give them.
        self._ready: collections.deque[tuple[Waiter[Any], outcome.Outcome[Any]]] = collections.deque()
        self._waking = False

    # -- trio side ------------------------------------------------------------------------------------------

    def enqueue(self, op: Op, waiter: Waiter[Any] | None, *, durable: bool = False) -> None:
        """Queue `op`; never waits for the disk. A `durable` op's group is fsynced before its outcome is
        delivered (see the module docstring). Raises StoreClosedError once the writer has shut down."""
        with self._cond:
            if self._closed:
                raise StoreClosedError("the store is closed; this write would never run")
            self._queue.append(_Job(op, waiter, durable))
            self._cond.notify()

    def queued(self) -> int:
        """How many jobs wait for the thread (a snapshot)."""
        with self._cond:
            return len(self._queue)

    def full(self) -> bool:
        """Whether `queue_max` jobs or more wait (a snapshot; producers that can wait should, see wait_room)."""
        with self._cond:
            return len(self._queue) >= self.queue_max

    async def wait_room(self) -> None:
        """Return once fewer than `queue_max` jobs wait. Does not checkpoint when there is room already, so a
        caller that queues right after keeps its place in order. Trio thread only; needs a started writer (a
        writer never started has no thread to make room: it returns at once)."""
        counted = False
        while True:
            with self._cond:
                if len(self._queue) < self.queue_max or self._token is None or self._closed:
                    return
                self._want_room = True
                if self._room is None:
                    self._room = trio.Event()
                room = self._room
            if not counted:
                self.stats.full_waits += 1
                counted = True
            await room.wait()

    def _room_made(self) -> None:
        # Trio thread (TrioToken): wake every waiter; each checks again (another may have filled it meanwhile).
        room, self._room = self._room, None
        if room is not None:
            room.set()

    def start(self, token: trio.lowlevel.TrioToken) -> None:
        """Start the thread; outcomes are delivered through `token`. Raises RuntimeError if already started."""
        if self._thread is not None or self._closed:
            raise RuntimeError("the writer runs once")
        self._token = token
        self._thread = threading.Thread(target=self._main, name="ampgate-store-writer", daemon=False)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish: it runs everything already queued, closes its connection and exits.
        Returns at once; `join` waits."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def join(self) -> None:
        """Block until the thread has exited (call from a worker thread, not the trio thread)."""
        if self._thread is not None:
            self._thread.join()

    def close_unstarted(self) -> None:
        """Shut a writer down that never started: run whatever was queued on the calling thread (a store
        opened by the CLI may have queued nothing, or a few fire-and-forget ops), then close the connection."""
        if self._thread is not None:
            raise RuntimeError("the writer thread is running; stop() and join() it instead")
        self._stopping = True
        self._main()

    # -- writer thread --------------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if not self._queue:
                        # Decided under the lock: nothing can be enqueued after this without an error.
                        self._closed = True
                        break
                    group = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_GROUP))]
                    room = self._want_room and len(self._queue) < self.queue_max
                    if room:
                        self._want_room = False
                if room:
                    self._call_soon(self._room_made)
                self.stats.largest_group = max(self.stats.largest_group, len(group))
                self._deliver(group, self._commit(group))
        finally:
            with self._cond:
                self._closed = True
            self._conn.close()

    def _commit(self, group: list[_Job]) -> list[outcome.Outcome[Any]]:
        """Run and commit `group`, again and again while the store is unavailable (see the module docstring)."""
        delay = RETRY_FIRST_S
        while True:
            try:
                self._set_level(group)
                results = self._run_group(group)
            except Unavailable as exc:
                self.stats.retries += 1
                self._report(("degraded", exc.reason, str(exc.error)))
                with self._cond:
                    stopping = self._stopping
                now = time.monotonic()
                if stopping:
                    # One deadline for the whole flush, not one per group: a long queue behind a locked file
                    # must not make shutdown take STOP_RETRY_S per group.
                    if self._give_up_at is None:
                        self._give_up_at = now + STOP_RETRY_S
                    if now >= self._give_up_at:
                        log.error(
                            "store writer: %d writes failed at shutdown, the store still %s: %s",
                            len(group),
                            exc.reason,
                            exc.error,
                        )
                        return [outcome.Error(exc.error) for _ in group]
                # The change of condition is logged once (_report); each attempt only at debug level.
                log.debug("store writer: store %s (%s); retrying in %.2f s", exc.reason, exc.error, delay)
                # A plain sleep: new writes must not make a failing store spin, and a stop() waits at most one
                # delay (RETRY_MAX_S) to be noticed.
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except BaseException as exc:  # a bug here must not leave waiters hanging forever
                log.exception("store writer: group failed unexpectedly")
                return [outcome.Error(exc) for _ in group]
            self._report(("ok", None, None))
            return results

    def _report(self, condition: Condition) -> None:
        """Tell the trio side of a change of condition (writer thread; never waits on the loop)."""
        reason = condition[1] if condition[0] == "degraded" else None
        if reason == self._degraded:
            return
        self._degraded = reason
        if reason is not None:
            log.error("store writer: writes are failing, the store is %s (%s)", reason, condition[2])
        else:
            log.warning("store writer: writes commit again")
        callback = self.on_condition
        if callback is not None:
            self._call_soon(callback, condition)

    def _call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        if self._token is None:  # close_unstarted(): on the caller's thread, no loop to tell
            return
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            pass

    def _set_level(self, jobs: list[_Job]) -> None:
        # Before BEGIN: SQLite refuses to change the safety level inside a transaction.
        full = any(job.durable for job in jobs) if self._sync == "durable" else self._sync == "full"
        if full != self._full:
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if full else 'NORMAL'}")
            self._full = full

    def _run_group(self, jobs: list[_Job]) -> list[outcome.Outcome[Any]]:
        conn = self._conn
        results: list[outcome.Outcome[Any] | None] = [None] * len(jobs)
        todo = list(range(len(jobs)))
        while todo:
            ok: list[int] = []
            retry: list[int] | None = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                for pos, i in enumerate(todo):
                    conn.execute(f"SAVEPOINT {SAVEPOINT}")
                    result = outcome.capture(jobs[i].op, self._db)
                    results[i] = result
                    if isinstance(result, outcome.Error) and (why := unavailable_reason(result.error)):
                        # Not this op's fault (a full disk fails whichever op needs the next page): the
                        # whole group waits and runs again.
                        raise Unavailable(why, result.error)
                    if not conn.in_transaction:
                        if isinstance(result, outcome.Value):
                            # The op committed or rolled back by itself: a bug in the op. What it committed is
                            # on disk, so the ops before it must not run again.
                            results[i] = outcome.Error(
                                RuntimeError("a store op must not end its transaction")
                            )
                            ok = []
                        # Otherwise its failure (disk full, I/O error, a RAISE(ROLLBACK) trigger) rolled back
                        # the whole transaction, the ops before it included: run those again.
                        retry = ok + todo[pos + 1 :]
                        break
                    if isinstance(result, outcome.Error):
                        conn.execute(f"ROLLBACK TO {SAVEPOINT}")
                    else:
                        ok.append(i)
                    conn.execute(f"RELEASE {SAVEPOINT}")
                if retry is None:
                    conn.execute("COMMIT")
                    self.stats.commits += 1
                    self.stats.ops += len(ok)
                    if self._full:
                        self.stats.synced_commits += 1
                    self.stats.durable_ops += sum(jobs[i].durable for i in ok)
            except (sqlite3.Error, Unavailable) as exc:
                # BEGIN could not get the lock, or COMMIT failed (I/O), or an op met an unavailable store:
                # nothing of this attempt is on disk.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, Unavailable):
                    raise
                why = unavailable_reason(exc)
                if why is not None:
                    raise Unavailable(why, exc) from None
                for i in todo:
                    if results[i] is None or isinstance(results[i], outcome.Value):
                        results[i] = outcome.Error(exc)
                break
            # Each retry drops at least the op that failed, so this loop ends.
            todo = retry or []
        final = [r if r is not None else outcome.Error(RuntimeError("op never ran")) for r in results]
        self.stats.failed_ops += sum(isinstance(r, outcome.Error) for r in final)
        return final

    def _deliver(self, jobs: list[_Job], results: list[outcome.Outcome[Any]]) -> None:
        waiters: list[tuple[Waiter[Any], outcome.Outcome[Any]]] = []
        for job, result in zip(jobs, results, strict=True):
            if job.waiter is not None:
                waiters.append((job.waiter, result))
            elif isinstance(result, outcome.Error):
                log.error("store write failed: %r", job.op, exc_info=result.error)
        if not waiters:
            return
        if self._token is None:  # close_unstarted(): we are on the caller's thread already
            _complete(waiters)
            return
        try:
            self._token.run_sync_soon(self._wake, waiters)
        except trio.RunFinishedError:
            log.error(
                "store writer: %d writes committed after trio stopped; nobody hears of them", len(waiters)
            )

    # -- trio side: waking the waiters ------------------------------------------------------------------------

    def _wake(self, waiters: list[tuple[Waiter[Any], outcome.Outcome[Any]]]) -> None:
        """A group's outcomes (run by the TrioToken): queued behind any not yet given, woken WAKE_CHUNK a round."""
        self._ready.extend(waiters)
        if not self._waking:
            self._waking = True
            self._wake_some()

    def _wake_some(self) -> None:
        ready = self._ready
        _complete([ready.popleft() for _ in range(min(WAKE_CHUNK, len(ready)))])
        if not ready:
            self._waking = False
            return
        assert self._token is not None
        try:
            # trio runs a callback queued by a callback after its entry task's next checkpoint: the next round.
            self._token.run_sync_soon(self._wake_some)
        except trio.RunFinishedError:  # trio is finishing: there is no next round, wake the rest now
            _complete(list(ready))
            ready.clear()
            self._waking = False


def _complete(waiters: list[tuple[Waiter[Any], outcome.Outcome[Any]]]) -> None:
    for waiter, result in waiters:
        waiter.result = result
        waiter.done.set()
