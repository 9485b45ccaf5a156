"""What a charger's EVSEs and connectors are, as an admin described them (`PUT /api/v1/chargers/{id}/connectors`):
each EVSE's eMI3 id, each connector's standard, format, power type and ratings. OCPP says none of this (a 2.0.1
device model may say some: `ampgate.roaming.locations` uses it as a default), and OCPI publishes all of it.

EVSE numbers are OCPP's: a 2.0.1 EVSE id with its connectors numbered per EVSE; for a 1.6 charger, which has no
EVSE level, every connector is an EVSE of its own (OCPI's advice and the OCA's application note on 1.x), so an
EVSE is the connector id and holds one connector of that same id.

Tables `charger_evses` and `charger_connectors`; a PUT replaces a charger's rows in one write.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec
import sqlite_utils

from ampgate.bus import Publisher
from ampgate.clock import Clock, iso_utc, parse_iso
from ampgate.errors import ConflictError, NotFoundError, ValidationError
from ampgate.events import ChargerConnectorsChanged
from ampgate.roaming.mapping import normalize_emi3
from ampgate.roaming.types import ConnectorFormat, ConnectorType, PowerType
from ampgate.store.store import Store

# Bounds, and why: OCPP ids are positive; a charge point has a handful of EVSEs (a 1.6 one numbers connectors
# the same way), far below 100. Voltages above 1,500 V (DC fast chargers reach ~1,000 V) and currents above
# 3,000 A (megawatt charging) are typos (mV, mA); power is bounded by the same reasoning (4.5 MW).
MAX_EVSES = 100
MAX_CONNECTORS = 10
MAX_VOLTAGE_V = 1500
MAX_AMPERAGE_A = 3000
MAX_POWER_W = 4_500_000


class ConnectorSpec(msgspec.Struct, frozen=True, kw_only=True):
    connector_id: int
    standard: ConnectorType
    format: ConnectorFormat
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None


class EvseSpec(msgspec.Struct, frozen=True, kw_only=True):
    evse_id: int
    connectors: tuple[ConnectorSpec, ...]
    emi3_id: str | None = None


class Equipment(msgspec.Struct, frozen=True, kw_only=True):
    """A charger's described EVSEs, in EVSE order; `updated_at` when an admin last replaced them."""

    charger_id: str
    evses: tuple[EvseSpec, ...]
    updated_at: datetime


