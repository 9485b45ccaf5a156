"""The last reported status of every connector (1.6 connectorId; 2.0.1 evseId + connectorId), as stored.

Status is not a transaction message: it is written fire-and-forget, and the latest report received wins
(a charger that was offline reports every connector again on reconnect [B04], so a stale value heals itself).
Write ops run on the writer thread; reads take the reader connection.
"""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.store.store import Store

# A charger without an EVSE level (OCPP 1.6) has its connectors stored under this evse id and reported without
# one.
NO_EVSE = 0
# The subprotocols without an EVSE level.
NO_EVSE_PROTOCOLS = frozenset({"ocpp1.6"})


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """A connector's status as its charger reported it, at the charger's time `at` (aware)."""

    charger_id: str
    evse_id: int | None  # None for a charger without an EVSE level (1.6)
    connector_id: int
    protocol: str
    status: str
    error_code: str | None
    at: datetime


class ConnectorStatusRow(msgspec.Struct, frozen=True, kw_only=True):
    """One connector's last status."""

    evse_id: int | None  # None for a charger without an EVSE level (1.6)
    connector_id: int
    status: str
    error_code: str | None
    updated_at: datetime


def upsert(db: sqlite_utils.Database, report: StatusReport, at: str) -> None:
    """Set a connector's status (creating its row), unless the row holds a later report."""
    db.conn.execute(
        """
        INSERT INTO connector_status (charger_id, evse_id, connector_id, protocol, status, error_code, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (charger_id, evse_id, connector_id) DO UPDATE SET
            protocol = excluded.protocol, status = excluded.status, error_code = excluded.error_code,
            updated_at = excluded.updated_at
        WHERE excluded.updated_at >= connector_status.updated_at
        """,
        (
            report.charger_id,
            NO_EVSE if report.evse_id is None else report.evse_id,
            report.connector_id,
            report.protocol,
            report.status,
            report.error_code,
            at,
        ),
    )


def read_statuses(conn: sqlite3.Connection, charger_id: str) -> list[ConnectorStatusRow]:
    """Every connector of the charger with a status, in (evse, connector) order."""
    cur = conn.execute(
        "SELECT evse_id, connector_id, protocol, status, error_code, updated_at FROM connector_status"
        " WHERE charger_id = ? ORDER BY evse_id, connector_id",
        (charger_id,),
    )
    out = []
    for evse_id, connector_id, protocol, status, error_code, updated in cur.fetchall():
        at = parse_iso(updated)
        assert at is not None  # NOT NULL in the schema
        out.append(
            ConnectorStatusRow(
                evse_id=None if protocol in NO_EVSE_PROTOCOLS else evse_id,
                connector_id=connector_id,
                status=status,
                error_code=error_code,
                updated_at=at,
            )
        )
    return out


def read_every_status(conn: sqlite3.Connection) -> list[tuple[str, ConnectorStatusRow]]:
    """Every connector of every charger with a status, as (charger id, row): one scan, for parts that keep
    statuses in memory and reconcile them."""
    cur = conn.execute(
        "SELECT charger_id, evse_id, connector_id, protocol, status, error_code, updated_at FROM connector_status"
    )
    out = []
    for charger_id, evse_id, connector_id, protocol, status, error_code, updated in cur.fetchall():
        at = parse_iso(updated)
        assert at is not None  # NOT NULL in the schema
        out.append(
            (
                charger_id,
                ConnectorStatusRow(
                    evse_id=None if protocol in NO_EVSE_PROTOCOLS else evse_id,
                    connector_id=connector_id,
                    status=status,
                    error_code=error_code,
                    updated_at=at,
                ),
            )
        )
    return out


class ConnectorStatusRepository:
    """The connector_status table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, report: StatusReport) -> None:
        """Record a connector's status, fire-and-forget (`evse_id` None: the charger has no EVSE level). A
        report older than the stored one changes nothing. Raises ValueError for a naive `at`."""
        self._store.submit(functools.partial(upsert, report=report, at=iso_utc(report.at)))

    def statuses(self, charger_id: str) -> list[ConnectorStatusRow]:
        """The last status of each connector of the charger (empty when it reported none)."""
        return read_statuses(self._store.reader, charger_id)

    def every_status(self) -> list[tuple[str, ConnectorStatusRow]]:
        """The last status of every connector of every charger, as (charger id, row)."""
        return read_every_status(self._store.reader)
