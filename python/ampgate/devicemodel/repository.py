"""The device_variables table: one row per (component, EVSE, connector, variable, attribute type) of a charger.
A 1.6 configuration key is a variable of no component (`component` ''), its `readonly` the mutability."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store import Store

_COLUMNS = (
    "component, component_instance, evse_id, connector_id, variable, variable_instance, attribute_type, value,"
    " mutability, persistent, constant, characteristics, updated_at"
)
_KEY = "charger_id, component, component_instance, evse_id, connector_id, variable, variable_instance, attribute_type"


class Variable(msgspec.Struct, frozen=True, kw_only=True):
    """One attribute of a variable as a charger reported it. Absent levels are '' (names) and -1 (ids)."""

    component: str
    component_instance: str = ""
    evse_id: int = -1
    connector_id: int = -1
    variable: str
    variable_instance: str = ""
    attribute_type: str = "Actual"
    value: str | None = None
    mutability: str | None = None
    persistent: bool | None = None
    constant: bool | None = None
    characteristics: dict[str, Any] | None = None


class VariableRow(msgspec.Struct, frozen=True, kw_only=True):
    component: str | None  # None: a 1.6 configuration key
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    attribute_type: str
    value: str | None
    mutability: str | None
    persistent: bool | None
    constant: bool | None
    characteristics: dict[str, Any] | None
    updated_at: datetime


_json = msgspec.json.Encoder().encode
_from_json = msgspec.json.Decoder(dict[str, Any]).decode


def _row(v: tuple[Any, ...]) -> VariableRow:
    at = parse_iso(v[12])
    assert at is not None
    return VariableRow(
        component=v[0] or None,
        component_instance=v[1] or None,
        evse_id=None if v[2] < 0 else v[2],
        connector_id=None if v[3] < 0 else v[3],
        variable=v[4],
        variable_instance=v[5] or None,
        attribute_type=v[6],
        value=v[7],
        mutability=v[8],
        persistent=None if v[9] is None else bool(v[9]),
        constant=None if v[10] is None else bool(v[10]),
        characteristics=None if v[11] is None else _from_json(v[11]),
        updated_at=at,
    )


def upsert(
    db: sqlite_utils.Database, charger_id: str, variables: list[Variable], at: str, *, full: bool
) -> None:
    """Record what the charger reported; with `full`, a report of everything: attributes it listed replace
    what was known (values it omitted are cleared), else only the given fields change."""
    conn = db.conn
    for v in variables:
        key = (
            charger_id,
            v.component,
            v.component_instance,
            v.evse_id,
            v.connector_id,
            v.variable,
            v.variable_instance,
            v.attribute_type,
        )
        characteristics = None if v.characteristics is None else _json(v.characteristics).decode()
        persistent = None if v.persistent is None else int(v.persistent)
        constant = None if v.constant is None else int(v.constant)
        if full:
            conn.execute(
                f"INSERT OR REPLACE INTO device_variables ({_KEY}, value, mutability, persistent, constant,"
                " characteristics, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, v.value, v.mutability, persistent, constant, characteristics, at),
            )
        else:
            conn.execute(
                f"INSERT INTO device_variables ({_KEY}, value, mutability, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET value = excluded.value,"
                " mutability = coalesce(excluded.mutability, mutability), updated_at = excluded.updated_at",
                (*key, v.value, v.mutability, at),
            )


def read(
    conn: sqlite3.Connection,
    charger_id: str,
    component: str | None,
    variable: str | None,
    limit: int,
    after: tuple[Any, ...] | None,
) -> list[VariableRow]:
    where, args = ["charger_id = ?"], [charger_id]
    if component is not None:
        where.append("component = ?")
        args.append(component)
    if variable is not None:
        where.append("variable = ?")
        args.append(variable)
    if after is not None:
        where.append(
            "(component, component_instance, evse_id, connector_id, variable, variable_instance, attribute_type)"
            " > (?, ?, ?, ?, ?, ?, ?)"
        )
        args.extend(after)
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM device_variables WHERE {' AND '.join(where)} ORDER BY component,"
        " component_instance, evse_id, connector_id, variable, variable_instance, attribute_type LIMIT ?",
        (*args, limit),
    )
    return [_row(v) for v in cur.fetchall()]


def sort_key(row: VariableRow) -> tuple[Any, ...]:
    """The row's place in `read`'s order, for the next page."""
    return (
        row.component or "",
        row.component_instance or "",
        -1 if row.evse_id is None else row.evse_id,
        -1 if row.connector_id is None else row.connector_id,
        row.variable,
        row.variable_instance or "",
        row.attribute_type,
    )


class DeviceModelRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, charger_id: str, variables: list[Variable], at: datetime, *, full: bool) -> None:
        """Record variables fire-and-forget (queued in order with the report part that carried them)."""
        self._store.submit(
            functools.partial(upsert, charger_id=charger_id, variables=variables, at=iso_utc(at), full=full)
        )

    async def record_now(
        self, charger_id: str, variables: list[Variable], at: datetime, *, full: bool
    ) -> None:
        """Record variables and wait for the commit."""
        await self._store.write(
            functools.partial(upsert, charger_id=charger_id, variables=variables, at=iso_utc(at), full=full)
        )

    def page(
        self,
        charger_id: str,
        limit: int,
        *,
        component: str | None = None,
        variable: str | None = None,
        after: tuple[Any, ...] | None = None,
    ) -> list[VariableRow]:
        """The charger's variables in (component, evse, connector, variable, attribute) order, after `after`
        (a `sort_key`); `component` '' selects the 1.6 configuration keys."""
        return read(self._store.reader, charger_id, component, variable, limit, after)

    def value(
        self,
        charger_id: str,
        component: str,
        variable: str,
        instance: str = "",
        attribute_type: str = "Actual",
    ) -> str | None:
        """One attribute's value (the charger level: no EVSE, no connector), or None."""
        found = self._store.reader.execute(
            "SELECT value FROM device_variables WHERE charger_id = ? AND component = ? AND component_instance = ''"
            " AND evse_id = -1 AND connector_id = -1 AND variable = ? AND variable_instance = ?"
            " AND attribute_type = ?",
            (charger_id, component, variable, instance, attribute_type),
        ).fetchone()
        return None if found is None else found[0]