def validate(evses: Sequence[EvseSpec], protocol: str | None) -> tuple[EvseSpec, ...]:
    """`evses` checked and normalised (eMI3 ids upper-case, EVSEs and connectors in id order). `protocol` is the
    charger's subprotocol when known: "ocpp1.6" requires one connector per EVSE with the EVSE's number. Raises
    ValidationError naming the field (`evses[1].connectors[0].max_voltage`)."""
    if len(evses) > MAX_EVSES:
        raise ValidationError(f"at most {MAX_EVSES} EVSEs", field="evses")
    seen_evse: set[int] = set()
    seen_emi3: set[str] = set()
    out: list[EvseSpec] = []
    for i, evse in enumerate(evses):
        at = f"evses[{i}]"
        if evse.evse_id < 1:
            raise ValidationError("an EVSE id is 1 or more", field=f"{at}.evse_id")
        if evse.evse_id in seen_evse:
            raise ValidationError(f"EVSE {evse.evse_id} is listed twice", field=f"{at}.evse_id")
        seen_evse.add(evse.evse_id)
        emi3 = None
        if evse.emi3_id is not None:
            emi3 = normalize_emi3(evse.emi3_id)
            if emi3 is None:
                raise ValidationError(
                    "emi3_id is an eMI3 EVSE id: country code, operator id, 'E' and the outlet id, e.g."
                    " NL*AMP*E12345*1",
                    field=f"{at}.emi3_id",
                )
            if emi3 in seen_emi3:
                raise ValidationError(f"{emi3} is given to two EVSEs", field=f"{at}.emi3_id")
            seen_emi3.add(emi3)
        if not 1 <= len(evse.connectors) <= MAX_CONNECTORS:
            raise ValidationError(f"an EVSE has 1 to {MAX_CONNECTORS} connectors", field=f"{at}.connectors")
        if protocol == "ocpp1.6" and (
            len(evse.connectors) != 1 or evse.connectors[0].connector_id != evse.evse_id
        ):
            raise ValidationError(
                "a 1.6 charger has no EVSE level: each connector is an EVSE of its own, so an EVSE holds one"
                " connector whose connector_id is the EVSE's evse_id",
                field=f"{at}.connectors",
            )
        seen_connector: set[int] = set()
        for j, c in enumerate(evse.connectors):
            cat = f"{at}.connectors[{j}]"
            if c.connector_id < 1:
                raise ValidationError("a connector id is 1 or more", field=f"{cat}.connector_id")
            if c.connector_id in seen_connector:
                raise ValidationError(
                    f"connector {c.connector_id} is listed twice in this EVSE", field=f"{cat}.connector_id"
                )
            seen_connector.add(c.connector_id)
            if not 1 <= c.max_voltage <= MAX_VOLTAGE_V:
                raise ValidationError(f"max_voltage is 1 to {MAX_VOLTAGE_V} V", field=f"{cat}.max_voltage")
            if not 1 <= c.max_amperage <= MAX_AMPERAGE_A:
                raise ValidationError(f"max_amperage is 1 to {MAX_AMPERAGE_A} A", field=f"{cat}.max_amperage")
            if c.max_electric_power is not None and not 1 <= c.max_electric_power <= MAX_POWER_W:
                raise ValidationError(
                    f"max_electric_power is 1 to {MAX_POWER_W} W", field=f"{cat}.max_electric_power"
                )
        out.append(
            EvseSpec(
                evse_id=evse.evse_id,
                emi3_id=emi3,
                connectors=tuple(sorted(evse.connectors, key=lambda c: c.connector_id)),
            )
        )
    return tuple(sorted(out, key=lambda e: e.evse_id))


def _read_all(conn: sqlite3.Connection, charger_id: str | None) -> dict[str, Equipment]:
    where, args = ("WHERE charger_id = ?", (charger_id,)) if charger_id is not None else ("", ())
    evses: dict[str, dict[int, tuple[str | None, str]]] = {}
    for cid, evse_id, emi3, updated in conn.execute(
        f"SELECT charger_id, evse_id, emi3_id, updated_at FROM charger_evses {where}", args
    ):
        evses.setdefault(cid, {})[evse_id] = (emi3, updated)
    connectors: dict[tuple[str, int], list[ConnectorSpec]] = {}
    for v in conn.execute(
        "SELECT charger_id, evse_id, connector_id, standard, format, power_type, max_voltage, max_amperage,"
        f" max_electric_power FROM charger_connectors {where} ORDER BY charger_id, evse_id, connector_id",
        args,
    ):
        connectors.setdefault((v[0], v[1]), []).append(
            ConnectorSpec(
                connector_id=v[2],
                standard=ConnectorType(v[3]),
                format=ConnectorFormat(v[4]),
                power_type=PowerType(v[5]),
                max_voltage=v[6],
                max_amperage=v[7],
                max_electric_power=v[8],
            )
        )
    out: dict[str, Equipment] = {}
    for cid, by_evse in evses.items():
        updated = max(parse_iso(u) for _, u in by_evse.values())  # type: ignore[type-var]
        out[cid] = Equipment(
            charger_id=cid,
            evses=tuple(
                EvseSpec(evse_id=e, emi3_id=emi3, connectors=tuple(connectors.get((cid, e), ())))
                for e, (emi3, _) in sorted(by_evse.items())
            ),
            updated_at=updated,  # type: ignore[arg-type]
        )
    return out


