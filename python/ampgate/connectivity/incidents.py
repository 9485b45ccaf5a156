"""Outages as incidents, and offline chargers as alerts.

`SpikeWatch` (pure): fed the disconnects of the last spike window and the fleet size at every sweep, it opens one
incident when they exceed the rule (`rules.is_spike`), counts what the incident covers while it lasts, and ends
it after a whole quiet window. Chargers that went down during an incident get no alert of their own: 10,000
chargers behind one failed feeder are one incident, not 10,000 alerts.

`IncidentRepository`: the incidents table (kind, scope, started_at, ended_at, disconnects).
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.connectivity import rules
from ampgate.store.store import Store


@dataclass
class Open:
    started_at: float
    disconnects: int
    last_spike_at: float
    id: int | None = None


class SpikeWatch:
    """The disconnect-spike rule over time (pure: the caller persists and publishes)."""

    def __init__(self, settings: rules.Settings) -> None:
        self.settings = settings
        self.open: Open | None = None
        # Incidents that ended, as (started_at, ended_at): a drop inside one is covered by it.
        self.recent: list[tuple[float, float]] = []

    def observe(self, now: float, disconnects: int, fleet: int) -> str | None:
        """One sweep. Returns "opened", "ended" or None."""
        spike = rules.is_spike(disconnects, fleet, self.settings)
        if self.open is None:
            if spike:
                self.open = Open(
                    started_at=now - self.settings.spike_window, disconnects=disconnects, last_spike_at=now
                )
                return "opened"
            return None
        if spike:
            self.open.last_spike_at = now
            self.open.disconnects = max(self.open.disconnects, disconnects)
            return None
        if now - self.open.last_spike_at >= self.settings.spike_window:
            self.recent = [*self.recent[-99:], (self.open.started_at, now)]
            return "ended"
        return None

    def covers(self, at: float) -> bool:
        """Whether a drop at `at` happened during an incident (open or ended)."""
        if self.open is not None and at >= self.open.started_at:
            return True
        return any(start <= at <= end for start, end in self.recent)


class IncidentRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    scope: str
    severity: str
    started_at: datetime
    ended_at: datetime | None
    disconnects: int
    fleet: int


_COLUMNS = "id, kind, scope, severity, started_at, ended_at, disconnects, fleet"


def _row(v: tuple[Any, ...]) -> IncidentRow:
    started = parse_iso(v[4])
    assert started is not None
    return IncidentRow(
        id=v[0],
        kind=v[1],
        scope=v[2],
        severity=v[3],
        started_at=started,
        ended_at=parse_iso(v[5]),
        disconnects=v[6],
        fleet=v[7],
    )


def insert(
    db: sqlite_utils.Database,
    kind: str,
    scope: str,
    severity: str,
    started_at: str,
    disconnects: int,
    fleet: int,
) -> int:
    cur = db.conn.execute(
        "INSERT INTO incidents (kind, scope, severity, started_at, disconnects, fleet) VALUES (?, ?, ?, ?, ?, ?)",
        (kind, scope, severity, started_at, disconnects, fleet),
    )
    return int(cur.lastrowid or 0)


def end(db: sqlite_utils.Database, iid: int, ended_at: str, disconnects: int) -> None:
    db.conn.execute(
        "UPDATE incidents SET ended_at = ?, disconnects = max(disconnects, ?) WHERE id = ? AND ended_at IS NULL",
        (ended_at, disconnects, iid),
    )


def read_page(
    conn: sqlite3.Connection, limit: int, before: int | None, state: str | None
) -> list[IncidentRow]:
    where, args = [], []
    if before is not None:
        where.append("id < ?")
        args.append(before)
    if state == "open":
        where.append("ended_at IS NULL")
    elif state == "ended":
        where.append("ended_at IS NOT NULL")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    cur = conn.execute(f"SELECT {_COLUMNS} FROM incidents{clause} ORDER BY id DESC LIMIT ?", (*args, limit))
    return [_row(v) for v in cur.fetchall()]


class IncidentRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def open(
        self, kind: str, scope: str, severity: str, started_at: datetime, disconnects: int, fleet: int
    ) -> int:
        return await self._store.write(
            functools.partial(
                insert,
                kind=kind,
                scope=scope,
                severity=severity,
                started_at=iso_utc(started_at),
                disconnects=disconnects,
                fleet=fleet,
            )
        )

    async def end(self, iid: int, ended_at: datetime, disconnects: int) -> None:
        await self._store.write(
            functools.partial(end, iid=iid, ended_at=iso_utc(ended_at), disconnects=disconnects)
        )

    def page(self, limit: int, before: int | None, state: str | None) -> list[IncidentRow]:
        return read_page(self._store.reader, limit, before, state)

    def get(self, iid: int) -> IncidentRow | None:
        rows = self._store.reader.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (iid,)).fetchall()
        return _row(rows[0]) if rows else None
