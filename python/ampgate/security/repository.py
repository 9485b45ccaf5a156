"""The security_events table: one row per SecurityEventNotification, committed before the charger gets its
reply (a charger queues these while offline and resends what was not answered [A04.FR.02/03]); the same event
resent (charger, type, time and techInfo alike) is one row."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store import Store

_COLUMNS = "id, charger_id, type, occurred_at, tech_info, critical, received_at"


class SecurityEventReport(msgspec.Struct, frozen=True, kw_only=True):
    """A security event as a charger reported it (`occurred_at` its time; `received_at` the node's)."""

    charger_id: str
    type: str
    occurred_at: datetime
    tech_info: str | None
    critical: bool
    received_at: datetime


class SecurityEventRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    charger_id: str
    type: str
    occurred_at: datetime
    tech_info: str | None
    critical: bool
    received_at: datetime


def _row(values: tuple[Any, ...]) -> SecurityEventRow:
    id_, charger_id, type_, occurred, tech_info, critical, received = values
    occurred_at, received_at = parse_iso(occurred), parse_iso(received)
    assert occurred_at is not None and received_at is not None  # NOT NULL in the schema
    return SecurityEventRow(
        id=id_,
        charger_id=charger_id,
        type=type_,
        occurred_at=occurred_at,
        tech_info=tech_info or None,  # stored as '' for none, so the unique key holds
        critical=bool(critical),
        received_at=received_at,
    )


def insert(db: sqlite_utils.Database, report: SecurityEventReport) -> tuple[int, bool]:
    """Store the event; returns (its id, created). The same event resent returns the first row's id."""
    key = (report.charger_id, report.type, iso_utc(report.occurred_at), report.tech_info or "")
    cur = db.conn.execute(
        "INSERT OR IGNORE INTO security_events (charger_id, type, occurred_at, tech_info, critical, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (*key, int(report.critical), iso_utc(report.received_at)),
    )
    if cur.rowcount:
        assert cur.lastrowid is not None
        return int(cur.lastrowid), True
    found = db.conn.execute(
        "SELECT id FROM security_events WHERE charger_id = ? AND type = ? AND occurred_at = ? AND tech_info = ?",
        key,
    ).fetchone()
    return int(found[0]), False


def read_page(
    conn: sqlite3.Connection,
    limit: int,
    before: int | None,
    charger_id: str | None,
    critical: bool | None,
    since: str | None,
    until: str | None,
) -> list[SecurityEventRow]:
    where, args = [], []
    for cond, arg in (
        ("id < ?", before),
        ("charger_id = ?", charger_id),
        ("critical = ?", None if critical is None else int(critical)),
        ("occurred_at >= ?", since),
        ("occurred_at < ?", until),
    ):
        if arg is not None:
            where.append(cond)
            args.append(arg)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM security_events {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    )
    return [_row(v) for v in cur.fetchall()]


class SecurityEventRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, report: SecurityEventReport) -> tuple[int, bool]:
        """Store a reported event and wait for the commit; returns (its id, created: False for a resend).
        Raises ValueError for a naive time."""
        return await self._store.write(functools.partial(insert, report=report))

    def page(
        self,
        limit: int,
        *,
        before: int | None = None,
        charger_id: str | None = None,
        critical: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SecurityEventRow]:
        """Up to `limit` events, newest first, with an id below `before`, optionally of one charger, only the
        critical ones (or only the others), and that occurred in [since, until)."""
        return read_page(
            self._store.reader,
            limit,
            before,
            charger_id,
            critical,
            None if since is None else iso_utc(since),
            None if until is None else iso_utc(until),
        )