class EquipmentRepository:
    """The charger_evses and charger_connectors tables."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, charger_id: str) -> Equipment | None:
        """What the charger's EVSEs are, as described (None: never described, or described as none)."""
        return _read_all(self._store.reader, charger_id).get(charger_id)

    def every(self) -> dict[str, Equipment]:
        """Every described charger's equipment: one scan each table, for the locations book's reload."""
        return _read_all(self._store.reader, None)

    def stamps(self) -> dict[str, str]:
        """Every described charger's version: when its description was last replaced (a PUT writes every row
        of it with one time), as stored. One scan of one table: how the locations book's reconcile tells which
        descriptions it must read again."""
        return dict(
            self._store.reader.execute(
                "SELECT charger_id, max(updated_at) FROM charger_evses GROUP BY charger_id"
            ).fetchall()
        )

    async def replace(self, charger_id: str, evses: Sequence[EvseSpec]) -> Equipment | None:
        """Make `evses` (already validated) the charger's description; an empty list forgets it. Raises
        ConflictError `emi3_id_taken` when another charger's EVSE has one of the eMI3 ids."""
        at = iso_utc(self._store.now())

        def op(db: sqlite_utils.Database) -> Equipment | None:
            c = db.conn
            c.execute("DELETE FROM charger_connectors WHERE charger_id = ?", (charger_id,))
            c.execute("DELETE FROM charger_evses WHERE charger_id = ?", (charger_id,))
            for i, evse in enumerate(evses):
                try:
                    c.execute(
                        "INSERT INTO charger_evses (charger_id, evse_id, emi3_id, updated_at) VALUES (?, ?, ?, ?)",
                        (charger_id, evse.evse_id, evse.emi3_id, at),
                    )
                except sqlite3.IntegrityError:
                    taken = c.execute(
                        "SELECT charger_id FROM charger_evses WHERE emi3_id = ?", (evse.emi3_id,)
                    ).fetchone()
                    raise ConflictError(
                        f"{evse.emi3_id} is an EVSE of charger {taken[0] if taken else '?'} already",
                        field=f"evses[{i}].emi3_id",
                        code="emi3_id_taken",
                    ) from None
                rows: list[tuple[Any, ...]] = [
                    (
                        charger_id,
                        evse.evse_id,
                        k.connector_id,
                        k.standard.value,
                        k.format.value,
                        k.power_type.value,
                        k.max_voltage,
                        k.max_amperage,
                        k.max_electric_power,
                        at,
                    )
                    for k in evse.connectors
                ]
                c.executemany(
                    "INSERT INTO charger_connectors (charger_id, evse_id, connector_id, standard, format,"
                    " power_type, max_voltage, max_amperage, max_electric_power, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            return _read_all(c, charger_id).get(charger_id)

        return await self._store.write(op)


class ChargerProtocol(Protocol):
    """`ampgate.store.ChargerRepository`: the charger's row (its `protocol`: the subprotocol it last spoke)."""

    def get(self, charger_id: str, /) -> Any: ...


class EquipmentService:
    """What the operator API drives: describe a charger's EVSEs (checked against the protocol it speaks) and
    read the description back; every change is `charger.connectors_changed` on the bus."""

    def __init__(
        self, rows: EquipmentRepository, chargers: ChargerProtocol, bus: Publisher, clock: Clock
    ) -> None:
        self._rows = rows
        self._chargers = chargers
        self._bus = bus
        self._clock = clock

    def get(self, charger_id: str) -> Equipment | None:
        return self._rows.get(charger_id)

    async def describe(self, charger_id: str, evses: Sequence[EvseSpec]) -> Equipment | None:
        """Replace the charger's description. Raises NotFoundError (field id) for an unknown charger,
        ValidationError naming the field, ConflictError `emi3_id_taken`."""
        row = self._chargers.get(charger_id)
        if row is None:
            raise NotFoundError(f"charger '{charger_id}' is not registered", field="id")
        checked = validate(evses, getattr(row, "protocol", None))
        stored = await self._rows.replace(charger_id, checked)
        self._bus.publish(
            ChargerConnectorsChanged(at=self._clock.now(), charger_id=charger_id, evses=len(checked))
        )
        return stored
