"""`OccupancyRepository`: the `site_occupancy` table, one row per site and UTC hour with its connector-seconds per
state. Rows are added to, never overwritten: the meter hands an hour out in parts (every few minutes, at the
hour boundary, at shutdown, and again after a restart within the hour), and the parts sum to the hour.

Writes are fire-and-forget on the store's writer thread (occupancy is a statistic: a part lost in a crash costs
minutes of one figure, and waiting for each commit would gain nothing); reads take the reader connection.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlite_utils

from ampgate.availability.occupancy import OccupancyRow
from ampgate.store.store import Store

_COLUMNS = "site_id, hour_start, in_use_s, free_s, faulted_s, unavailable_s, offline_s"
# Site ids per IN (...) list: well below SQLite's default limit of 32,766 host parameters.
_IN_CHUNK = 500


def add_rows(db: sqlite_utils.Database, rows: Sequence[OccupancyRow]) -> None:
    """Add each row's seconds to its (site, hour), creating the row."""
    db.conn.executemany(
        f"INSERT INTO site_occupancy ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (site_id, hour_start) DO UPDATE SET in_use_s = in_use_s + excluded.in_use_s,"
        " free_s = free_s + excluded.free_s, faulted_s = faulted_s + excluded.faulted_s,"
        " unavailable_s = unavailable_s + excluded.unavailable_s, offline_s = offline_s + excluded.offline_s",
        [
            (r.site_id, r.hour_start, r.in_use_s, r.free_s, r.faulted_s, r.unavailable_s, r.offline_s)
            for r in rows
        ],
    )


def delete_before(db: sqlite_utils.Database, hour: int) -> None:
    db.conn.execute("DELETE FROM site_occupancy WHERE hour_start < ?", (hour,))


class OccupancyRepository:
    """Occupancy per site per hour."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, rows: Sequence[OccupancyRow]) -> None:
        """Add `rows` to the table (fire-and-forget: committed with the writer's next group, and before the
        store closes)."""
        if rows:
            self._store.submit(functools.partial(add_rows, rows=list(rows)))

    def prune(self, before_hour: int) -> None:
        """Delete the hours that start before `before_hour` (fire-and-forget)."""
        self._store.submit(functools.partial(delete_before, hour=before_hour))

    def hours(self, site_id: str, since: int, until: int) -> list[OccupancyRow]:
        """The site's rows whose hour starts in [since, until), oldest first."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM site_occupancy WHERE site_id = ? AND hour_start >= ? AND hour_start < ?"
            " ORDER BY hour_start",
            (site_id, since, until),
        )
        return [_row(v) for v in cur.fetchall()]

    def totals(self, site_ids: Sequence[str], since: int) -> dict[str, tuple[float, float]]:
        """(in use, free) connector-seconds of each site in `site_ids` over the hours from `since` on (sites
        without rows are absent)."""
        out: dict[str, tuple[float, float]] = {}
        for i in range(0, len(site_ids), _IN_CHUNK):
            chunk = site_ids[i : i + _IN_CHUNK]
            cur = self._store.reader.execute(
                "SELECT site_id, sum(in_use_s), sum(free_s) FROM site_occupancy"
                f" WHERE hour_start >= ? AND site_id IN ({', '.join('?' * len(chunk))}) GROUP BY site_id",
                (since, *chunk),
            )
            for site_id, in_use, free in cur.fetchall():
                out[site_id] = (in_use, free)
        return out


def _row(v: tuple[Any, ...]) -> OccupancyRow:
    site_id, hour, in_use, free, faulted, unavailable, offline = v
    return OccupancyRow(
        site_id=site_id,
        hour_start=hour,
        in_use_s=in_use,
        free_s=free,
        faulted_s=faulted,
        unavailable_s=unavailable,
        offline_s=offline,
    )
