"""A disk that loses power: an apsw VFS whose files keep every write in a page cache until it is synced, and a
Store whose writer thread and reader run over it.

Why apsw: the store uses the standard library's sqlite3, which cannot be given a VFS written in Python; apsw
(its own SQLite, a VFS in a few lines) can. So the store here is the real one — the real `Writer` (its groups,
savepoints and the synchronous level it picks per group), the real migrations and the real repository ops
(`ampgate.store.transactions`), through a thin adapter that gives an apsw connection the few sqlite3 methods
they use — opened over the shim instead of the OS.

The model of the disk (`PowerCutVFS`): what a file holds on the platter is the real file; every write goes to a
per-path cache that reads see (the OS page cache: shared by every handle of the path) and reaches the real file
only when the file is synced (xSync replays the cached writes in order). `cut()` is the power cut: from then on
every operation fails (the machine is off), and the cache is dropped, so whatever was written but not synced
is gone; a sync is atomic with respect to the cut (it holds the lock the cut takes). This is the strictest
honest disk: a real one may also keep some unsynced writes, never more than these.

The wal-index lives on the heap (`locking_mode=EXCLUSIVE` before WAL): apsw's Python files have no
shared-memory methods. That changes nothing in what is written to the WAL or when it is synced; it means one
connection per database, so the store's reader is not opened (the harness reads only after a reopen).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import apsw

from ampgate.store import Store
from ampgate.store.schema import BUSY_TIMEOUT_MS, migrate
from ampgate.store.writer import SyncMode, Writer

_names = itertools.count()


class _Cache:
    """The unsynced state of one path: its visible content (None: as on disk) and the writes to replay."""

    __slots__ = ("image", "ops")

    def __init__(self) -> None:
        self.image: bytearray | None = None
        self.ops: list[tuple[int, bytes | None]] = []  # (offset, data) or (size, None) for a truncate


class PowerCutVFS(apsw.VFS):
    """See the module docstring. `syncs` counts the syncs that reached the disk, `unsynced_writes_lost` the
    writes the last cut dropped."""

    def __init__(self) -> None:
        self.name = f"powercut{next(_names)}"
        self.lock = threading.Lock()
        self.powered = True
        self.caches: dict[str, _Cache] = {}
        self.syncs = 0
        self.unsynced_writes_lost = 0
        super().__init__(self.name, "")

    def xOpen(self, name: Any, flags: Any) -> apsw.VFSFile:
        path = name.filename() if isinstance(name, apsw.URIFilename) else name
        return _File(self, path, name, flags)

    def xDelete(self, name: str, syncdir: bool) -> None:
        # SQLite deletes the WAL after the last connection checkpointed it (synced): its cache goes with it.
        with self.lock:
            self.check()
            self.caches.pop(name, None)
            super().xDelete(name, syncdir)

    def cache(self, path: str) -> _Cache:
        c = self.caches.get(path)
        if c is None:
            c = self.caches[path] = _Cache()
        return c

    def check(self) -> None:
        if not self.powered:
            raise apsw.IOError("the power is off")

    def cut(self) -> None:
        """Lose power: every unsynced write is gone, and nothing works until `restore`."""
        with self.lock:
            self.powered = False
            self.unsynced_writes_lost = sum(len(c.ops) for c in self.caches.values())
            self.caches.clear()

    def restore(self) -> None:
        """Power back: the files hold what was synced. The wal-index of the dead connections goes too (SQLite
        rebuilds it from the WAL on the next open)."""
        with self.lock:
            self.caches.clear()
            self.powered = True


class _File(apsw.VFSFile):
    def __init__(self, vfs: PowerCutVFS, path: str | None, name: Any, flags: Any) -> None:
        self._vfs = vfs
        self._path = path or f"(temp {id(self)})"
        super().__init__("", name, flags)

    def _image(self, c: _Cache) -> bytearray:
        if c.image is None:
            size = super().xFileSize()
            c.image = bytearray(super().xRead(size, 0)) if size else bytearray()
        return c.image

    def xRead(self, amount: int, offset: int) -> bytes:
        with self._vfs.lock:
            self._vfs.check()
            c = self._vfs.caches.get(self._path)
            if c is None or c.image is None:
                return super().xRead(amount, offset)
            return bytes(c.image[offset : offset + amount])

    def xWrite(self, data: bytes, offset: int) -> None:
        with self._vfs.lock:
            self._vfs.check()
            c = self._vfs.cache(self._path)
            image = self._image(c)
            if len(image) < offset:
                image.extend(bytes(offset - len(image)))
            image[offset : offset + len(data)] = data
            c.ops.append((offset, bytes(data)))

    def xTruncate(self, newsize: int) -> None:
        with self._vfs.lock:
            self._vfs.check()
            c = self._vfs.cache(self._path)
            del self._image(c)[newsize:]
            c.ops.append((newsize, None))

    def xFileSize(self) -> int:
        with self._vfs.lock:
            self._vfs.check()
            c = self._vfs.caches.get(self._path)
            return super().xFileSize() if c is None or c.image is None else len(c.image)

    def xSync(self, flags: int) -> None:
        # The real file stands for the platter: replaying the cached writes is what the fsync makes durable.
        # (No real fsync: the test's own disk does not lose power.)
        with self._vfs.lock:
            self._vfs.check()
            c = self._vfs.caches.get(self._path)
            if c is not None:
                for at, data in c.ops:
                    if data is None:
                        super().xTruncate(at)
                    else:
                        super().xWrite(data, at)
                c.ops.clear()
            self._vfs.syncs += 1


class _Cursor:
    """The part of sqlite3.Cursor the store uses, over a finished apsw statement."""

    def __init__(self, rows: list[tuple[Any, ...]], lastrowid: int, rowcount: int) -> None:
        self._rows = rows
        self.lastrowid = lastrowid
        self.rowcount = rowcount
        self.description = None if not rows else ()

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class ApswConnection:
    """The part of sqlite3.Connection the writer, the migrations and the repository ops use, over apsw."""

    def __init__(self, path: str, vfs: str | None) -> None:
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        self._c = apsw.Connection(path, flags=flags, vfs=vfs) if vfs else apsw.Connection(path, flags=flags)
        self.autocommit = None  # what sqlite_utils looks for: "default transaction handling"

    @property
    def in_transaction(self) -> bool:
        return bool(self._c.in_transaction)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        rows = [tuple(r) for r in self._c.execute(sql, tuple(params))]
        return _Cursor(rows, self._c.last_insert_rowid(), self._c.changes())

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> _Cursor:
        changes = 0
        for params in seq:
            self._c.execute(sql, tuple(params))
            changes += self._c.changes()
        return _Cursor([], self._c.last_insert_rowid(), changes)

    def close(self) -> None:
        try:
            self._c.close()
        except apsw.Error:
            pass  # the power is off: a close that would checkpoint fails, as the machine did


def open_connection(path: str, vfs: PowerCutVFS | None) -> ApswConnection:
    """A write connection with the store's settings (schema.connect): WAL, synchronous NORMAL, a busy timeout;
    plus the heap wal-index the shim needs (see the module docstring)."""
    conn = ApswConnection(path, None if vfs is None else vfs.name)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class _NoReader:
    def close(self) -> None:
        pass


class ShimStore(Store):
    """The real Store (writer thread, group commit, write/write_now) over an apsw connection on `vfs`."""

    def __init__(
        self,
        path: str,
        vfs: PowerCutVFS | None,
        *,
        sync: SyncMode = "durable",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = path
        self._now = now or (lambda: datetime.now(UTC))
        conn = open_connection(path, vfs)
        migrate(conn)  # type: ignore[arg-type]
        self._read = _NoReader()  # type: ignore[assignment]
        self._writer = Writer(conn, sync=sync)  # type: ignore[arg-type]
        self._state = "new"


def files(path: str) -> list[str]:
    """The database's files on disk."""
    return [p for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)]
