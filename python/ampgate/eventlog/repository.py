"""The events table: every event the bus carried, in the order the event log numbered them (`id`), kept for
`retention` days. Written in batches (one store op per batch); read newest first by type and charger."""

from __future__ import annotations

import functools
import sqlite3
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.store.store import Store


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    type: str
    charger_id: str | None
    at: datetime
    data: bytes  # the event as JSON (with its "type")


def _row(v: tuple[Any, ...]) -> EventRow:
    return EventRow(
        id=v[0], type=v[1], charger_id=v[2], at=datetime.fromtimestamp(v[3] / 1000, UTC), data=v[4]
    )


def epoch_ms(at: datetime) -> int:
    """An aware time as epoch milliseconds. Raises ValueError for a naive one."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a naive datetime has no zone")
    return int(at.timestamp() * 1000)


def insert_many(db: sqlite_utils.Database, rows: list[tuple[int, str, str | None, int, bytes]]) -> None:
    db.conn.executemany(
        "INSERT OR IGNORE INTO events (id, type, charger_id, at_ms, data) VALUES (?, ?, ?, ?, ?)", rows
    )


def read_page(
    conn: sqlite3.Connection,
    limit: int,
    *,
    before: int | None = None,
    after: int | None = None,
    types: list[str] | None = None,
    charger_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    ascending: bool = False,
) -> list[EventRow]:
    where: list[str] = []
    args: list[Any] = []
    if before is not None:
        where.append("id < ?")
        args.append(before)
    if after is not None:
        where.append("id > ?")
        args.append(after)
    if types:
        where.append(f"type IN ({', '.join('?' * len(types))})")
        args += types
    if charger_id is not None:
        where.append("charger_id = ?")
        args.append(charger_id)
    if since is not None:
        where.append("at_ms >= ?")
        args.append(since)
    if until is not None:
        where.append("at_ms < ?")
        args.append(until)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    order = "ASC" if ascending else "DESC"
    cur = conn.execute(
        f"SELECT id, type, charger_id, at_ms, data FROM events{clause} ORDER BY id {order} LIMIT ?",
        (*args, limit),
    )
    return [_row(v) for v in cur.fetchall()]


def max_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(id) FROM events").fetchone()
    return int(row[0] or 0)


def prune(db: sqlite_utils.Database, before: int) -> int:
    return db.conn.execute("DELETE FROM events WHERE at_ms < ?", (before,)).rowcount


class EventRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def max_id(self) -> int:
        return max_id(self._store.reader)

    def add(self, rows: list[tuple[int, str, str | None, int, bytes]]) -> None:
        """Insert a batch, fire-and-forget."""
        self._store.submit(functools.partial(insert_many, rows=rows))

    def page(self, limit: int, **filters: Any) -> list[EventRow]:
        for key in ("since", "until"):
            if filters.get(key) is not None:
                filters[key] = epoch_ms(filters[key])
        return read_page(self._store.reader, limit, **filters)

    async def prune(self, before: datetime) -> int:
        return await self._store.write(functools.partial(prune, before=epoch_ms(before)))
