"""The demand-response tables (`dr_events`, `dr_event_points`) behind `DemandRepository`. Writes run on the
store's writer thread; reads use the reader connection on the trio thread."""

from __future__ import annotations

import functools
import json
import sqlite3
from datetime import datetime
from typing import Any

import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.demand.model import EventRow, EventSpec
from ampgate.errors import NotFoundError
from ampgate.store.store import Store

_COLUMNS = (
    "id, node_id, limit_kw, reduce_kw, reduce_pct, starts_at, ends_at, source, ref, created_at, cancelled_at,"
    " baseline_kw"
)


def _at(text: str) -> datetime:
    at = parse_iso(text)
    assert at is not None  # NOT NULL
    return at


def _row(v: tuple[Any, ...]) -> EventRow:
    return EventRow(
        id=v[0],
        node_id=v[1],
        limit_kw=v[2],
        reduce_kw=v[3],
        reduce_pct=v[4],
        starts_at=_at(v[5]),
        ends_at=_at(v[6]),
        source=v[7],
        ref=v[8],
        created_at=_at(v[9]),
        cancelled_at=parse_iso(v[10]),
        baseline_kw=json.loads(v[11]),
    )


def read_event(conn: sqlite3.Connection, event_id: int) -> EventRow | None:
    v = conn.execute(f"SELECT {_COLUMNS} FROM dr_events WHERE id = ?", (event_id,)).fetchone()
    return None if v is None else _row(v)


def insert(db: sqlite_utils.Database, spec: EventSpec, at: str) -> EventRow:
    cur = db.conn.execute(
        "INSERT INTO dr_events (node_id, limit_kw, reduce_kw, reduce_pct, starts_at, ends_at, source, ref,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            spec.node_id,
            spec.limit_kw,
            spec.reduce_kw,
            spec.reduce_pct,
            iso_utc(spec.starts_at),
            iso_utc(spec.ends_at),
            spec.source,
            spec.ref,
            at,
        ),
    )
    row = read_event(db.conn, int(cur.lastrowid or 0))
    assert row is not None
    return row


def replace_external(db: sqlite_utils.Database, spec: EventSpec, at: str) -> tuple[EventRow | None, EventRow]:
    """Insert the event (source, ref), or change the live one with that ref: (before, after)."""
    v = db.conn.execute(
        f"SELECT {_COLUMNS} FROM dr_events WHERE source = ? AND ref = ?", (spec.source, spec.ref)
    ).fetchone()
    if v is None:
        return None, insert(db, spec, at)
    before = _row(v)
    db.conn.execute(
        "UPDATE dr_events SET node_id = ?, limit_kw = ?, reduce_kw = NULL, reduce_pct = NULL, starts_at = ?,"
        " ends_at = ?, cancelled_at = NULL WHERE id = ?",
        (spec.node_id, spec.limit_kw, iso_utc(spec.starts_at), iso_utc(spec.ends_at), before.id),
    )
    after = read_event(db.conn, before.id)
    assert after is not None
    return before, after


def cancel(db: sqlite_utils.Database, event_id: int, at: str) -> EventRow:
    db.conn.execute(
        "UPDATE dr_events SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL", (at, event_id)
    )
    row = read_event(db.conn, event_id)
    if row is None:
        raise NotFoundError(f"demand-response event {event_id} does not exist", field="event_id")
    return row


def set_baseline(db: sqlite_utils.Database, event_id: int, baseline: dict[str, float]) -> None:
    db.conn.execute("UPDATE dr_events SET baseline_kw = ? WHERE id = ?", (json.dumps(baseline), event_id))


def add_points(db: sqlite_utils.Database, rows: list[tuple[int, str, str, float, float | None]]) -> None:
    db.conn.executemany(
        "INSERT OR REPLACE INTO dr_event_points (event_id, at, node_id, target_kw, measured_kw)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )


class DemandRepository:
    """Demand-response events and what they achieved."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> str:
        return iso_utc(self._store.now())

    def get(self, event_id: int) -> EventRow | None:
        return read_event(self._store.reader, event_id)

    def page(self, limit: int, before: int | None = None, source: str | None = None) -> list[EventRow]:
        """Up to `limit` events, newest first, with an id below `before`."""
        where: list[str] = ["1 = 1"]
        args: list[object] = []
        if before is not None:
            where.append("id < ?")
            args.append(before)
        if source is not None:
            where.append("source = ?")
            args.append(source)
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM dr_events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_row(v) for v in rows]

    def live(self, now: datetime) -> list[EventRow]:
        """Events not cancelled that have not ended by `now` (scheduled or active), oldest first."""
        rows = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM dr_events WHERE cancelled_at IS NULL AND ends_at > ? ORDER BY id",
            (iso_utc(now),),
        ).fetchall()
        return [_row(v) for v in rows]

    def points(
        self, event_id: int, limit: int, after: str | None = None
    ) -> list[tuple[datetime, str, float, float | None]]:
        """The event's (at, node_id, target_kw, measured_kw) per tick, oldest first, after the key `after`
        ("<at ISO>|<node id>" of the last point seen)."""
        at, _, node = (after or "|").partition("|")
        rows = self._store.reader.execute(
            "SELECT at, node_id, target_kw, measured_kw FROM dr_event_points"
            " WHERE event_id = ? AND (at, node_id) > (?, ?) ORDER BY at, node_id LIMIT ?",
            (event_id, at, node, limit),
        ).fetchall()
        return [(_at(a), n, t, m) for a, n, t, m in rows]

    async def insert(self, spec: EventSpec) -> EventRow:
        return await self._store.write(functools.partial(insert, spec=spec, at=self._now()))

    async def replace_external(self, spec: EventSpec) -> tuple[EventRow | None, EventRow]:
        return await self._store.write(functools.partial(replace_external, spec=spec, at=self._now()))

    async def cancel(self, event_id: int) -> EventRow:
        return await self._store.write(functools.partial(cancel, event_id=event_id, at=self._now()))

    async def set_baseline(self, event_id: int, baseline: dict[str, float]) -> None:
        await self._store.write(functools.partial(set_baseline, event_id=event_id, baseline=baseline))

    async def prune(self, before: datetime) -> None:
        """Drop achievement points older than `before` (the events themselves are kept)."""
        at = iso_utc(before)
        await self._store.write(lambda db: db.conn.execute("DELETE FROM dr_event_points WHERE at < ?", (at,)))

    def add_points(self, rows: list[tuple[int, str, str, float, float | None]]) -> None:
        """Fire-and-forget: the points commit with the writer's next group (a lost tick is no harm)."""
        if rows:
            self._store.submit(functools.partial(add_points, rows=rows))
