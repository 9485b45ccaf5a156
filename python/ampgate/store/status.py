"""The last reported status of every connector (1.6 connectorId; 2.0.1 evseId + connectorId), as stored.

Status is not a transaction message: it is written fire-and-forget, and the latest report received wins
(a charger that was offline reports every connector again on reconnect [B04], so a stale value heals itself).
Write ops run on the writer thread; reads take the reader connection.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import msgspec
import sqlite_utils

from ampgate.store.schema import parse_iso

# 1.6 has no EVSE level: its connectors are stored under this evse id and reported without one.
NO_EVSE = 0


class ConnectorStatusRow(msgspec.Struct, frozen=True, kw_only=True):
    """One connector's last status."""

    evse_id: int | None  # None for 1.6
    connector_id: int
    status: str
    error_code: str | None
    updated_at: datetime


def upsert(
    db: sqlite_utils.Database,
    charger_id: str,
    evse_id: int | None,
    connector_id: int,
    protocol: str,
    status: str,
    error_code: str | None,
    at: str,
) -> None:
    """Set a connector's status (creating its row)."""
    db.conn.execute(
        """
        INSERT INTO connector_status (charger_id, evse_id, connector_id, protocol, status, error_code, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (charger_id, evse_id, connector_id) DO UPDATE SET
            protocol = excluded.protocol, status = excluded.status, error_code = excluded.error_code,
            updated_at = excluded.updated_at
        WHERE excluded.updated_at >= connector_status.updated_at
        """,
        (charger_id, NO_EVSE if evse_id is None else evse_id, connector_id, protocol, status, error_code, at),
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
                evse_id=None if protocol == "ocpp1.6" else evse_id,
                connector_id=connector_id,
                status=status,
                error_code=error_code,
                updated_at=at,
            )
        )
    return out
