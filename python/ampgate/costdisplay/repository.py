"""The `charger_cost_display` table: an admin's override of a charger's cost display (no row: its device model
decides). Few rows, changed only over the API: the service keeps them all in memory and writes through."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import cast

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.costdisplay.mode import Mode
from ampgate.store.store import Store


class Override(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode
    updated_at: datetime


def _set(db: sqlite_utils.Database, charger_id: str, mode: Mode | None, at: str) -> None:
    if mode is None:
        db.conn.execute("DELETE FROM charger_cost_display WHERE charger_id = ?", (charger_id,))
    else:
        db.conn.execute(
            "INSERT INTO charger_cost_display (charger_id, mode, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (charger_id) DO UPDATE SET mode = excluded.mode, updated_at = excluded.updated_at",
            (charger_id, mode, at),
        )


class CostDisplayRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def all(self) -> dict[str, Override]:
        """Every override, by charger id."""
        rows = self._store.reader.execute("SELECT charger_id, mode, updated_at FROM charger_cost_display")
        out: dict[str, Override] = {}
        for charger_id, mode, updated in rows.fetchall():
            at = parse_iso(updated)
            assert at is not None  # NOT NULL
            out[charger_id] = Override(mode=cast(Mode, mode), updated_at=at)
        return out

    async def set(self, charger_id: str, mode: Mode | None, at: datetime) -> None:
        """Store the override (None removes it) and wait for the commit."""
        await self._store.write(functools.partial(_set, charger_id=charger_id, mode=mode, at=iso_utc(at)))
