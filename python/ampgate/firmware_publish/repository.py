"""The `firmware_publications` table: one row per PublishFirmware the node sent, as stored. The row's id is the
requestId the local controller knows. Every write is awaited by its caller (a notification is answered once its
status is committed)."""

from __future__ import annotations

import functools
import sqlite3
from datetime import datetime
from typing import Any

import msgspec
import sqlite_utils

from ampgate.clock import iso_utc, parse_iso
from ampgate.firmware_publish import state
from ampgate.firmware_publish.state import PublishSpec, TimelineEntry
from ampgate.store.store import Store

_COLUMNS = (
    "id, charger_id, location, checksum, retries, retry_interval_s, status, timeline, published_locations,"
    " error_code, error_message, created_at, updated_at"
)
_timeline = msgspec.json.Decoder(list[TimelineEntry]).decode
_locations = msgspec.json.Decoder(list[str]).decode
_encode = msgspec.json.encode


class PublicationRow(msgspec.Struct, frozen=True, kw_only=True):
    """A publication with its timeline; `published_locations` are the URIs the controller said it serves the
    image at (its last Published notification)."""

    id: int  # the requestId sent
    charger_id: str
    location: str
    checksum: str
    retries: int | None
    retry_interval_s: int | None
    status: str  # the last of `timeline`
    timeline: list[TimelineEntry]
    published_locations: list[str] | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime


def _row(v: tuple[Any, ...]) -> PublicationRow:
    created, updated = parse_iso(v[11]), parse_iso(v[12])
    assert created is not None and updated is not None  # NOT NULL
    return PublicationRow(
        id=v[0],
        charger_id=v[1],
        location=v[2],
        checksum=v[3],
        retries=v[4],
        retry_interval_s=v[5],
        status=v[6],
        timeline=_timeline(v[7]),
        published_locations=None if v[8] is None else _locations(v[8]),
        error_code=v[9],
        error_message=v[10],
        created_at=created,
        updated_at=updated,
    )


def _one(conn: sqlite3.Connection, pub_id: int) -> PublicationRow | None:
    v = conn.execute(f"SELECT {_COLUMNS} FROM firmware_publications WHERE id = ?", (pub_id,)).fetchone()
    return None if v is None else _row(v)


def _must(conn: sqlite3.Connection, pub_id: int) -> PublicationRow:
    row = _one(conn, pub_id)
    if row is None:
        raise KeyError(f"firmware publication {pub_id} does not exist")
    return row


def _add_status(
    conn: sqlite3.Connection, row: PublicationRow, status: str, at: datetime, **columns: Any
) -> PublicationRow:
    sets: dict[str, Any] = {
        "status": status,
        "timeline": _encode(state.append(row.timeline, status, at)).decode(),
        "updated_at": iso_utc(at),
        **columns,
    }
    assignments = ", ".join(f"{k} = ?" for k in sets)
    conn.execute(f"UPDATE firmware_publications SET {assignments} WHERE id = ?", (*sets.values(), row.id))
    return _must(conn, row.id)


def _insert(db: sqlite_utils.Database, charger_id: str, spec: PublishSpec, at: datetime) -> PublicationRow:
    when = iso_utc(at)
    cur = db.conn.execute(
        "INSERT INTO firmware_publications (charger_id, location, checksum, retries, retry_interval_s, status,"
        " timeline, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            charger_id,
            spec.location,
            spec.checksum,
            spec.retries,
            spec.retry_interval_s,
            state.REQUESTED,
            _encode(state.append([], state.REQUESTED, at)).decode(),
            when,
            when,
        ),
    )
    assert cur.lastrowid is not None
    return _must(db.conn, cur.lastrowid)


def _status(
    db: sqlite_utils.Database,
    pub_id: int,
    status: str,
    at: datetime,
    error_code: str | None,
    error_message: str | None,
) -> PublicationRow:
    conn = db.conn
    row = _must(conn, pub_id)
    if status in state.ANSWERS:
        timeline, newest = state.with_answer(row.timeline, status, at)
        conn.execute(
            "UPDATE firmware_publications SET status = ?, timeline = ?, updated_at = ? WHERE id = ?",
            (status if newest else row.status, _encode(timeline).decode(), iso_utc(at), pub_id),
        )
        return _must(conn, pub_id)
    return _add_status(conn, row, status, at, error_code=error_code, error_message=error_message)


def _notification(
    db: sqlite_utils.Database,
    charger_id: str,
    request_id: int,
    status: str,
    locations: list[str] | None,
    at: datetime,
) -> PublicationRow | None:
    conn = db.conn
    row = _one(conn, request_id)
    if row is None or row.charger_id != charger_id:
        return None  # another system's request, or one deleted with its database
    columns = {"published_locations": _encode(locations).decode()} if locations else {}
    return _add_status(conn, row, status, at, **columns)


def _unpublished(
    db: sqlite_utils.Database, charger_id: str, checksum: str, status: str, at: datetime
) -> list[PublicationRow]:
    # The controller unpublishes by checksum: every publication of that image on it ends.
    conn = db.conn
    cur = conn.execute(
        f"SELECT {_COLUMNS} FROM firmware_publications WHERE charger_id = ? AND checksum = ? ORDER BY id",
        (charger_id, checksum),
    )
    return [
        _add_status(conn, row, status, at)
        for row in (_row(v) for v in cur.fetchall())
        if row.status not in state.UNPUBLISHED_STATUSES
    ]


class PublicationRepository:
    """The firmware_publications table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self, charger_id: str, spec: PublishSpec, at: datetime) -> PublicationRow:
        """Store a publication about to be sent (status Requested); its id is the requestId to send."""
        return await self._store.write(functools.partial(_insert, charger_id=charger_id, spec=spec, at=at))

    async def record_status(
        self,
        pub_id: int,
        status: str,
        at: datetime,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> PublicationRow:
        """The controller's answer, or the call's failure (with its error)."""
        return await self._store.write(
            functools.partial(
                _status,
                pub_id=pub_id,
                status=status,
                at=at,
                error_code=error_code,
                error_message=error_message,
            )
        )

    async def record_notification(
        self, charger_id: str, request_id: int, status: str, locations: list[str] | None, at: datetime
    ) -> PublicationRow | None:
        """A PublishFirmwareStatusNotification of publication `request_id` (the charger's own); None if the node
        has no such publication of that charger."""
        return await self._store.write(
            functools.partial(
                _notification,
                charger_id=charger_id,
                request_id=request_id,
                status=status,
                locations=locations,
                at=at,
            )
        )

    async def record_unpublished(
        self, charger_id: str, checksum: str, status: str, at: datetime
    ) -> list[PublicationRow]:
        """UnpublishFirmware answered `status` (Unpublished, NoFirmware): every publication of the charger with
        `checksum` not already unpublished gets it. Returns those rows."""
        return await self._store.write(
            functools.partial(_unpublished, charger_id=charger_id, checksum=checksum, status=status, at=at)
        )

    def get(self, charger_id: str, pub_id: int) -> PublicationRow | None:
        row = _one(self._store.reader, pub_id)
        return row if row is not None and row.charger_id == charger_id else None

    def page(self, charger_id: str, limit: int, before: int | None = None) -> list[PublicationRow]:
        """Up to `limit` of the charger's publications, newest first, with an id below `before`."""
        cur = self._store.reader.execute(
            f"SELECT {_COLUMNS} FROM firmware_publications WHERE charger_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (charger_id, 2**63 - 1 if before is None else before, limit),
        )
        return [_row(v) for v in cur.fetchall()]
