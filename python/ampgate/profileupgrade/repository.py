"""The security_profile_upgrades table (migration 32): each upgrade's state machine record (`machine.Upgrade`)
as JSON, beside the columns it is listed and resumed by. Reads on the trio thread (the store's read
connection), writes through the store's writer, each awaited: a step is recorded before the next command goes."""

from __future__ import annotations

import functools
from datetime import datetime

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.profileupgrade.machine import AWAITING_RECONNECT, CONFIGURING, Upgrade
from ampgate.store import Store

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Upgrade).decode


class UpgradeRow(msgspec.Struct, frozen=True, kw_only=True):
    upgrade: Upgrade
    created_at: datetime
    updated_at: datetime


def _insert(db: sqlite_utils.Database, u: Upgrade, at: str) -> int:
    cur = db.conn.execute(
        "INSERT INTO security_profile_upgrades (charger_id, state, created_at, updated_at, body)"
        " VALUES (?, ?, ?, ?, '{}')",
        (u.charger_id, u.state, at, at),
    )
    new_id = cur.lastrowid
    assert new_id is not None
    u.id = new_id
    db.conn.execute("UPDATE security_profile_upgrades SET body = ? WHERE id = ?", (_encode(u), new_id))
    return new_id


def _save(db: sqlite_utils.Database, body: bytes, state: str, upgrade_id: int, at: str) -> None:
    db.conn.execute(
        "UPDATE security_profile_upgrades SET body = ?, state = ?, updated_at = ? WHERE id = ?",
        (body, state, at, upgrade_id),
    )


def _row(values: tuple[str, str, bytes | str]) -> UpgradeRow:
    created, updated, body = values
    created_at, updated_at = parse_iso(created), parse_iso(updated)
    assert created_at is not None and updated_at is not None
    return UpgradeRow(upgrade=_decode(body), created_at=created_at, updated_at=updated_at)


class UpgradeRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add(self, u: Upgrade) -> UpgradeRow:
        """Record a new upgrade; sets `u.id`. Durable: the charger is about to be told to change."""
        at = iso_utc(self._store.now())
        await self._store.write(functools.partial(_insert, u=u, at=at), durable=True)
        row = self.get(u.charger_id, u.id)
        assert row is not None
        return row

    async def save(self, u: Upgrade) -> None:
        """Record the upgrade's new state (durable: what the charger was told must survive a crash)."""
        at = iso_utc(self._store.now())
        body = _encode(u)
        await self._store.write(
            functools.partial(_save, body=body, state=u.state, upgrade_id=u.id, at=at), durable=True
        )

    def get(self, charger_id: str, upgrade_id: int) -> UpgradeRow | None:
        row = self._store.reader.execute(
            "SELECT created_at, updated_at, body FROM security_profile_upgrades WHERE id = ? AND charger_id = ?",
            (upgrade_id, charger_id),
        ).fetchone()
        return None if row is None else _row(row)

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[UpgradeRow]:
        """The charger's upgrades, newest first, those with an id below `before`; up to `limit`."""
        rows = self._store.reader.execute(
            "SELECT created_at, updated_at, body FROM security_profile_upgrades"
            " WHERE charger_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (charger_id, before if before is not None else 1 << 62, limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def open(self) -> list[Upgrade]:
        """Every upgrade not final (at start)."""
        rows = self._store.reader.execute(
            "SELECT created_at, updated_at, body FROM security_profile_upgrades"
            " WHERE state IN (?, ?) ORDER BY id",
            (CONFIGURING, AWAITING_RECONNECT),
        ).fetchall()
        return [_row(r).upgrade for r in rows]
