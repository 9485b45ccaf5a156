"""`LoadHistoryRepository`: each site's load per minute (`site_load`), written by the ticker, read by the API's
history route and by what reports energy (OpenADR USAGE)."""

from __future__ import annotations

import functools
from datetime import datetime

import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

Row = tuple[str, str, float | None, float, float | None, int]


def _add(db: sqlite_utils.Database, rows: list[Row]) -> None:
    db.conn.executemany(
        "INSERT OR REPLACE INTO site_load (site_id, at, limit_kw, allocated_kw, measured_kw, sessions)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


class LoadHistoryRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, rows: list[Row]) -> None:
        """Fire-and-forget: (site_id, minute ISO, limit_kw, allocated_kw, measured_kw, sessions) rows commit
        with the writer's next group."""
        if rows:
            self._store.submit(functools.partial(_add, rows=rows))

    def minutes(
        self, site_id: str, since: datetime, until: datetime
    ) -> list[tuple[datetime, float | None, float, float | None, int]]:
        """The site's minutes in [since, until), oldest first: (at, limit_kw, allocated_kw, measured_kw,
        sessions)."""
        rows = self._store.reader.execute(
            "SELECT at, limit_kw, allocated_kw, measured_kw, sessions FROM site_load"
            " WHERE site_id = ? AND at >= ? AND at < ? ORDER BY at",
            (site_id, iso_utc(since), iso_utc(until)),
        ).fetchall()
        out = []
        for at, limit, allocated, measured, sessions in rows:
            t = parse_iso(at)
            assert t is not None
            out.append((t, limit, allocated, measured, sessions))
        return out

    async def prune(self, before: datetime) -> None:
        await self._store.write(
            lambda db: db.conn.execute("DELETE FROM site_load WHERE at < ?", (iso_utc(before),))
        )
