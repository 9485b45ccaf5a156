"""The `charger_tags` table, and selecting chargers by a selector a page at a time (`FleetRepository`).

A selection walks one index in charger-id order (the "driver") and checks the other criteria per row, so a page
is one index range from the cursor on, never a sort of everything that matches: paging through 100k chargers
reads each driver row once in all. The driver is the narrowest index the selector can use, in this order:
explicit ids (primary key lookups), the first tag (`charger_tags_tag`: tag, charger_id), the site
(`charger_placements_site`: site_id, charger_id), model, vendor, firmware version (`chargers_model`,
`chargers_vendor`, `chargers_firmware`: value, id), else the chargers' primary key. The plan is pinned with
INDEXED BY and CROSS JOIN so SQLite cannot pick a plan that sorts (it has no statistics to know better);
`tests/fleet` checks the plans.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

import sqlite_utils

from ampgate.fleet.tags import ChargerSelection, ChargerSelector
from ampgate.store.store import Store

# Explicit ids looked up per query: well below SQLite's 32,766 bound on parameters, and a page of them is one
# short indexed query.
ID_BATCH = 500
_SELECT = "SELECT c.id, c.protocol, c.vendor, c.model, c.firmware, p.site_id"


def read_tags(conn: sqlite3.Connection, charger_id: str) -> tuple[str, ...]:
    rows = conn.execute("SELECT tag FROM charger_tags WHERE charger_id = ? ORDER BY tag", (charger_id,))
    return tuple(r[0] for r in rows.fetchall())


def put_tags(
    db: sqlite_utils.Database, charger_id: str, tags: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Replace the charger's tags; returns (before, after)."""
    conn = db.conn
    before = read_tags(conn, charger_id)
    if before != tags:
        conn.execute("DELETE FROM charger_tags WHERE charger_id = ?", (charger_id,))
        conn.executemany(
            "INSERT INTO charger_tags (charger_id, tag) VALUES (?, ?)", [(charger_id, t) for t in tags]
        )
    return before, tags


def _filters(selector: ChargerSelector, skip: set[str], skip_tag: str | None) -> tuple[list[str], list[Any]]:
    """The WHERE terms of the criteria the driver does not already apply. Terms on `c.` columns are written
    `+c.col` so SQLite uses no index for them (the driver's index is the one to walk)."""
    where: list[str] = []
    args: list[Any] = []
    for name, column in (("vendor", "vendor"), ("model", "model"), ("firmware_version", "firmware")):
        value = getattr(selector, name)
        if value is not None and name not in skip:
            where.append(f"+c.{column} = ?")
            args.append(value)
    if selector.site_id is not None and "site_id" not in skip:
        where.append("p.site_id = ?")
        args.append(selector.site_id)
    for tag in selector.tags:
        if tag == skip_tag:
            continue
        # The primary key (charger_id, tag): one lookup per candidate row.
        where.append("EXISTS (SELECT 1 FROM charger_tags t2 WHERE t2.charger_id = c.id AND t2.tag = ?)")
        args.append(tag)
    return where, args


def selection_query(selector: ChargerSelector, limit: int, after: str | None) -> tuple[str, list[Any]]:
    """The SQL (and its arguments) of one page of a selection without explicit ids: see the module docstring
    for the driver chosen."""
    if selector.tags:
        tag = selector.tags[0]
        where, args = _filters(selector, set(), tag)
        head = (
            f"{_SELECT} FROM charger_tags t INDEXED BY charger_tags_tag CROSS JOIN chargers c ON c.id = t.charger_id"
            " LEFT JOIN charger_placements p ON p.charger_id = c.id"
        )
        key = "t.charger_id"
        where = ["t.tag = ?", *where]
        args = [tag, *args]
    elif selector.site_id is not None:
        where, args = _filters(selector, {"site_id"}, None)
        head = (
            f"{_SELECT} FROM charger_placements p INDEXED BY charger_placements_site"
            " CROSS JOIN chargers c ON c.id = p.charger_id"
        )
        key = "p.charger_id"
        where = ["p.site_id = ?", *where]
        args = [selector.site_id, *args]
    else:
        driver = next(
            (
                (name, column)
                for name, column in (
                    ("model", "model"),
                    ("vendor", "vendor"),
                    ("firmware_version", "firmware"),
                )
                if getattr(selector, name) is not None
            ),
            None,
        )
        if driver is None:
            where, args = _filters(selector, set(), None)
            head = f"{_SELECT} FROM chargers c LEFT JOIN charger_placements p ON p.charger_id = c.id"
        else:
            name, column = driver
            where, args = _filters(selector, {name}, None)
            head = (
                f"{_SELECT} FROM chargers c INDEXED BY chargers_{column}"
                " LEFT JOIN charger_placements p ON p.charger_id = c.id"
            )
            where = [f"c.{column} = ?", *where]
            args = [getattr(selector, name), *args]
        key = "c.id"
    if after is not None:
        where.append(f"{key} > ?")
        args.append(after)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{head}{clause} ORDER BY {key} LIMIT ?", [*args, limit]


def _row(v: tuple[Any, ...]) -> ChargerSelection:
    return ChargerSelection(
        id=v[0], protocol=v[1], vendor=v[2], model=v[3], firmware_version=v[4], site_id=v[5]
    )


def select(
    conn: sqlite3.Connection, selector: ChargerSelector, limit: int, after: str | None
) -> list[ChargerSelection]:
    """Up to `limit` chargers matching `selector` (checked: tags and ids sorted and distinct), in id order,
    with an id above `after`."""
    if selector.charger_ids is None:
        sql, args = selection_query(selector, limit, after)
        return [_row(v) for v in conn.execute(sql, args).fetchall()]
    ids = [cid for cid in selector.charger_ids if after is None or cid > after]
    where, fargs = _filters(selector, set(), None)
    out: list[ChargerSelection] = []
    for i in range(0, len(ids), ID_BATCH):
        batch = ids[i : i + ID_BATCH]
        marks = ", ".join("?" * len(batch))
        terms = [f"c.id IN ({marks})", *where]
        sql = (
            f"{_SELECT} FROM chargers c LEFT JOIN charger_placements p ON p.charger_id = c.id"
            f" WHERE {' AND '.join(terms)} ORDER BY c.id LIMIT ?"
        )
        out += [_row(v) for v in conn.execute(sql, [*batch, *fargs, limit - len(out)]).fetchall()]
        if len(out) >= limit:
            break
    return out


class FleetRepository:
    """Charger tags, and selections of chargers by selector."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def tags(self, charger_id: str) -> tuple[str, ...]:
        """The charger's tags, sorted (none: empty)."""
        return read_tags(self._store.reader, charger_id)

    async def put_tags(
        self, charger_id: str, tags: tuple[str, ...]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Replace the charger's tags (checked, sorted); returns (before, after) once committed."""
        return await self._store.write(functools.partial(put_tags, charger_id=charger_id, tags=tags))

    def select(self, selector: ChargerSelector, limit: int, after: str | None) -> list[ChargerSelection]:
        """See `select`."""
        return select(self._store.reader, selector, limit, after)
