"""The connectivity history table: every state change of every charger (online, offline, stale) with its reason,
the close code and, for a change that ends a connection, how long it lasted. Written fire-and-forget (a boot
storm's thousands of connects share the writer's group commits); read per charger for its history and uptime;
pruned in the background after `retention`.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

_COLUMNS = "id, charger_id, at, state, reason, code, conn_id, protocol, remote_address, duration_s"


class HistoryRow(msgspec.Struct, frozen=True, kw_only=True):
    """One state change: the charger became `state` at `at` because of `reason` (`code`: the WebSocket close
    code when a connection ended). `duration_s`: how long the connection it ended had lasted."""

    id: int
    charger_id: str
    at: datetime
    state: str
    reason: str
    code: int | None
    conn_id: int | None
    protocol: str | None
    remote_address: str | None
    duration_s: float | None


class Change(msgspec.Struct, frozen=True, kw_only=True):
    charger_id: str
    at: datetime
    state: str
    reason: str
    code: int | None = None
    conn_id: int | None = None
    protocol: str | None = None
    remote_address: str | None = None
    duration_s: float | None = None


def _row(v: tuple[Any, ...]) -> HistoryRow:
    at = parse_iso(v[2])
    assert at is not None  # NOT NULL
    return HistoryRow(
        id=v[0],
        charger_id=v[1],
        at=at,
        state=v[3],
        reason=v[4],
        code=v[5],
        conn_id=v[6],
        protocol=v[7],
        remote_address=v[8],
        duration_s=v[9],
    )


def insert_many(db: sqlite_utils.Database, rows: list[tuple[Any, ...]]) -> None:
    db.conn.executemany(
        f"INSERT INTO connectivity_history ({_COLUMNS.split(', ', 1)[1]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _values(change: Change) -> tuple[Any, ...]:
    return (
        change.charger_id,
        iso_utc(change.at),
        change.state,
        change.reason,
        change.code,
        change.conn_id,
        change.protocol,
        change.remote_address,
        change.duration_s,
    )


def read_page(
    conn: sqlite3.Connection, charger_id: str, limit: int, before: int | None, since: str | None
) -> list[HistoryRow]:
    where, args = ["charger_id = ?"], [charger_id]
    if before is not None:
        where.append("id < ?")
        args.append(before)  # type: ignore[arg-type]
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM connectivity_history WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    )
    return [_row(v) for v in cur.fetchall()]


def read_window(
    conn: sqlite3.Connection, charger_id: str, since: str
) -> tuple[HistoryRow | None, list[HistoryRow]]:
    """The charger's last change before `since` (what state it was in then) and every change from it on."""
    before = conn.execute(
        f"SELECT {_COLUMNS} FROM connectivity_history WHERE charger_id = ? AND at < ? ORDER BY id DESC LIMIT 1",
        (charger_id, since),
    ).fetchone()
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM connectivity_history WHERE charger_id = ? AND at >= ? ORDER BY id",
        (charger_id, since),
    )
    return (None if before is None else _row(before)), [_row(v) for v in cur.fetchall()]


def prune(db: sqlite_utils.Database, before: str) -> int:
    return db.conn.execute("DELETE FROM connectivity_history WHERE at < ?", (before,)).rowcount


class HistoryRepository:
    """The connectivity history table."""

    def __init__(self, store: Store) -> None:
        self._store = store
        # Changes not yet handed to the writer, and whether a write that will take them is queued: a boot
        # storm's thousands of connects become one insert per group the writer runs, not one op each.
        self._pending: list[tuple[Any, ...]] = []
        self._queued = False
        self._lock = threading.Lock()

    def record(self, change: Change) -> None:
        """Record a state change, fire-and-forget. Raises ValueError for a naive `at`."""
        values = _values(change)
        with self._lock:
            self._pending.append(values)
            if self._queued:
                return
            self._queued = True
        self._store.submit(_PendingChanges(self))

    def _take_pending(self) -> list[tuple[Any, ...]]:
        with self._lock:
            rows, self._pending, self._queued = self._pending, [], False
        return rows

    def page(
        self, charger_id: str, limit: int, before: int | None, since: datetime | None
    ) -> list[HistoryRow]:
        return read_page(
            self._store.reader, charger_id, limit, before, None if since is None else iso_utc(since)
        )

    def window(self, charger_id: str, since: datetime) -> tuple[HistoryRow | None, list[HistoryRow]]:
        return read_window(self._store.reader, charger_id, iso_utc(since))

    async def prune(self, before: datetime) -> int:
        return await self._store.write(functools.partial(prune, before=iso_utc(before)))


class _PendingChanges:
    """The op that writes the changes recorded until it first runs. It keeps what it took: the writer runs an op
    again when its transaction was rolled back (a locked or full database, ampgate.store.writer), and a rerun
    must insert the same rows, not the (empty) list left behind."""

    __slots__ = ("_history", "_rows")

    def __init__(self, history: HistoryRepository) -> None:
        self._history = history
        self._rows: list[tuple[Any, ...]] | None = None

    def __call__(self, db: sqlite_utils.Database) -> None:
        if self._rows is None:
            self._rows = self._history._take_pending()
        insert_many(db, self._rows)
