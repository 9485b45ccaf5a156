"""variable_monitors (a charger's monitors by id) and device_events (its NotifyEvent events, newest first; a
resent event, same id and time, is one row)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store import Store


class Where(msgspec.Struct, frozen=True, kw_only=True):
    """A component's variable; absent levels '' (names) and -1 (ids)."""

    component: str
    component_instance: str = ""
    evse_id: int = -1
    connector_id: int = -1
    variable: str
    variable_instance: str = ""


class Monitor(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    where: Where
    type: str
    severity: int
    value: float
    transaction: bool


class DeviceEvent(msgspec.Struct, frozen=True, kw_only=True):
    event_id: int
    at: datetime
    trigger: str
    cause: int | None
    actual_value: str
    tech_code: str | None
    tech_info: str | None
    cleared: bool | None
    transaction_id: str | None
    monitor_id: int | None
    notification_type: str
    where: Where


class MonitorRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    component: str
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    type: str
    severity: int
    value: float
    transaction: bool
    updated_at: datetime


class DeviceEventRow(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    event_id: int
    at: datetime
    trigger: str
    cause: int | None
    actual_value: str
    tech_code: str | None
    tech_info: str | None
    cleared: bool | None
    transaction_id: str | None
    monitor_id: int | None
    notification_type: str
    component: str
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    received_at: datetime


_WHERE = "component, component_instance, evse_id, connector_id, variable, variable_instance"
_MONITOR_COLUMNS = f"monitor_id, {_WHERE}, type, severity, value, in_transaction, updated_at"
_EVENT_FIELDS = (
    "event_id, at, trigger, cause, actual_value, tech_code, tech_info, cleared, transaction_id, monitor_id,"
    f" notification_type, {_WHERE}, received_at"
)
_EVENT_COLUMNS = f"id, {_EVENT_FIELDS}"


def _where_values(w: Where) -> tuple[Any, ...]:
    return (w.component, w.component_instance, w.evse_id, w.connector_id, w.variable, w.variable_instance)


def _where_read(v: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "component": v[0],
        "component_instance": v[1] or None,
        "evse_id": None if v[2] < 0 else v[2],
        "connector_id": None if v[3] < 0 else v[3],
        "variable": v[4],
        "variable_instance": v[5] or None,
    }


def _time(text: str) -> datetime:
    at = parse_iso(text)
    assert at is not None
    return at


def upsert_monitors(db: sqlite_utils.Database, charger_id: str, monitors: list[Monitor], at: str) -> None:
    for m in monitors:
        db.conn.execute(
            f"INSERT OR REPLACE INTO variable_monitors (charger_id, {_MONITOR_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (charger_id, m.id, *_where_values(m.where), m.type, m.severity, m.value, int(m.transaction), at),
        )


def delete_monitors(db: sqlite_utils.Database, charger_id: str, ids: list[int]) -> None:
    db.conn.executemany(
        "DELETE FROM variable_monitors WHERE charger_id = ? AND monitor_id = ?",
        [(charger_id, i) for i in ids],
    )


def insert_events(db: sqlite_utils.Database, charger_id: str, events: list[DeviceEvent], at: str) -> None:
    for e in events:
        db.conn.execute(
            f"INSERT OR IGNORE INTO device_events (charger_id, {_EVENT_FIELDS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                charger_id,
                e.event_id,
                iso_utc(e.at),
                e.trigger,
                e.cause,
                e.actual_value,
                e.tech_code,
                e.tech_info,
                None if e.cleared is None else int(e.cleared),
                e.transaction_id,
                e.monitor_id,
                e.notification_type,
                *_where_values(e.where),
                at,
            ),
        )


class MonitoringRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record_monitors(self, charger_id: str, monitors: list[Monitor], at: datetime) -> None:
        """Fire-and-forget (queued before the report part that carried them)."""
        self._store.submit(
            functools.partial(upsert_monitors, charger_id=charger_id, monitors=monitors, at=iso_utc(at))
        )

    async def set_monitors(self, charger_id: str, monitors: list[Monitor], at: datetime) -> None:
        await self._store.write(
            functools.partial(upsert_monitors, charger_id=charger_id, monitors=monitors, at=iso_utc(at))
        )

    async def remove_monitors(self, charger_id: str, ids: list[int]) -> None:
        await self._store.write(functools.partial(delete_monitors, charger_id=charger_id, ids=ids))

    def record_events(self, charger_id: str, events: list[DeviceEvent], at: datetime) -> None:
        """Fire-and-forget, like connector status: a charger reports events again after an outage."""
        self._store.submit(
            functools.partial(insert_events, charger_id=charger_id, events=events, at=iso_utc(at))
        )

    def monitors(self, charger_id: str) -> list[MonitorRow]:
        cur = self._store.reader.execute(
            f"SELECT {_MONITOR_COLUMNS} FROM variable_monitors WHERE charger_id = ? ORDER BY monitor_id",
            (charger_id,),
        )
        return [
            MonitorRow(
                id=v[0],
                **_where_read(v[1:7]),
                type=v[7],
                severity=v[8],
                value=v[9],
                transaction=bool(v[10]),
                updated_at=_time(v[11]),
            )
            for v in cur.fetchall()
        ]

    def events(
        self, charger_id: str, limit: int, *, monitor_id: int | None = None, before: int | None = None
    ) -> list[DeviceEventRow]:
        where, args = ["charger_id = ?"], [charger_id]
        for cond, arg in (("monitor_id = ?", monitor_id), ("id < ?", before)):
            if arg is not None:
                where.append(cond)
                args.append(arg)  # type: ignore[arg-type]
        cur = self._store.reader.execute(
            f"SELECT {_EVENT_COLUMNS} FROM device_events WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [
            DeviceEventRow(
                id=v[0],
                event_id=v[1],
                at=_time(v[2]),
                trigger=v[3],
                cause=v[4],
                actual_value=v[5],
                tech_code=v[6],
                tech_info=v[7],
                cleared=None if v[8] is None else bool(v[8]),
                transaction_id=v[9],
                monitor_id=v[10],
                notification_type=v[11],
                **_where_read(v[12:18]),
                received_at=_time(v[18]),
            )
            for v in cur.fetchall()
        ]
